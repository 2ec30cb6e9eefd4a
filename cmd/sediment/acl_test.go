package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sedimentio/sediment/broker"
)

// TestACLCommands: `acl create`, `acl list` with its filters and `acl
// delete` against a broker run with --authorizer acl (the CLI's principal,
// User:ANONYMOUS, a super user through --super-users); bad command lines
// exit 2; a broker without an authorizer answers SECURITY_DISABLED (exit 1).
func TestACLCommands(t *testing.T) {
	addr := startBroker(t, "--log-level", "warn", "--authorizer", "acl", "--super-users", "User:admin;User:ANONYMOUS")
	run := func(want int, args ...string) string {
		t.Helper()
		stdout, stderr, code := cli(t, append(args, "--bootstrap-server", addr)...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, stdout, stderr)
		}
		return stdout + stderr
	}
	list := func(args ...string) []string {
		t.Helper()
		var out struct{ ACLs []aclJSON }
		if err := json.Unmarshal([]byte(run(0, append([]string{"acl", "list", "--output", "json"}, args...)...)), &out); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range out.ACLs {
			got = append(got, strings.Join([]string{a.Principal, a.Permission, a.Operation, a.ResourceType, a.ResourceName, a.PatternType}, " "))
		}
		slices.Sort(got)
		return got
	}

	run(0, "acl", "create", "--allow-principal", "User:alice", "--operation", "read,describe", "--topic", "orders", "--group", "g1")
	out := run(0, "acl", "create", "--deny-principal", "User:bob", "--operation", "WRITE", "--topic", "ord", "--resource-pattern-type", "prefixed")
	if !strings.Contains(out, "User:bob") || !strings.Contains(out, "DENY") {
		t.Fatalf("create prints the ACL: %s", out)
	}
	all := []string{
		"User:alice ALLOW DESCRIBE GROUP g1 LITERAL", "User:alice ALLOW DESCRIBE TOPIC orders LITERAL",
		"User:alice ALLOW READ GROUP g1 LITERAL", "User:alice ALLOW READ TOPIC orders LITERAL",
		"User:bob DENY WRITE TOPIC ord PREFIXED",
	}
	if got := list(); !slices.Equal(got, all) {
		t.Fatalf("list: %q, want %q", got, all)
	}
	want := []string{"User:alice ALLOW DESCRIBE TOPIC orders LITERAL", "User:alice ALLOW READ TOPIC orders LITERAL", "User:bob DENY WRITE TOPIC ord PREFIXED"}
	if got := list("--topic", "orders", "--resource-pattern-type", "match"); !slices.Equal(got, want) {
		t.Fatalf("list --topic orders (match): %q, want %q", got, want)
	}
	if got := list("--principal", "User:bob"); !slices.Equal(got, all[4:]) {
		t.Fatalf("list --principal User:bob: %q", got)
	}
	if got := list("--operation", "read"); !slices.Equal(got, []string{all[2], all[3]}) {
		t.Fatalf("list --operation read: %q", got)
	}
	if table := run(0, "acl", "list"); !strings.Contains(table, "PRINCIPAL") || !strings.Contains(table, "User:alice") {
		t.Fatalf("table: %s", table)
	}
	if out := run(0, "acl", "delete", "--topic", "orders", "--output", "json"); strings.Count(out, `"principal"`) != 2 {
		t.Fatalf("delete --topic orders printed %s, want its 2 ACLs", out)
	}
	if got := list(); !slices.Equal(got, []string{all[0], all[2], all[4]}) {
		t.Fatalf("after delete: %q", got)
	}

	for _, bad := range [][]string{
		{"acl", "create", "--allow-principal", "User:a", "--operation", "frob", "--topic", "x"},
		{"acl", "create", "--operation", "read", "--topic", "x"},
		{"acl", "create", "--allow-principal", "User:a", "--deny-principal", "User:b", "--operation", "read", "--topic", "x"},
		{"acl", "create", "--allow-principal", "User:a", "--operation", "read"},
		{"acl", "create", "--allow-principal", "User:a", "--operation", "read", "--topic", "x", "--resource-pattern-type", "match"},
		{"acl", "delete"},
		{"acl", "create", "--allow-principal", "User:a", "--producer", "--operation", "read", "--topic", "x"},
		{"acl", "create", "--allow-principal", "User:a", "--consumer", "--topic", "x"},
		{"acl", "create", "--allow-principal", "User:a", "--producer", "--group", "g", "--topic", "x"},
		{"acl", "create", "--allow-principal", "User:a", "--idempotent", "--topic", "x"},
		{"acl", "create", "--allow-principal", "User:a", "--producer"},
	} {
		run(2, bad...)
	}

	// kafka-acls' roles: --producer (with a transactional id and
	// --idempotent) and --consumer.
	run(0, "acl", "create", "--allow-principal", "User:carol", "--producer", "--idempotent", "--topic", "events", "--transactional-id", "tx1")
	run(0, "acl", "create", "--allow-principal", "User:dave", "--consumer", "--topic", "events-", "--group", "readers-", "--resource-pattern-type", "prefixed")
	roles := []string{
		"User:carol ALLOW CREATE TOPIC events LITERAL", "User:carol ALLOW DESCRIBE TOPIC events LITERAL",
		"User:carol ALLOW DESCRIBE TRANSACTIONAL_ID tx1 LITERAL", "User:carol ALLOW IDEMPOTENT_WRITE CLUSTER kafka-cluster LITERAL",
		"User:carol ALLOW WRITE TOPIC events LITERAL", "User:carol ALLOW WRITE TRANSACTIONAL_ID tx1 LITERAL",
		"User:dave ALLOW DESCRIBE TOPIC events- PREFIXED", "User:dave ALLOW READ GROUP readers- PREFIXED",
		"User:dave ALLOW READ TOPIC events- PREFIXED",
	}
	var got []string
	for _, who := range []string{"User:carol", "User:dave"} {
		got = append(got, list("--principal", who)...)
	}
	if !slices.Equal(got, roles) {
		t.Fatalf("the roles' ACLs: %q, want %q", got, roles)
	}

	plain := startBroker(t, "--log-level", "warn")
	stdout, stderr, code := cli(t, "acl", "list", "--bootstrap-server", plain)
	if code != 1 || !strings.Contains(stderr, "SECURITY_DISABLED") {
		t.Fatalf("list without an authorizer: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

// TestServeAuthzFlags: the authorization flags reach broker.Config; bad
// values are refused naming the flag.
func TestServeAuthzFlags(t *testing.T) {
	wantAuthzConfig(t, []string{"--authorizer", "acl", "--super-users", "User:admin; User:broker", "--allow-everyone-if-no-acl-found"})
	b := broker.DefaultConfig()
	var d serveFlags
	if err := parseFlags(serveFlagSet(&d), nil, nil); err != nil {
		t.Fatal(err)
	}
	b = broker.DefaultConfig()
	if err := d.authz.apply(&b); err != nil || b.Authorizer != "" || b.SuperUsers != nil || b.AllowEveryoneIfNoACLFound {
		t.Fatalf("defaults: %q %q %v %v", b.Authorizer, b.SuperUsers, b.AllowEveryoneIfNoACLFound, err)
	}
	for _, args := range [][]string{{"--authorizer", "simple"}, {"--super-users", "admin"}} {
		var x serveFlags
		if err := parseFlags(serveFlagSet(&x), args, nil); err != nil {
			t.Fatal(err)
		}
		err := x.authz.apply(&b)
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestAuthzKafkaNames: server.properties' authorizer.class.name, super.users
// and allow.everyone.if.no.acl.found reach the flags; a class Sediment does
// not have is refused.
func TestAuthzKafkaNames(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		path := filepath.Join(dir, "server.properties")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	path := write("authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\nsuper.users=User:admin;User:broker\nallow.everyone.if.no.acl.found=true\n")
	wantAuthzConfig(t, []string{"--config", path})
	var g serveFlags
	path = write("authorizer.class.name=com.example.MyAuthorizer\n")
	if err := parseFlags(serveFlagSet(&g), []string{"--config", path}, &g.config); err == nil || !strings.Contains(err.Error(), "authorizer.class.name") {
		t.Fatalf("an unknown authorizer class: %v", err)
	}
}

// wantAuthzConfig parses serve's args and checks they set --authorizer
// acl, super users User:admin and User:broker, and allow everyone if no ACL.
func wantAuthzConfig(t *testing.T, args []string) {
	t.Helper()
	var f serveFlags
	if err := parseFlags(serveFlagSet(&f), args, &f.config); err != nil {
		t.Fatal(err)
	}
	b := broker.DefaultConfig()
	if err := f.authz.apply(&b); err != nil {
		t.Fatal(err)
	}
	if b.Authorizer != broker.AuthorizerACL || !slices.Equal(b.SuperUsers, []string{"User:admin", "User:broker"}) || !b.AllowEveryoneIfNoACLFound {
		t.Fatalf("%v: config %q %q %v", args, b.Authorizer, b.SuperUsers, b.AllowEveryoneIfNoACLFound)
	}
}
