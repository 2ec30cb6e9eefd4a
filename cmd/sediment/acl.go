package main

// sediment acl: ACLs through the Kafka port, like Kafka's kafka-acls.sh
// (create, list, delete). The brokers need --authorizer acl; the caller needs
// CLUSTER ALTER to create and delete, CLUSTER DESCRIBE to list. The JSON each
// verb prints is documented on its types; fields are only ever added.

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var aclCommand = &command{
	name: "acl",
	about: "sediment acl: access control lists, through the Kafka port of any broker (like Kafka's\n" +
		"kafka-acls.sh). The brokers must run with --authorizer acl.",
	verbs: []verb{
		{name: "create", args: "--allow-principal P | --deny-principal P (--operation OP,... | --producer | --consumer) RESOURCE...", summary: "create ACLs: every principal x host x operation x resource", bind: bindACLCreate},
		{name: "list", args: "[RESOURCE...] [--principal P] [--operation OP]", summary: "the ACLs matching the filter (all when none is given)", bind: bindACLList},
		{name: "delete", args: "RESOURCE... [--principal P] [--operation OP]", summary: "delete the ACLs matching the filter and print them", bind: bindACLDelete},
	},
}

// aclJSON is one ACL of `acl list|create|delete --output json`:
//
//	{"acls": [{"principal": "User:alice", "host": "*", "resource_type": "TOPIC", "resource_name": "orders",
//	  "pattern_type": "LITERAL", "operation": "READ", "permission": "ALLOW"}]}
//
// create and delete add "error" to entries that failed.
type aclJSON struct {
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  string `json:"pattern_type"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
	Error        string `json:"error,omitempty"`
}

func newACLJSON(principal, host string, rt kmsg.ACLResourceType, name string, p kadm.ACLPattern, op kadm.ACLOperation, perm kmsg.ACLPermissionType) aclJSON {
	return aclJSON{Principal: principal, Host: host, ResourceType: rt.String(), ResourceName: name,
		PatternType: p.String(), Operation: op.String(), Permission: perm.String()}
}

// aclFlags are the resource and entry flags the verbs share.
type aclFlags struct {
	topics, groups, txnIDs multiFlag
	cluster                bool
	pattern                string
	principals, hosts      multiFlag
	ops                    string
}

// multiFlag is a flag that may be repeated; each use may hold a
// comma-separated list.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*m = append(*m, s)
		}
	}
	return nil
}

func (f *aclFlags) registerResources(fs *flag.FlagSet, patterns string) {
	fs.Var(&f.topics, "topic", "a topic `name` (repeatable, or comma-separated)")
	fs.Var(&f.groups, "group", "a consumer group `id` (repeatable, or comma-separated)")
	fs.Var(&f.txnIDs, "transactional-id", "a transactional `id` (repeatable, or comma-separated)")
	fs.BoolVar(&f.cluster, "cluster", false, "the cluster resource (kafka-cluster)")
	fs.StringVar(&f.pattern, "resource-pattern-type", "literal", "how resource names match: "+patterns)
}

var aclPatterns = map[string]kadm.ACLPattern{"literal": kadm.ACLPatternLiteral, "prefixed": kadm.ACLPatternPrefixed, "any": kadm.ACLPatternAny, "match": kadm.ACLPatternMatch}

// operations parses --operation: Kafka's names in any case, with '-' or '_'
// ("describe-configs", "IDEMPOTENT_WRITE").
func (f *aclFlags) operations(required bool) ([]kadm.ACLOperation, error) {
	var out []kadm.ACLOperation
	for _, s := range splitList(f.ops) {
		op, err := kmsg.ParseACLOperation(strings.ReplaceAll(strings.ToLower(s), "-", "_"))
		if err != nil || op == kmsg.ACLOperationUnknown || (required && op == kmsg.ACLOperationAny) {
			return nil, usagef("--operation %q: want one of all, read, write, create, delete, alter, describe, cluster-action, describe-configs, alter-configs, idempotent-write", s)
		}
		out = append(out, op)
	}
	if required && len(out) == 0 {
		return nil, usagef("--operation is required")
	}
	return out, nil
}

// resources applies the resource flags to b; it reports whether any was given.
func (f *aclFlags) resources(b *kadm.ACLBuilder, verb string) (bool, error) {
	p, ok := aclPatterns[strings.ToLower(f.pattern)]
	if !ok || (verb == "create" && p != kadm.ACLPatternLiteral && p != kadm.ACLPatternPrefixed) {
		return false, usagef("--resource-pattern-type %q: want literal or prefixed (and any or match to list or delete)", f.pattern)
	}
	b.ResourcePatternType(p)
	b.MaybeTopics(f.topics...).MaybeGroups(f.groups...).MaybeTransactionalIDs(f.txnIDs...).MaybeClusters(f.cluster)
	return len(f.topics)+len(f.groups)+len(f.txnIDs) > 0 || f.cluster, nil
}

func bindACLCreate(fs *flag.FlagSet) runFunc {
	var f aclFlags
	var allow, deny multiFlag
	var producer, consumer, idempotent bool
	f.registerResources(fs, "literal or prefixed")
	fs.Var(&allow, "allow-principal", "ALLOW for this `principal` (User:alice; repeatable)")
	fs.Var(&deny, "deny-principal", "DENY for this `principal` (repeatable)")
	fs.Var(&f.hosts, "host", "client IP `address` the ACLs apply to (repeatable; default * for every host)")
	fs.StringVar(&f.ops, "operation", "", "comma-separated `operations` (read, write, describe, all, ...)")
	fs.BoolVar(&producer, "producer", false, "instead of --operation, the producer role (kafka-acls --producer): WRITE, DESCRIBE and CREATE on the --topic names, WRITE and DESCRIBE on the --transactional-id names")
	fs.BoolVar(&consumer, "consumer", false, "instead of --operation, the consumer role (kafka-acls --consumer): READ and DESCRIBE on the --topic names, READ on the --group names")
	fs.BoolVar(&idempotent, "idempotent", false, "with --producer: also IDEMPOTENT_WRITE on the cluster")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		if len(pos) > 0 {
			return usagef("create takes flags only, got %q", pos)
		}
		if (len(allow) == 0) == (len(deny) == 0) {
			return usagef("give --allow-principal or --deny-principal (one of them)")
		}
		var builders []*kadm.ACLBuilder
		if producer || consumer || idempotent {
			var err error
			if builders, err = f.roleACLs(producer, consumer, idempotent); err != nil {
				return err
			}
		} else {
			ops, err := f.operations(true)
			if err != nil {
				return err
			}
			b := kadm.NewACLs().Operations(ops...)
			if any, err := f.resources(b, "create"); err != nil {
				return err
			} else if !any {
				return usagef("give a resource: --topic, --group, --transactional-id or --cluster")
			}
			builders = []*kadm.ACLBuilder{b}
		}
		hosts := []string(f.hosts)
		if len(hosts) == 0 {
			hosts = []string{"*"}
		}
		for _, b := range builders {
			if len(allow) > 0 {
				b.Allow(allow...).AllowHosts(hosts...)
			} else {
				b.Deny(deny...).DenyHosts(hosts...)
			}
			if err := b.ValidateCreate(); err != nil {
				return usagef("%v", err)
			}
		}
		adm, err := c.admin(ctx)
		if err != nil {
			return err
		}
		out := []aclJSON{}
		var failed error
		for _, b := range builders {
			results, err := adm.CreateACLs(ctx, b)
			if err != nil && len(results) == 0 {
				return err
			}
			for _, r := range results {
				j := newACLJSON(r.Principal, r.Host, r.Type, r.Name, r.Pattern, r.Operation, r.Permission)
				if r.Err != nil {
					name, msg := kafkaError(r.Err)
					j.Error = strings.TrimSpace(name + " " + r.ErrMessage)
					failed = cmp.Or(failed, fmt.Errorf("%s: %s", name, firstNonEmpty(r.ErrMessage, msg)))
				}
				out = append(out, j)
			}
		}
		if err := printACLs(c, s.out, out, true); err != nil {
			return err
		}
		return failed
	}
}

// roleACLs builds the ACLs of kafka-acls' convenience roles, one builder per
// set of operations; they take the resource flags but not --operation or
// --cluster. --producer needs --topic; --consumer needs --topic and --group.
func (f *aclFlags) roleACLs(producer, consumer, idempotent bool) ([]*kadm.ACLBuilder, error) {
	p, ok := aclPatterns[strings.ToLower(f.pattern)]
	switch {
	case !ok || (p != kadm.ACLPatternLiteral && p != kadm.ACLPatternPrefixed):
		return nil, usagef("--resource-pattern-type %q: want literal or prefixed", f.pattern)
	case f.ops != "" || f.cluster:
		return nil, usagef("--producer and --consumer name their operations: drop --operation and --cluster")
	case idempotent && !producer:
		return nil, usagef("--idempotent goes with --producer")
	case len(f.topics) == 0:
		return nil, usagef("--producer and --consumer need --topic")
	case consumer && len(f.groups) == 0:
		return nil, usagef("--consumer needs --group")
	case !consumer && len(f.groups) > 0:
		return nil, usagef("--group goes with --consumer")
	case !producer && len(f.txnIDs) > 0:
		return nil, usagef("--transactional-id goes with --producer")
	}
	var out []*kadm.ACLBuilder
	add := func(b *kadm.ACLBuilder, ops ...kadm.ACLOperation) {
		out = append(out, b.ResourcePatternType(p).Operations(ops...))
	}
	if producer {
		add(kadm.NewACLs().Topics(f.topics...), kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe, kmsg.ACLOperationCreate)
		if len(f.txnIDs) > 0 {
			add(kadm.NewACLs().TransactionalIDs(f.txnIDs...), kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe)
		}
		if idempotent {
			// The cluster resource is always the literal kafka-cluster.
			out = append(out, kadm.NewACLs().Clusters().ResourcePatternType(kadm.ACLPatternLiteral).Operations(kmsg.ACLOperationIdempotentWrite))
		}
	}
	if consumer {
		add(kadm.NewACLs().Topics(f.topics...), kmsg.ACLOperationRead, kmsg.ACLOperationDescribe)
		add(kadm.NewACLs().Groups(f.groups...), kmsg.ACLOperationRead)
	}
	return out, nil
}

func bindACLList(fs *flag.FlagSet) runFunc {
	var f aclFlags
	f.registerResources(fs, "literal, prefixed, match (the ACLs that apply to the named resources) or any")
	fs.Var(&f.principals, "principal", "only ACLs of this `principal` (repeatable)")
	fs.Var(&f.hosts, "host", "only ACLs of this `host` (repeatable)")
	fs.StringVar(&f.ops, "operation", "", "only ACLs of these comma-separated `operations`")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		b, err := aclFilter(&f, pos, "list")
		if err != nil {
			return err
		}
		adm, err := c.admin(ctx)
		if err != nil {
			return err
		}
		results, err := adm.DescribeACLs(ctx, b)
		if err != nil && len(results) == 0 {
			return err
		}
		out := []aclJSON{}
		seen := map[aclJSON]bool{}
		for _, r := range results {
			if r.Err != nil {
				name, msg := kafkaError(r.Err)
				return fmt.Errorf("%s: %s", name, firstNonEmpty(r.ErrMessage, msg))
			}
			for _, d := range r.Described {
				j := newACLJSON(d.Principal, d.Host, d.Type, d.Name, d.Pattern, d.Operation, d.Permission)
				if !seen[j] { // filters of several resource types may select the same ACL
					seen[j] = true
					out = append(out, j)
				}
			}
		}
		return printACLs(c, s.out, out, false)
	}
}

func bindACLDelete(fs *flag.FlagSet) runFunc {
	var f aclFlags
	f.registerResources(fs, "literal, prefixed, match or any")
	fs.Var(&f.principals, "principal", "only ACLs of this `principal` (repeatable)")
	fs.Var(&f.hosts, "host", "only ACLs of this `host` (repeatable)")
	fs.StringVar(&f.ops, "operation", "", "only ACLs of these comma-separated `operations`")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		b, err := aclFilter(&f, pos, "delete")
		if err != nil {
			return err
		}
		if !b.HasResource() {
			return usagef("give a resource to delete the ACLs of: --topic, --group, --transactional-id or --cluster")
		}
		adm, err := c.admin(ctx)
		if err != nil {
			return err
		}
		results, err := adm.DeleteACLs(ctx, b)
		if err != nil && len(results) == 0 {
			return err
		}
		out := []aclJSON{}
		for _, r := range results {
			if r.Err != nil {
				name, msg := kafkaError(r.Err)
				return fmt.Errorf("%s: %s", name, firstNonEmpty(r.ErrMessage, msg))
			}
			for _, d := range r.Deleted {
				if d.Err != nil {
					continue
				}
				out = append(out, newACLJSON(d.Principal, d.Host, d.Type, d.Name, d.Pattern, d.Operation, d.Permission))
			}
		}
		return printACLs(c, s.out, out, false)
	}
}

// aclFilter builds the filter of list and delete: the named resources (any
// resource of any type when none is named), principals, hosts, operations.
func aclFilter(f *aclFlags, pos []string, verb string) (*kadm.ACLBuilder, error) {
	if len(pos) > 0 {
		return nil, usagef("%s takes flags only, got %q", verb, pos)
	}
	ops, err := f.operations(false)
	if err != nil {
		return nil, err
	}
	b := kadm.NewACLs().Operations(ops...) // none: any operation
	named, err := f.resources(b, verb)
	if err != nil {
		return nil, err
	}
	if !named && verb == "list" {
		b.AnyResource().ResourcePatternType(kadm.ACLPatternAny)
	}
	// A filter's principal and host select both permissions.
	b.MaybeAllow(f.principals...).MaybeDeny(f.principals...).MaybeAllowHosts(f.hosts...).MaybeDenyHosts(f.hosts...)
	if len(f.principals) == 0 {
		b.Allow().Deny()
	}
	if len(f.hosts) == 0 {
		b.AllowHosts().DenyHosts()
	}
	if err := b.ValidateFilter(); err != nil {
		return nil, usagef("%v", err)
	}
	return b, nil
}

func printACLs(c *adminConn, w io.Writer, acls []aclJSON, withErrors bool) error {
	return c.print(w, map[string]any{"acls": acls}, func(w io.Writer) error {
		header := []string{"PRINCIPAL", "HOST", "PERMISSION", "OPERATION", "RESOURCE-TYPE", "RESOURCE", "PATTERN"}
		if withErrors {
			header = append(header, "ERROR")
		}
		t := newTable(w, header...)
		for _, a := range acls {
			row := []string{a.Principal, a.Host, a.Permission, a.Operation, a.ResourceType, a.ResourceName, a.PatternType}
			if withErrors {
				row = append(row, a.Error)
			}
			t.row(row...)
		}
		return t.flush()
	})
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
