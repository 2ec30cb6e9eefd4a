package main

// The plumbing the admin commands share (sediment group, and later topic,
// acl, user, ...): verb dispatch and help, flag parsing with positional
// arguments anywhere, the connection flags, a kadm client against the
// Kafka port, and table/JSON output.
//
// Exit codes: 0 success, 1 the operation failed (broker unreachable, a
// group refused), 2 the command line is wrong.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Exit codes of the admin commands.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// streams are where a command writes: its result to out, diagnostics to err.
type streams struct {
	out, err io.Writer
}

// command is an admin command: a noun (group, topic, ...) with verbs, or a
// command that acts itself (offsets, log-dirs): one verb without a name.
type command struct {
	name  string // "group"
	about string // one paragraph for its help
	verbs []verb
}

// direct reports whether the command acts itself, without a verb.
func (c *command) direct() bool { return len(c.verbs) == 1 && c.verbs[0].name == "" }

// verb is one action of a command.
type verb struct {
	name    string // "describe"
	args    string // "GROUP... [flags]"
	summary string // one line for the command's help
	// bind registers the verb's own flags on fs (the connection flags come
	// on top) and returns what runs the verb once fs is parsed.
	bind func(fs *flag.FlagSet) runFunc
}

// runFunc does a verb's work; pos are its positional arguments. A
// usageError means the command line was wrong.
type runFunc func(ctx context.Context, c *adminConn, pos []string, s streams) error

// usageError is a command line the verb cannot act on (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run dispatches args (after the command's name) to a verb and returns the
// exit code; it writes every error to s.err itself.
func (c *command) run(ctx context.Context, args []string, s streams) int {
	if c.direct() {
		if len(args) > 0 && args[0] == "help" {
			c.help(s.out)
			return exitOK
		}
		return c.runVerb(ctx, &c.verbs[0], args, s)
	}
	if len(args) == 0 {
		c.help(s.err)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		c.help(s.out)
		return exitOK
	}
	for i := range c.verbs {
		if c.verbs[i].name == args[0] {
			return c.runVerb(ctx, &c.verbs[i], args[1:], s)
		}
	}
	fmt.Fprintf(s.err, "sediment %s: unknown verb %q (verbs: %s; see 'sediment %s --help')\n",
		c.name, args[0], strings.Join(c.verbNames(), ", "), c.name)
	return exitUsage
}

func (c *command) verbNames() []string {
	names := make([]string, len(c.verbs))
	for i, v := range c.verbs {
		names[i] = v.name
	}
	return names
}

// help writes the command's verbs and the flags they share.
func (c *command) help(w io.Writer) {
	if c.direct() {
		c.verbHelp(w, &c.verbs[0])
		return
	}
	fmt.Fprintf(w, "%s\n\nUsage:\n", c.about)
	for _, v := range c.verbs {
		fmt.Fprintf(w, "  sediment %s %s %s\n", c.name, v.name, v.args)
	}
	fmt.Fprintf(w, "\nVerbs:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range c.verbs {
		fmt.Fprintf(tw, "  %s\t%s\n", v.name, v.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nFlags of every verb:\n")
	var conn connFlags
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	conn.register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nThese also read SEDIMENT_<NAME> (e.g. SEDIMENT_BOOTSTRAP_SERVER); the rest of a\n"+
		"command line never comes from the environment.\nRun 'sediment %s <verb> --help' for a verb's own flags.\n", c.name)
}

// verbHelp writes a verb's usage and all its flags.
func (c *command) verbHelp(w io.Writer, v *verb) {
	fs, _, _ := c.verbFlags(v)
	fmt.Fprintf(w, "Usage: %s %s\n\n%s.\n\nFlags:\n", fs.Name(), v.args, upperFirst(v.summary))
	fs.SetOutput(w)
	fs.PrintDefaults()
	if c.direct() {
		fmt.Fprintf(w, "\n%s\n", c.about)
	}
}

// verbFlags is the flag set of a verb: its own flags and the connection's.
func (c *command) verbFlags(v *verb) (*flag.FlagSet, runFunc, *connFlags) {
	prefix := strings.TrimSpace(fmt.Sprintf("sediment %s %s", c.name, v.name))
	fs := flag.NewFlagSet(prefix, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by runVerb
	run := v.bind(fs)
	conn := new(connFlags)
	conn.register(fs)
	return fs, run, conn
}

// runVerb parses the verb's flags, connects and runs it.
func (c *command) runVerb(ctx context.Context, v *verb, args []string, s streams) int {
	fs, run, conn := c.verbFlags(v)
	prefix := fs.Name()
	pos, err := parseArgs(fs, args)
	if err == nil {
		err = applyEnv(fs, connFlagNames...)
	}
	if err == nil {
		err = conn.validate(flagSource(fs))
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.verbHelp(s.out, v)
		return exitOK
	case err != nil:
		fmt.Fprintf(s.err, "%s: %v (see '%s --help')\n", prefix, err, prefix)
		return exitUsage
	}

	ctx, cancel := context.WithTimeout(ctx, conn.timeout)
	defer cancel()
	ac := &adminConn{flags: *conn}
	defer ac.close()
	err = run(ctx, ac, pos, s)
	if err == nil {
		return exitOK
	}
	if ue := (usageError{}); errors.As(err, &ue) {
		fmt.Fprintf(s.err, "%s: %v (see '%s --help')\n", prefix, err, prefix)
		return exitUsage
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within --timeout %s: %w", conn.timeout, err)
	}
	fmt.Fprintf(s.err, "%s: %v\n", prefix, err)
	return exitFail
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseArgs parses fs from args, letting flags and positional arguments mix
// (sediment group describe g1 --output json g2), as Kafka's tools do; "--"
// ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// applyEnv sets the named flags of fs that the command line left unset from
// their SEDIMENT_<NAME> variables, through parseFlags (flags.go) on a
// FlagSet that shares their values.
func applyEnv(fs *flag.FlagSet, names ...string) error {
	sub := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	sub.SetOutput(io.Discard)
	for _, n := range names {
		if f := fs.Lookup(n); f != nil {
			sub.Var(f.Value, n, f.Usage)
		}
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		if sub.Lookup(f.Name) != nil && err == nil {
			err = sub.Set(f.Name, f.Value.String()) // marks it set, so the environment leaves it alone
		}
	})
	if err != nil {
		return err
	}
	return parseFlags(sub, nil, nil)
}

// connFlags are the flags of every admin verb: where the cluster is, how
// long to wait for it, and how to print.
type connFlags struct {
	bootstrap string
	output    string
	timeout   time.Duration
	security  clientSecurity // admin_security.go
}

// connFlagNames are the flags that also read SEDIMENT_<NAME>.
var connFlagNames = append([]string{"bootstrap-server", "output", "timeout"}, clientSecurityFlagNames...)

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.bootstrap, "bootstrap-server", "127.0.0.1:9092", "comma-separated `HOST:PORT` list of brokers' Kafka listeners to start from")
	fs.StringVar(&f.output, "output", "table", "`table` (for people) or json (stable, for scripts)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "bound of the whole command, connecting included")
	f.security.register(fs)
}

// validate checks the values; src names where a flag's value came from.
func (f *connFlags) validate(src func(flag string) string) error {
	switch f.output {
	case "table", "json":
	default:
		return fmt.Errorf("%s %q: must be table or json", src("output"), f.output)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("%s %s: must be positive", src("timeout"), f.timeout)
	}
	if len(f.seeds()) == 0 {
		return fmt.Errorf("%s is empty", src("bootstrap-server"))
	}
	return f.security.validate(src)
}

// flagSource names where a flag of fs got its value, for messages: the
// flag when the command line set it or nothing did, else its variable.
func flagSource(fs *flag.FlagSet) func(name string) string {
	onCmdLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCmdLine[f.Name] = true })
	return func(name string) string {
		if _, inEnv := os.LookupEnv(envName(name)); inEnv && !onCmdLine[name] {
			return envName(name)
		}
		return "--" + name
	}
}

// seeds are the bootstrap servers, each with a port (9092 unless given).
func (f *connFlags) seeds() []string {
	var out []string
	for _, s := range strings.Split(f.bootstrap, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(strings.Trim(s, "[]"), "9092")
		}
		out = append(out, s)
	}
	return out
}

// json reports whether --output json was asked for.
func (f *connFlags) json() bool { return f.output == "json" }

// adminConn is a verb's connection to the cluster, made on first use.
// Not safe for concurrent use.
type adminConn struct {
	flags connFlags
	cl    *kgo.Client
	adm   *kadm.Client
}

// admin returns the kadm client, connecting first. Before the client is
// made, every seed is dialed once, so that a wrong address or a stopped
// broker is reported at once and by name, rather than as a timeout after
// the client's retries.
func (c *adminConn) admin(ctx context.Context) (*kadm.Client, error) {
	if c.adm != nil {
		return c.adm, nil
	}
	seeds := c.flags.seeds()
	if err := probe(ctx, seeds); err != nil {
		return nil, err
	}
	sec, err := c.flags.security.opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(sec,
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("sediment-cli"),
		kgo.DialTimeout(min(c.flags.timeout, 10*time.Second)),
	)...)
	if err != nil {
		return nil, fmt.Errorf("--bootstrap-server %s: %w", c.flags.bootstrap, err)
	}
	c.cl, c.adm = cl, kadm.NewClient(cl)
	c.adm.SetTimeoutMillis(int32(min(c.flags.timeout, time.Hour).Milliseconds()))
	return c.adm, nil
}

// groupsAdmin is the usual start of a verb on named groups: the GROUP
// arguments (groupArgs) and the kadm client.
func (c *adminConn) groupsAdmin(ctx context.Context, pos []string) ([]string, *kadm.Client, error) {
	groups, err := groupArgs(pos)
	if err != nil {
		return nil, nil, err
	}
	adm, err := c.admin(ctx)
	return groups, adm, err
}

// print writes v as JSON under --output json, else has table write it.
func (c *adminConn) print(w io.Writer, v any, table func(io.Writer) error) error {
	if c.flags.json() {
		return writeJSON(w, v)
	}
	return table(w)
}

// errNotAnswered is an item a broker left out of its answer.
var errNotAnswered = errors.New("missing from the broker's answer")

// notAnswered is the error of an item missing from a (sharded) answer: the
// request's own error when it has one, else errNotAnswered.
func notAnswered(reqErr error) error {
	if reqErr != nil {
		return reqErr
	}
	return errNotAnswered
}

// client is the franz-go client under admin, for requests kadm does not
// wrap; admin must have succeeded first.
func (c *adminConn) client() *kgo.Client { return c.cl }

func (c *adminConn) close() {
	if c.cl != nil {
		c.cl.Close()
	}
}

// probe dials the seeds (in parallel) and succeeds once one accepts a TCP
// connection.
func probe(ctx context.Context, seeds []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	errs := make(chan error, len(seeds))
	for _, s := range seeds {
		go func() {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", s)
			if err == nil {
				conn.Close()
			}
			errs <- err
		}()
	}
	var all []error
	for range seeds {
		err := <-errs
		if err == nil {
			return nil
		}
		all = append(all, err)
	}
	return fmt.Errorf("cannot reach any --bootstrap-server (%s): %w", strings.Join(seeds, ","), errors.Join(all...))
}

// kafkaError splits err into Kafka's error name (NON_EMPTY_GROUP) and a
// message for people: Kafka's description of a bare Kafka error, else err's
// own text. An error that is not Kafka's has no name.
func kafkaError(err error) (name, message string) {
	if err == nil {
		return "", ""
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return "", err.Error()
	}
	if err == error(ke) {
		return ke.Message, ke.Description
	}
	return ke.Message, err.Error()
}

// writeJSON writes v indented, with a final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns; cells that are empty print as "-".
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			c = "-"
		}
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		io.WriteString(t.tw, c)
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// canonicalNames turns a comma-separated flag value into names of known,
// matched in any case.
func canonicalNames(flagName, list string, known []string) ([]string, error) {
	var out []string
	for _, s := range splitList(list) {
		i := slices.IndexFunc(known, func(k string) bool { return strings.EqualFold(k, s) })
		if i < 0 {
			return nil, usagef("%s %q: unknown; want one of %s", flagName, s, strings.Join(known, ", "))
		}
		out = append(out, known[i])
	}
	return out, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// uniqueArgs is the positional arguments, at least one, none empty, without
// repeats, in their order.
func uniqueArgs(pos []string, what string) ([]string, error) {
	if len(pos) == 0 {
		return nil, usagef("name at least one %s", what)
	}
	var out []string
	for _, a := range pos {
		if a == "" {
			return nil, usagef("a %s is empty", what)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// brokerLabel names a broker in messages: "broker 1 (127.0.0.1:9092)".
func brokerLabel(m kgo.BrokerMetadata) string {
	if m.Host == "" {
		return fmt.Sprintf("broker %d", m.NodeID)
	}
	return fmt.Sprintf("broker %d (%s)", m.NodeID, net.JoinHostPort(m.Host, strconv.Itoa(int(m.Port))))
}

// requestOne sends a request the client routes to the controller
// (CreateTopics, DeleteTopics, CreatePartitions) and returns its answer
// with the broker that gave it, so that an error can name it.
func (c *adminConn) requestOne(ctx context.Context, req kmsg.Request) (kmsg.Response, string, error) {
	shards := c.client().RequestSharded(ctx, req)
	if len(shards) == 0 {
		return nil, "", fmt.Errorf("%s: no broker to send it to", kmsg.NameForKey(req.Key()))
	}
	sh := shards[0]
	who := brokerLabel(sh.Meta)
	if sh.Meta.NodeID < 0 {
		who = "the cluster"
	}
	if sh.Err != nil {
		return nil, who, fmt.Errorf("%s: %s: %w", kmsg.NameForKey(req.Key()), who, sh.Err)
	}
	return sh.Resp, who, nil
}

// requestAny sends a request any broker can answer (IncrementalAlterConfigs
// of topics) to the controller, else to the first live broker, and returns
// the answer with the broker that gave it.
func (c *adminConn) requestAny(ctx context.Context, req kmsg.Request) (kmsg.Response, string, error) {
	name := kmsg.NameForKey(req.Key())
	m, err := c.adm.BrokerMetadata(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("%s: finding a broker: %w", name, err)
	}
	if len(m.Brokers) == 0 {
		return nil, "", fmt.Errorf("%s: the cluster lists no live broker", name)
	}
	target := m.Brokers[0]
	for _, b := range m.Brokers {
		if b.NodeID == m.Controller {
			target = b
		}
	}
	who := brokerLabel(target)
	resp, err := c.client().Broker(int(target.NodeID)).Request(ctx, req)
	if err != nil {
		return nil, who, fmt.Errorf("%s: %s: %w", name, who, err)
	}
	return resp, who, nil
}

// namedShards rewrites kadm's *ShardErrors ("request X has 2 separate shard
// errors, first: ...") as one line per broker that failed, naming it; other
// errors come back as they are. The result still wraps each broker's error.
func namedShards(err error) error {
	var se *kadm.ShardErrors
	if !errors.As(err, &se) {
		return err
	}
	errs := make([]error, 0, len(se.Errs))
	for _, s := range se.Errs {
		who := brokerLabel(s.Broker)
		if s.Broker.NodeID < 0 {
			who = "no broker"
		}
		errs = append(errs, fmt.Errorf("%s: %s: %w", se.Name, who, s.Err))
	}
	return errors.Join(errs...)
}

// itemError is what went wrong with one item of a verb (a topic, a
// partition): its name, the broker that answered (when one did) and Kafka's
// error with the broker's own message.
type itemError struct {
	item   string // "topic orders", "orders[2]"
	broker string // brokerLabel; "" when no broker is to blame
	err    error  // a *kerr.Error, or why nothing answered
	msg    string // the broker's message (ErrorMessage), if it sent one
}

func (e *itemError) Error() string {
	name, text := e.fields()
	var b strings.Builder
	b.WriteString(e.item + ": ")
	if e.broker != "" {
		b.WriteString(e.broker + ": ")
	}
	if name != "" {
		b.WriteString(name + ": ")
	}
	b.WriteString(text)
	return b.String()
}

func (e *itemError) Unwrap() error { return e.err }

// fields are the error and error_message of the item's JSON: Kafka's error
// name and the broker's message, else Kafka's description.
func (e *itemError) fields() (name, message string) {
	name, message = kafkaError(e.err)
	if e.msg != "" {
		message = e.msg
	}
	return name, message
}

// kafkaItemError is the itemError of a Kafka error code a broker answered
// for item, or nil for no error.
func kafkaItemError(item, broker string, code int16, msg *string) error {
	err := kerr.ErrorForCode(code)
	if err == nil {
		return nil
	}
	e := &itemError{item: item, broker: broker, err: err}
	if msg != nil {
		e.msg = *msg
	}
	return e
}

// errorFields are the JSON error and error_message of err (nil: none).
func errorFields(err error) (name, message string) {
	var ie *itemError
	if errors.As(err, &ie) {
		return ie.fields()
	}
	return kafkaError(err)
}

// failuresOf sums up the items' errors (nil entries are items that worked)
// as failures does, one line each.
func failuresOf(what string, errs []error) error {
	var lines []string
	var last error
	for _, err := range errs {
		if err != nil {
			lines = append(lines, err.Error())
			last = err
		}
	}
	return failures(what, len(errs), lines, last)
}

// topicArgs are positional TOPIC or TOPIC:P,... arguments, at least one.
func topicArgs(pos []string) (topicFlag, error) {
	if len(pos) == 0 {
		return nil, usagef("name at least one TOPIC or TOPIC:PARTITION,...")
	}
	var specs topicFlag
	for _, a := range pos {
		if err := specs.Set(a); err != nil {
			return nil, usagef("%q: %v", a, err)
		}
	}
	return specs, nil
}
