package main

// The --config file of sediment serve: Java's properties format (what
// Kafka's server.properties is written in) holding Sediment's flag names
// and Kafka's broker config names side by side, so that an operator's
// existing server.properties mostly works.
//
// A Kafka name reaches a flag in one of these ways, tried in order:
//   - a special case (kafkaSpecial): listeners and their security protocol
//     map, log.dirs, process.roles, the KRaft quorum names (mapped onto the
//     etcd flags), retention and roll in other units, log.flush.interval.messages;
//   - a renamed flag (kafkaRenamed), e.g. broker.rack to --rack;
//   - the flag named like it with dashes for dots (num.partitions to
//     --num-partitions); for a duration flag the name carries its unit
//     (group.initial.rebalance.delay.ms to --group-initial-rebalance-delay).
//
// Kafka names with no Sediment equivalent are an error with the reason
// (kafkaUnsupported), except for a few tuning knobs of Kafka's own thread
// pools and socket buffers, which are ignored with a warning (kafkaIgnored);
// any other name is an error listing its near misses.

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxConfigFileBytes bounds the --config file read into memory.
const maxConfigFileBytes = 1 << 20

// property is one name = value of a properties file.
type property struct {
	name, value string
	line        int // where its logical line starts, from 1
}

// parseProperties reads Java's properties format as Kafka does
// (java.util.Properties.load): "name=value", "name: value" or "name value";
// '#' or '!' start a comment line; a line ending in an odd number of
// backslashes continues on the next one (whose leading blanks are dropped);
// \t \n \r \f \uXXXX and backslash-anything escapes in names and values. A
// name given twice keeps its last value, as in Java. The text is read as
// UTF-8 (Java reads ISO-8859-1; \u escapes mean the same in both).
func parseProperties(data []byte) ([]property, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not UTF-8 text")
	}
	var out []property
	index := map[string]int{}
	lines := splitNaturalLines(string(data))
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := trimLeftBlank(lines[i])
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		logical := line
		for endsInEscape(logical) {
			logical = logical[:len(logical)-1]
			if i+1 == len(lines) {
				break
			}
			i++
			logical += trimLeftBlank(lines[i])
		}
		rawName, rawValue := splitProperty(logical)
		name, err := unescapeProperty(rawName)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start, err)
		}
		value, err := unescapeProperty(rawValue)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", start, name, err)
		}
		p := property{name: name, value: value, line: start}
		if j, ok := index[name]; ok {
			out[j] = p
			continue
		}
		index[name] = len(out)
		out = append(out, p)
	}
	return out, nil
}

// splitNaturalLines splits at \n, \r\n and \r.
func splitNaturalLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Split(strings.ReplaceAll(s, "\r", "\n"), "\n")
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

func trimLeftBlank(s string) string {
	return strings.TrimLeft(s, " \t\f")
}

// endsInEscape reports whether s ends in an odd number of backslashes: its
// line terminator is escaped.
func endsInEscape(s string) bool {
	n := len(s) - len(strings.TrimRight(s, `\`))
	return n%2 == 1
}

// splitProperty splits a logical line at the first unescaped '=', ':' or
// blank, with the blanks around it and one '=' or ':' after blanks.
func splitProperty(line string) (name, value string) {
	i := 0
	for i < len(line) {
		c := line[i]
		if c == '\\' {
			i += 2
			continue
		}
		if c == '=' || c == ':' || isBlank(c) {
			break
		}
		i++
	}
	i = min(i, len(line))
	name, rest := line[:i], line[i:]
	rest = trimLeftBlank(rest)
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = trimLeftBlank(rest[1:])
	}
	return name, rest
}

// unescapeProperty resolves the escapes of a name or value.
func unescapeProperty(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			break // a backslash at the very end of the file: nothing to escape
		}
		switch c = s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf(`malformed \uXXXX escape %q`, s[i-1:])
			}
			r, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf(`malformed \uXXXX escape %q`, s[i-1:i+5])
			}
			b.WriteRune(rune(r))
			i += 4
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// setting is a flag value a config file asks for.
type setting struct {
	flag, value string
	from        property // the property it came from, for messages
	rank        int      // among names that set the same flag, the higher wins (Kafka's precedence); 0: no precedence, two are a conflict
}

// configFile is a --config file being mapped onto the serve flags.
type configFile struct {
	fs       *flag.FlagSet
	props    map[string]property
	settings []setting
	warnings []string
	errs     []error
}

// applyConfigFile applies the --config file at path to fs: every setting
// that neither the command line (set) nor a SEDIMENT_* variable gave.
// Warnings (ignored Kafka names) go to fs's output.
func applyConfigFile(fs *flag.FlagSet, path string, set map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileBytes+1))
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if len(data) > maxConfigFileBytes {
		return fmt.Errorf("config file %s: larger than %d bytes", path, maxConfigFileBytes)
	}
	props, err := parseProperties(data)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	settings, warnings, err := resolveConfig(fs, props)
	for _, w := range warnings {
		fmt.Fprintf(fs.Output(), "sediment serve: %s:%s\n", path, w)
	}
	if err != nil {
		return prefixLines(path+":", err)
	}
	var errs []error
	for _, s := range settings {
		if set[s.flag] {
			continue
		}
		if _, inEnv := os.LookupEnv(envName(s.flag)); inEnv {
			continue
		}
		if err := fs.Set(s.flag, s.value); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s: invalid value: %w", path, s.from.line, describeSetting(s), err))
		}
	}
	return errors.Join(errs...)
}

// prefixLines puts prefix before every error joined in err.
func prefixLines(prefix string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = append(errs, fmt.Errorf("%s%w", prefix, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s%w", prefix, err)
}

// describeSetting names a setting for messages: "log.retention.hours=168
// (--log-retention-ms=604800000)".
func describeSetting(s setting) string {
	if s.from.name == s.flag {
		return s.flag
	}
	return fmt.Sprintf("%s=%s (as --%s=%s)", s.from.name, s.from.value, s.flag, s.value)
}

// resolveConfig maps a file's properties onto flags of fs. Every problem is
// reported, each as "LINE: message", joined.
func resolveConfig(fs *flag.FlagSet, props []property) ([]setting, []string, error) {
	c := &configFile{fs: fs, props: map[string]property{}}
	for _, p := range props {
		c.props[p.name] = p
	}
	for _, p := range props {
		c.resolve(p)
	}
	settings := c.merge()
	return settings, c.warnings, errors.Join(c.errs...)
}

func (c *configFile) errorf(p property, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%d: %s: %s", p.line, p.name, fmt.Sprintf(format, args...)))
}

func (c *configFile) set(p property, flagName, value string, rank int) {
	c.settings = append(c.settings, setting{flag: flagName, value: value, from: p, rank: rank})
}

// resolve maps one property.
func (c *configFile) resolve(p property) {
	value := strings.TrimSpace(p.value)
	if p.name == "config" {
		c.errorf(p, "a config file cannot name another")
		return
	}
	// Kafka's listeners is also a flag's name; the file's means Kafka's.
	if special, ok := kafkaSpecial[p.name]; ok {
		special(c, p, value)
		return
	}
	if c.fs.Lookup(p.name) != nil {
		c.set(p, p.name, value, 0)
		return
	}
	if to, ok := kafkaRenamed[p.name]; ok {
		c.set(p, to, value, 0)
		return
	}
	if flagName, v, ok, err := c.byKafkaName(p.name, value); ok {
		if err != nil {
			c.errorf(p, "%v", err)
			return
		}
		c.set(p, flagName, v, 0)
		return
	}
	if why, ok := kafkaIgnored[p.name]; ok {
		c.warnings = append(c.warnings, fmt.Sprintf("%d: %s ignored: %s", p.line, p.name, why))
		return
	}
	if why, ok := unsupportedReason(p.name); ok {
		c.errorf(p, "Kafka's setting has no equivalent in Sediment: %s", why)
		return
	}
	msg := "unknown setting"
	if near := nearMisses(p.name, c.knownNames()); len(near) > 0 {
		msg += "; did you mean " + strings.Join(near, ", ") + "?"
	}
	c.errorf(p, "%s (settings are serve's flag names, see 'sediment serve --help', or Kafka's broker config names)", msg)
}

// unitOf are the units a Kafka name may end in, for a duration flag.
var unitOf = map[string]time.Duration{".ms": time.Millisecond, ".seconds": time.Second, ".minutes": time.Minute, ".hours": time.Hour}

// byKafkaName maps a Kafka name onto the flag named like it: dots become
// dashes; for a duration flag the name ends in its unit (.ms, .seconds,
// .minutes, .hours), which the value is converted from. ok is false when
// no flag is named so.
func (c *configFile) byKafkaName(name, value string) (flagName, flagValue string, ok bool, err error) {
	if !strings.Contains(name, ".") || name != strings.ToLower(name) {
		return "", "", false, nil
	}
	dashed := strings.ReplaceAll(name, ".", "-")
	if f := c.fs.Lookup(dashed); f != nil && !isDurationFlag(f) {
		return dashed, value, true, nil
	}
	for suffix, unit := range unitOf {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f := c.fs.Lookup(strings.ReplaceAll(base, ".", "-"))
		if f == nil || !isDurationFlag(f) {
			continue
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || n > int64(1<<63-1)/int64(unit) {
			return f.Name, "", true, fmt.Errorf("%q: want a whole number of %s from 0", value, strings.TrimPrefix(suffix, "."))
		}
		return f.Name, (time.Duration(n) * unit).String(), true, nil
	}
	return "", "", false, nil
}

func isDurationFlag(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, ok = g.Get().(time.Duration)
	return ok
}

// merge resolves names that set the same flag: the higher rank wins
// (log.retention.ms over .minutes over .hours, as in Kafka); two of the same
// rank with different values are a conflict.
func (c *configFile) merge() []setting {
	var out []setting
	byFlag := map[string]int{}
	for _, s := range c.settings {
		i, seen := byFlag[s.flag]
		if !seen {
			byFlag[s.flag] = len(out)
			out = append(out, s)
			continue
		}
		prev := out[i]
		switch {
		case s.rank > prev.rank:
			out[i] = s
		case s.rank < prev.rank:
		case s.value != prev.value:
			c.errs = append(c.errs, fmt.Errorf("%d: %s and line %d: %s both set --%s, to different values (%q, %q)",
				s.from.line, s.from.name, prev.from.line, prev.from.name, s.flag, prev.value, s.value))
		}
	}
	return out
}

// kafkaRenamed are Kafka names whose flag is named differently.
var kafkaRenamed = map[string]string{
	"broker.id":                    "node-id", // the ZooKeeper-era name of node.id
	"broker.rack":                  "rack",
	"auto.create.topics.enable":    "auto-create-topics",
	"auto.leader.rebalance.enable": "auto-leader-rebalance",
}

// kafkaSpecial are Kafka names whose value needs more than a rename. Each
// reads the file's other properties as it needs (c.props).
var kafkaSpecial = map[string]func(c *configFile, p property, value string){
	"log.dirs":                            mapLogDirs,
	"log.dir":                             mapLogDirs,
	"listeners":                           mapListeners,
	"advertised.listeners":                mapAdvertisedListeners,
	"listener.security.protocol.map":      mapProtocolMap,
	"security.inter.broker.protocol":      mapInterBrokerProtocol,
	"controller.listener.names":           func(*configFile, property, string) {}, // read by mapListeners
	"process.roles":                       mapProcessRoles,
	"controller.quorum.voters":            mapQuorumVoters,
	"controller.quorum.bootstrap.servers": mapQuorumBootstrap,
	"log.retention.ms":                    inMillis("log-retention-ms", time.Millisecond, 3),
	"log.retention.minutes":               inMillis("log-retention-ms", time.Minute, 2),
	"log.retention.hours":                 inMillis("log-retention-ms", time.Hour, 1),
	"log.roll.ms":                         inMillis("log-roll-ms", time.Millisecond, 2),
	"log.roll.hours":                      inMillis("log-roll-ms", time.Hour, 1),
	"log.flush.interval.messages":         mapFlushMessages,
	"remote.log.storage.system.enable":    mapRemoteStorage,
	"authorizer.class.name":               mapAuthorizer, // serve_authz.go
}

// inMillis maps a Kafka name in unit onto a flag in milliseconds, with its
// rank among the names of that flag; -1 (unlimited) stays -1.
func inMillis(flagName string, unit time.Duration, rank int) func(*configFile, property, string) {
	return func(c *configFile, p property, value string) {
		n, err := strconv.ParseInt(value, 10, 64)
		per := int64(unit / time.Millisecond)
		switch {
		case err != nil:
			c.errorf(p, "%q is not a whole number", value)
		case n == -1:
			c.set(p, flagName, "-1", rank)
		case n < 0 || n > (1<<63-1)/per:
			c.errorf(p, "%d is out of range", n)
		default:
			c.set(p, flagName, strconv.FormatInt(n*per, 10), rank)
		}
	}
}

// mapLogDirs: Sediment keeps a broker's data in one directory; log.dirs
// wins over log.dir, as in Kafka.
func mapLogDirs(c *configFile, p property, value string) {
	dirs := splitList(value)
	switch {
	case len(dirs) == 0:
		c.errorf(p, "names no directory")
	case len(dirs) > 1:
		c.errorf(p, "Sediment keeps a broker's data in one directory (--data-dir); this lists %d: %s", len(dirs), strings.Join(dirs, ", "))
	default:
		c.set(p, "data-dir", dirs[0], map[string]int{"log.dirs": 2, "log.dir": 1}[p.name])
	}
}

// listener is one entry of listeners or advertised.listeners.
type listener struct {
	name, host, port string
}

// parseListeners parses "NAME://HOST:PORT,..." (an empty host is every
// interface).
func parseListeners(value string) ([]listener, error) {
	var out []listener
	for _, entry := range splitList(value) {
		name, addr, ok := strings.Cut(entry, "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want NAME://HOST:PORT", entry)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", entry, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("%q: port %q is not a port number", entry, port)
		}
		if slices.ContainsFunc(out, func(l listener) bool { return strings.EqualFold(l.name, name) }) {
			return nil, fmt.Errorf("listener %s named twice", name)
		}
		out = append(out, listener{name: strings.ToUpper(name), host: host, port: port})
	}
	return out, nil
}

// protocolOf is the security protocol of a listener name, from
// listener.security.protocol.map or, without one, the name itself.
func (c *configFile) protocolOf(name string) string {
	if p, ok := c.props["listener.security.protocol.map"]; ok {
		for _, pair := range splitList(p.value) {
			n, proto, _ := strings.Cut(pair, ":")
			if strings.EqualFold(strings.TrimSpace(n), name) {
				return strings.ToUpper(strings.TrimSpace(proto))
			}
		}
		return ""
	}
	return name
}

// isControllerListener reports whether name is in controller.listener.names:
// a KRaft controller's listener, which Sediment's etcd quorum replaces.
func (c *configFile) isControllerListener(name string) bool {
	p, ok := c.props["controller.listener.names"]
	return ok && slices.ContainsFunc(splitList(p.value), func(n string) bool { return strings.EqualFold(n, name) })
}

// brokerListeners are the listeners of listeners other than the
// controller's, and the controller listener if there is one.
func (c *configFile) brokerListeners(p property) (brokers []listener, controller *listener, err error) {
	ls, err := parseListeners(p.value)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range ls {
		if c.isControllerListener(l.name) {
			controller = &l
			continue
		}
		switch c.protocolOf(l.name) {
		case "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
		default:
			return nil, nil, fmt.Errorf("listener %s has no security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL) in listener.security.protocol.map", l.name)
		}
		brokers = append(brokers, l)
	}
	if len(brokers) == 0 {
		return nil, nil, errors.New("lists no listener besides controller.listener.names")
	}
	return brokers, controller, nil
}

// plainOnly reports whether the listeners are the one PLAINTEXT listener
// --listen describes.
func (c *configFile) plainOnly(brokers []listener) bool {
	return len(brokers) == 1 && brokers[0].name == "PLAINTEXT" && c.protocolOf("PLAINTEXT") == "PLAINTEXT"
}

// joinListeners formats listeners for --listeners and
// --advertised-listeners (an empty host: every interface).
func joinListeners(ls []listener, emptyHost string) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, l.name+"://"+net.JoinHostPort(cmp.Or(l.host, emptyHost), l.port))
	}
	return strings.Join(parts, ",")
}

// mapListeners: one PLAINTEXT listener becomes --listen, any other set of
// listeners --listeners (an empty host: every interface); the KRaft
// controller listener, when the file also names the quorum with
// controller.quorum.voters, becomes the port of this broker's etcd peer
// (--meta-peer-listen).
func mapListeners(c *configFile, p property, _ string) {
	bs, ctl, err := c.brokerListeners(p)
	if err != nil {
		c.errorf(p, "%v", err)
		return
	}
	if c.plainOnly(bs) {
		c.set(p, "listen", net.JoinHostPort(cmp.Or(bs[0].host, "0.0.0.0"), bs[0].port), 0)
	} else {
		c.set(p, "listeners", joinListeners(bs, "0.0.0.0"), 0)
	}
	if _, voters := c.props["controller.quorum.voters"]; ctl != nil && voters {
		c.set(p, "meta-peer-listen", net.JoinHostPort(cmp.Or(ctl.host, "0.0.0.0"), ctl.port), 0)
	}
}

// mapAdvertisedListeners: the advertised addresses of the broker listeners
// become --advertise (the one PLAINTEXT listener) or
// --advertised-listeners; the controller's is the etcd peer's, which comes
// from the quorum names.
func mapAdvertisedListeners(c *configFile, p property, _ string) {
	ls, err := parseListeners(p.value)
	if err != nil {
		c.errorf(p, "%v", err)
		return
	}
	brokers := []listener{{name: "PLAINTEXT"}}
	if lp, ok := c.props["listeners"]; ok {
		if brokers, _, err = c.brokerListeners(lp); err != nil {
			return // reported at listeners
		}
	}
	var adv []listener
	for _, l := range ls {
		switch {
		case c.isControllerListener(l.name):
		case !slices.ContainsFunc(brokers, func(b listener) bool { return b.name == l.name }):
			c.errorf(p, "listener %s is not in listeners", l.name)
		case l.host == "":
			c.errorf(p, "listener %s advertises no host", l.name)
		default:
			adv = append(adv, l)
		}
	}
	switch {
	case len(adv) == 0:
	case c.plainOnly(brokers):
		c.set(p, "advertise", net.JoinHostPort(adv[0].host, adv[0].port), 0)
	default:
		c.set(p, "advertised-listeners", joinListeners(adv, ""), 0)
	}
}

// mapProtocolMap: listener.security.protocol.map without the controller
// listener's entry (etcd's peer port has no Kafka protocol).
func mapProtocolMap(c *configFile, p property, value string) {
	var keep []string
	for _, pair := range splitList(value) {
		name, _, _ := strings.Cut(pair, ":")
		if !c.isControllerListener(strings.TrimSpace(name)) {
			keep = append(keep, pair)
		}
	}
	c.set(p, "listener-security-protocol-map", strings.Join(keep, ","), 0)
}

// mapInterBrokerProtocol: security.inter.broker.protocol names the
// inter-broker listener by its protocol, the listener of listeners that
// has it; Kafka refuses it together with inter.broker.listener.name.
func mapInterBrokerProtocol(c *configFile, p property, value string) {
	if _, ok := c.props["inter.broker.listener.name"]; ok {
		c.errorf(p, "set only one of inter.broker.listener.name and security.inter.broker.protocol")
		return
	}
	proto := strings.ToUpper(value)
	name := proto
	if lp, ok := c.props["listeners"]; ok {
		bs, _, err := c.brokerListeners(lp)
		if err != nil {
			return // reported at listeners
		}
		i := slices.IndexFunc(bs, func(l listener) bool { return c.protocolOf(l.name) == proto })
		if i < 0 {
			c.errorf(p, "no listener of listeners is %s", proto)
			return
		}
		name = bs[i].name
	}
	c.set(p, "inter-broker-listener-name", name, 0)
}

// mapProcessRoles: every Sediment broker is a broker; the controller role
// is etcd's and the controller election's, in every broker.
func mapProcessRoles(c *configFile, p property, value string) {
	roles := splitList(value)
	if !slices.Contains(roles, "broker") {
		c.errorf(p, "Sediment has no controller-only nodes (the etcd quorum and the controller election live in the brokers); want broker or broker,controller")
	}
	for _, r := range roles {
		if r != "broker" && r != "controller" {
			c.errorf(p, "unknown role %q", r)
		}
	}
}

// mapQuorumVoters: Kafka's KRaft voters "ID@HOST:PORT,..." become the etcd
// quorum, one member per voter at the same address
// (--meta-initial-cluster ID=http://HOST:PORT,...).
func mapQuorumVoters(c *configFile, p property, value string) {
	var members []string
	for _, v := range splitList(value) {
		id, addr, ok := strings.Cut(v, "@")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || n < 0 {
			c.errorf(p, "%q: want ID@HOST:PORT", v)
			return
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			c.errorf(p, "%q: %v", v, err)
			return
		}
		members = append(members, fmt.Sprintf("%d=http://%s", n, addr))
	}
	if len(members) == 0 {
		c.errorf(p, "names no voter")
		return
	}
	c.set(p, "meta-initial-cluster", strings.Join(members, ","), 0)
}

// mapQuorumBootstrap: Kafka's KIP-853 bootstrap servers carry no node ids;
// one server is this broker's own single etcd member (its peer address), a
// longer list needs the ids of controller.quorum.voters.
func mapQuorumBootstrap(c *configFile, p property, value string) {
	if _, voters := c.props["controller.quorum.voters"]; voters {
		return // the voters name the quorum
	}
	servers := splitList(value)
	if len(servers) != 1 {
		c.errorf(p, "Sediment's etcd quorum needs each member's node id: use controller.quorum.voters=ID@HOST:PORT,... or meta-initial-cluster")
		return
	}
	if _, _, err := net.SplitHostPort(servers[0]); err != nil {
		c.errorf(p, "%q: %v", servers[0], err)
		return
	}
	c.set(p, "meta-peer-listen", servers[0], 0)
}

// mapFlushMessages: 1 is an fsync covering every batch before its
// acknowledgement (--flush-policy group-commit), more leaves flushing to
// the OS as Kafka's default does.
func mapFlushMessages(c *configFile, p property, value string) {
	n, err := strconv.ParseInt(value, 10, 64)
	switch {
	case err != nil || n < 1:
		c.errorf(p, "%q: want a count from 1", value)
	case n == 1:
		c.set(p, "flush-policy", "group-commit", 0)
	default:
		c.set(p, "flush-policy", "os", 0)
	}
}

// mapRemoteStorage: Sediment tiers when --tier names an object store, which
// no Kafka setting does (Kafka names a RemoteStorageManager class and its
// own settings); true is accepted beside a tier setting in the same file.
func mapRemoteStorage(c *configFile, p property, value string) {
	on, err := strconv.ParseBool(value)
	_, tier := c.props["tier"]
	switch {
	case err != nil:
		c.errorf(p, "%q: want true or false", value)
	case on && !tier:
		c.errorf(p, "Sediment tiers when tier (--tier) names an object store: add tier = file:///path or s3://bucket/prefix?endpoint=...")
	case !on && tier:
		c.errorf(p, "false, but tier names an object store: remove one of them")
	}
}

// kafkaIgnored are Kafka names that tune what Sediment does not have (the
// JVM broker's thread pools and socket buffers, share groups); they appear
// in Kafka's stock server.properties, so they are ignored with a warning
// rather than refused.
var kafkaIgnored = map[string]string{
	"num.network.threads":                              "Sediment has no network thread pool (a goroutine pair per connection)",
	"num.io.threads":                                   "Sediment has no request handler pool",
	"background.threads":                               "Sediment has no background thread pool",
	"queued.max.requests":                              "Sediment bounds requests per connection, not in a shared queue",
	"num.replica.fetchers":                             "Sediment runs one fetcher per leader broker",
	"num.recovery.threads.per.data.dir":                "Sediment recovers logs with its own parallelism",
	"socket.send.buffer.bytes":                         "Sediment leaves socket buffers to the OS",
	"socket.receive.buffer.bytes":                      "Sediment leaves socket buffers to the OS",
	"group.coordinator.rebalance.protocols":            "Sediment serves the classic and consumer protocols",
	"share.coordinator.state.topic.replication.factor": "share groups (KIP-932) are not implemented",
	"share.coordinator.state.topic.min.isr":            "share groups (KIP-932) are not implemented",
}

// kafkaUnsupported are Kafka names (or prefixes, ending in '.') with no
// Sediment equivalent, with why; setting one is an error.
var kafkaUnsupported = map[string]string{
	"zookeeper.":                            "Sediment keeps metadata in etcd (--meta-*), not ZooKeeper",
	"log.flush.interval.ms":                 "Sediment flushes per batch (log.flush.interval.messages=1, --flush-policy group-commit) or leaves it to the OS",
	"log.flush.scheduler.interval.ms":       "Sediment flushes per batch or leaves it to the OS",
	"remote.log.storage.manager.":           "Sediment's tier is --tier (file:///path or s3://bucket/prefix)",
	"remote.log.metadata.manager.":          "Sediment keeps remote segment metadata in etcd",
	"rsm.config.":                           "Sediment's tier is --tier (file:///path or s3://bucket/prefix)",
	"ssl.":                                  "TLS reads PEM files: --ssl-cert-file, --ssl-key-file (unencrypted), --ssl-ca-file; and --ssl-client-auth, --ssl-principal-mapping-rules (no keystores, truststores or per-listener settings)",
	"sasl.":                                 "SASL is PLAIN and SCRAM with credentials in etcd: --sasl-enabled-mechanisms, --sasl-mechanism-inter-broker-protocol, --sasl-inter-broker-user, --sasl-inter-broker-password-file (no JAAS, GSSAPI or OAUTHBEARER)",
	"listener.name.":                        "per-listener settings are not implemented; TLS and SASL settings apply to every listener",
	"authorizer.class.name":                 "ACLs are not implemented yet",
	"super.users":                           "ACLs are not implemented yet",
	"allow.everyone.if.no.acl.found":        "ACLs are not implemented yet",
	"unclean.leader.election.enable":        "set it per topic (unclean.leader.election.enable topic config)",
	"compression.type":                      "set it per topic (compression.type topic config; Sediment keeps producer compression)",
	"metadata.log.dir":                      "Sediment keeps metadata in etcd under --data-dir/meta",
	"controller.quorum.election.timeout.ms": "etcd's elections are not tuned here",
	"controller.quorum.fetch.timeout.ms":    "etcd's elections are not tuned here",
	"metric.reporters":                      "Sediment exports Prometheus metrics on --http",
	"log.message.format.version":            "Sediment writes record batches v2 only",
	"inter.broker.protocol.version":         "Sediment has one protocol version",
}

// unsupportedReason finds name in kafkaUnsupported, by prefix too.
func unsupportedReason(name string) (string, bool) {
	if why, ok := kafkaUnsupported[name]; ok && !strings.HasSuffix(name, ".") {
		return why, true
	}
	for k, why := range kafkaUnsupported {
		if strings.HasSuffix(k, ".") && strings.HasPrefix(name, k) {
			return why, true
		}
	}
	return "", false
}

// knownNames are the names a file may use, for near misses: the flags, the
// Kafka name of each (dashes to dots, a duration's in .ms) and the special,
// renamed and ignored Kafka names.
func (c *configFile) knownNames() []string {
	var names []string
	c.fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		names = append(names, f.Name)
		dotted := strings.ReplaceAll(f.Name, "-", ".")
		if isDurationFlag(f) {
			dotted += ".ms"
		}
		names = append(names, dotted)
	})
	for _, m := range []map[string]string{kafkaRenamed, kafkaIgnored} {
		for k := range m {
			names = append(names, k)
		}
	}
	for k := range kafkaSpecial {
		names = append(names, k)
	}
	return names
}

// nearMisses are the (at most three) names of known closest to name by
// edit distance, ignoring case, within a fifth of its length (at least 2).
func nearMisses(name string, known []string) []string {
	type cand struct {
		name string
		d    int
	}
	lower := strings.ToLower(name)
	limit := max(2, len(name)/5)
	var cs []cand
	for _, k := range known {
		if d := editDistance(lower, strings.ToLower(k)); d <= limit {
			cs = append(cs, cand{k, d})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int { return cmp.Or(cmp.Compare(a.d, b.d), strings.Compare(a.name, b.name)) })
	var out []string
	for _, c := range cs {
		if !slices.Contains(out, c.name) && len(out) < 3 {
			out = append(out, c.name)
		}
	}
	return out
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
