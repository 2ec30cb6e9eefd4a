package security

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	cluster = kmsg.ACLResourceTypeCluster
	txnID   = kmsg.ACLResourceTypeTransactionalId
	literal = kmsg.ACLResourcePatternTypeLiteral
	prefix  = kmsg.ACLResourcePatternTypePrefixed
	allow   = kmsg.ACLPermissionTypeAllow
	deny    = kmsg.ACLPermissionTypeDeny

	opAll             = kmsg.ACLOperationAll
	opRead            = kmsg.ACLOperationRead
	opWrite           = kmsg.ACLOperationWrite
	opCreate          = kmsg.ACLOperationCreate
	opDelete          = kmsg.ACLOperationDelete
	opAlter           = kmsg.ACLOperationAlter
	opDescribe        = kmsg.ACLOperationDescribe
	opClusterAction   = kmsg.ACLOperationClusterAction
	opDescribeConfigs = kmsg.ACLOperationDescribeConfigs
	opAlterConfigs    = kmsg.ACLOperationAlterConfigs
	opIdempotentWrite = kmsg.ACLOperationIdempotentWrite
)

func acl(rt kmsg.ACLResourceType, name string, pt kmsg.ACLResourcePatternType, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) ACLBinding {
	return ACLBinding{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: host, Operation: op, Permission: perm}
}

func newTestAuthorizer(t testing.TB, cfg AuthorizerConfig, bindings ...ACLBinding) *Authorizer {
	t.Helper()
	a, err := NewAuthorizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetACLs(bindings); err != nil {
		t.Fatal(err)
	}
	return a
}

var (
	alice = UserPrincipal("alice")
	bob   = UserPrincipal("bob")
)

func TestAuthorizeSemantics(t *testing.T) {
	a := newTestAuthorizer(t, AuthorizerConfig{SuperUsers: []string{"User:admin"}},
		acl(topic, "orders", literal, "User:alice", "*", opRead, allow),
		acl(topic, "pay", prefix, "User:alice", "*", opAll, allow),
		acl(topic, "payroll", literal, "User:alice", "*", opWrite, deny),
		acl(topic, "payroll-secret", prefix, "User:alice", "*", opAll, deny),
		acl(topic, "cfg", literal, "User:alice", "*", opAlterConfigs, allow),
		acl(topic, "*", literal, "User:*", "*", opDescribe, allow),
		acl(topic, "denied-describe", literal, "User:alice", "*", opRead, deny),
		acl(topic, "hosty", literal, "User:alice", "10.0.0.1", opRead, allow),
		acl(topic, "hosty", literal, "User:alice", "0:0:0:0:0:0:0:1", opWrite, allow),
		acl(group, "g", literal, "User:alice", "*", opRead, allow),
		acl(txnID, "tx-", prefix, "User:bob", "*", opWrite, allow),
		acl(cluster, ClusterName, literal, "User:bob", "*", opIdempotentWrite, allow),
		acl(topic, "o", prefix, "User:bob", "*", opCreate, allow),
		acl(topic, "orders-eu", prefix, "User:bob", "*", opDelete, allow),
	)
	cases := []struct {
		p    Principal
		host string
		op   kmsg.ACLOperation
		rt   kmsg.ACLResourceType
		name string
		want bool
	}{
		{alice, "10.0.0.9", opRead, topic, "orders", true},
		{alice, "10.0.0.9", opDescribe, topic, "orders", true}, // READ implies DESCRIBE
		{alice, "10.0.0.9", opWrite, topic, "orders", false},   // no WRITE ACL
		{bob, "10.0.0.9", opRead, topic, "orders", false},      // another principal's ACL
		{bob, "10.0.0.9", opDescribe, topic, "anything", true}, // User:* on "*"
		{alice, "10.0.0.9", opRead, topic, "payments", true},   // PREFIXED ALL
		{alice, "10.0.0.9", opRead, topic, "pa", false},        // shorter than the prefix
		{alice, "10.0.0.9", opWrite, topic, "payroll", false},  // DENY wins over the prefixed ALLOW
		{alice, "10.0.0.9", opRead, topic, "payroll", true},    // the DENY is WRITE only
		{alice, "10.0.0.9", opRead, topic, "payroll-secret-1", false},
		{alice, "10.0.0.9", opDescribe, topic, "payroll-secret", false}, // DENY ALL covers DESCRIBE
		{alice, "10.0.0.9", opDescribeConfigs, topic, "cfg", true},      // ALTER_CONFIGS implies DESCRIBE_CONFIGS
		{alice, "10.0.0.9", opDescribe, topic, "cfg", true},             // via the wildcard ACL
		{alice, "10.0.0.9", opAlter, topic, "cfg", false},
		{alice, "10.0.0.9", opDescribe, topic, "denied-describe", true}, // a DENY READ implies nothing
		{alice, "10.0.0.9", opRead, topic, "denied-describe", false},
		{alice, "10.0.0.1", opRead, topic, "hosty", true},
		{alice, "10.0.0.2", opRead, topic, "hosty", false},
		{alice, "::1", opWrite, topic, "hosty", true}, // Java's IPv6 text matches Go's
		{alice, "::ffff:10.0.0.1", opRead, topic, "hosty", true},
		{alice, "10.0.0.9", opRead, group, "g", true},
		{alice, "10.0.0.9", opRead, group, "orders", false}, // a topic ACL is not a group ACL
		{alice, "10.0.0.9", opDescribe, group, "g", true},
		{bob, "h", opWrite, txnID, "tx-1", true},
		{bob, "h", opDescribe, txnID, "tx-1", true},
		{bob, "h", opWrite, txnID, "tx", false},
		{bob, "h", opIdempotentWrite, cluster, ClusterName, true},
		{bob, "h", opClusterAction, cluster, ClusterName, false},
		{bob, "h", opCreate, topic, "orders-eu-1", true}, // two prefix lengths apply
		{bob, "h", opDelete, topic, "orders-eu-1", true},
		{bob, "h", opDelete, topic, "orders-us", false},
		{UserPrincipal("admin"), "h", opAlter, cluster, ClusterName, true}, // super user
		{UserPrincipal("admin"), "h", opWrite, topic, "payroll", true},
		{Principal{"Group", "admin"}, "h", opWrite, topic, "payroll", false},
		{alice, "h", kmsg.ACLOperationAny, topic, "orders", false},
		{alice, "h", opRead, kmsg.ACLResourceTypeAny, "orders", false},
	}
	for _, c := range cases {
		if got := a.Authorize(c.p, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("%s@%s %s %s %q = %v, want %v", c.p, c.host, c.op, c.rt, c.name, got, c.want)
		}
	}
	acts := []Action{{opRead, topic, "orders"}, {opWrite, topic, "orders"}, {opRead, group, "g"}}
	if got := a.AuthorizeActions(alice, "h", acts); len(got) != 3 || !got[0] || got[1] || !got[2] {
		t.Errorf("AuthorizeActions = %v", got)
	}
}

func TestAuthorizerLoadAndDefaults(t *testing.T) {
	a, err := NewAuthorizer(AuthorizerConfig{SuperUsers: []string{"User:admin"}, AllowEveryoneIfNoACLFound: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.Ready() || a.Authorize(alice, "h", opRead, topic, "t") {
		t.Fatal("allowed before the ACLs were loaded")
	}
	if !a.Authorize(UserPrincipal("admin"), "h", opRead, topic, "t") {
		t.Fatal("a super user was denied before the ACLs were loaded")
	}
	if err := a.SetACLs(nil); err != nil || !a.Ready() {
		t.Fatal(err)
	}
	if !a.Authorize(alice, "h", opRead, topic, "t") {
		t.Fatal("allow.everyone.if.no.acl.found did not allow a resource without ACLs")
	}
	// Any ACL on the resource, even for someone else, ends the free-for-all there.
	if err := a.SetACLs([]ACLBinding{acl(topic, "t", prefix, "User:bob", "*", opRead, allow)}); err != nil {
		t.Fatal(err)
	}
	if a.Authorize(alice, "h", opRead, topic, "t1") || !a.Authorize(alice, "h", opRead, topic, "u") {
		t.Fatal("allow.everyone.if.no.acl.found applied where ACLs exist, or not where none do")
	}
	b := newTestAuthorizer(t, AuthorizerConfig{})
	if b.Authorize(alice, "h", opRead, topic, "t") {
		t.Fatal("allowed without ACLs by default")
	}
	if _, err := NewAuthorizer(AuthorizerConfig{SuperUsers: []string{"admin"}}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("a super user without a type: %v", err)
	}
	su, err := ParseSuperUsers(" User:admin; User:broker ;")
	if err != nil || strings.Join(su, ";") != "User:admin;User:broker" {
		t.Fatalf("ParseSuperUsers = %q, %v", su, err)
	}
	if _, err := ParseSuperUsers("User:a;b"); err == nil {
		t.Fatal("ParseSuperUsers accepted b")
	}
}

// TestAuthorizeByResourceType follows the cases of Kafka's AuthorizerTest for
// authorizeByResourceType.
func TestAuthorizeByResourceType(t *testing.T) {
	cases := []struct {
		name string
		acls []ACLBinding
		want bool
	}{
		{"none", nil, false},
		{"literal allow", []ACLBinding{acl(topic, "foo", literal, "User:alice", "*", opWrite, allow)}, true},
		{"allow ALL", []ACLBinding{acl(topic, "foo", literal, "User:alice", "*", opAll, allow)}, true},
		{"allow READ only", []ACLBinding{acl(topic, "foo", literal, "User:alice", "*", opRead, allow)}, false},
		{"someone else", []ACLBinding{acl(topic, "foo", literal, "User:bob", "*", opWrite, allow)}, false},
		{"wildcard principal", []ACLBinding{acl(topic, "foo", literal, "User:*", "*", opWrite, allow)}, true},
		{"other host", []ACLBinding{acl(topic, "foo", literal, "User:alice", "10.9.9.9", opWrite, allow)}, false},
		{"literal deny dominates", []ACLBinding{
			acl(topic, "foo", literal, "User:alice", "*", opWrite, allow),
			acl(topic, "foo", literal, "User:alice", "*", opWrite, deny)}, false},
		{"prefixed deny dominates literal", []ACLBinding{
			acl(topic, "foo", literal, "User:alice", "*", opWrite, allow),
			acl(topic, "f", prefix, "User:alice", "*", opWrite, deny)}, false},
		{"prefixed deny dominates prefixed", []ACLBinding{
			acl(topic, "foo", prefix, "User:alice", "*", opWrite, allow),
			acl(topic, "fo", prefix, "User:alice", "*", opWrite, deny)}, false},
		{"literal deny does not dominate prefixed", []ACLBinding{
			acl(topic, "foo", prefix, "User:alice", "*", opWrite, allow),
			acl(topic, "foo", literal, "User:alice", "*", opWrite, deny)}, true},
		{"longer prefixed deny does not dominate", []ACLBinding{
			acl(topic, "foo", prefix, "User:alice", "*", opWrite, allow),
			acl(topic, "food", prefix, "User:alice", "*", opWrite, deny)}, true},
		{"one undominated allow", []ACLBinding{
			acl(topic, "foo", literal, "User:alice", "*", opWrite, allow),
			acl(topic, "bar", literal, "User:alice", "*", opWrite, allow),
			acl(topic, "foo", literal, "User:alice", "*", opWrite, deny)}, true},
		{"wildcard deny", []ACLBinding{
			acl(topic, "foo", literal, "User:alice", "*", opWrite, allow),
			acl(topic, "*", literal, "User:alice", "*", opWrite, deny)}, false},
		{"wildcard allow", []ACLBinding{acl(topic, "*", literal, "User:alice", "*", opWrite, allow)}, true},
		{"other resource type", []ACLBinding{acl(group, "foo", literal, "User:alice", "*", opWrite, allow)}, false},
	}
	for _, c := range cases {
		a := newTestAuthorizer(t, AuthorizerConfig{}, c.acls...)
		if got := a.AuthorizeByResourceType(alice, "10.0.0.1", opWrite, topic); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	su := newTestAuthorizer(t, AuthorizerConfig{SuperUsers: []string{"User:alice"}},
		acl(topic, "*", literal, "User:alice", "*", opWrite, deny))
	if !su.AuthorizeByResourceType(alice, "h", opWrite, topic) {
		t.Error("a super user was denied")
	}
	open := newTestAuthorizer(t, AuthorizerConfig{AllowEveryoneIfNoACLFound: true})
	if !open.AuthorizeByResourceType(alice, "h", opWrite, topic) {
		t.Error("allow.everyone.if.no.acl.found did not apply")
	}
}

func TestAuthorizedOperations(t *testing.T) {
	a := newTestAuthorizer(t, AuthorizerConfig{},
		acl(topic, "t", literal, "User:alice", "*", opRead, allow),
		acl(topic, "t", literal, "User:alice", "*", opAlterConfigs, allow),
		acl(group, "g", literal, "User:alice", "*", opAll, allow),
	)
	want := int32(1<<opRead | 1<<opDescribe | 1<<opAlterConfigs | 1<<opDescribeConfigs)
	if got := a.AuthorizedOperations(alice, "h", topic, "t"); got != want {
		t.Errorf("topic operations = %b, want %b", got, want)
	}
	want = 1<<opRead | 1<<opDelete | 1<<opDescribe
	if got := a.AuthorizedOperations(alice, "h", group, "g"); got != want {
		t.Errorf("group operations = %b, want %b", got, want)
	}
	if got := a.AuthorizedOperations(bob, "h", group, "g"); got != 0 {
		t.Errorf("bob's group operations = %b", got)
	}
}

func TestACLValidateAndFilter(t *testing.T) {
	good := acl(topic, "t", literal, "User:alice", "*", opRead, allow)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*ACLBinding){
		func(b *ACLBinding) { b.ResourceType = kmsg.ACLResourceTypeAny },
		func(b *ACLBinding) { b.ResourceType = 0 },
		func(b *ACLBinding) { b.ResourceType = 99 },
		func(b *ACLBinding) { b.PatternType = kmsg.ACLResourcePatternTypeMatch },
		func(b *ACLBinding) { b.PatternType = kmsg.ACLResourcePatternTypeAny },
		func(b *ACLBinding) { b.Operation = kmsg.ACLOperationAny },
		func(b *ACLBinding) { b.Operation = 15 },
		func(b *ACLBinding) { b.Permission = kmsg.ACLPermissionTypeAny },
		func(b *ACLBinding) { b.ResourceName = "" },
		func(b *ACLBinding) { b.Principal = "alice" },
		func(b *ACLBinding) { b.Host = "" },
	}
	for i, mutate := range bad {
		b := good
		mutate(&b)
		if err := b.Validate(); !errors.Is(err, ErrInvalidACL) {
			t.Errorf("bad binding %d (%s): %v", i, b, err)
		}
	}

	bindings := []ACLBinding{
		acl(topic, "orders", literal, "User:alice", "*", opRead, allow),
		acl(topic, "*", literal, "User:bob", "*", opRead, allow),
		acl(topic, "ord", prefix, "User:bob", "10.0.0.1", opWrite, deny),
		acl(topic, "pay", prefix, "User:bob", "*", opWrite, allow),
		acl(group, "orders", literal, "User:alice", "*", opRead, allow),
	}
	name := func(s string) *string { return &s }
	a := newTestAuthorizer(t, AuthorizerConfig{}, append(bindings, bindings[0])...)
	cases := []struct {
		f    ACLFilter
		want []int
	}{
		{AnyACL(), []int{1, 0, 2, 3, 4}}, // sorted by type, pattern type, name
		{ACLFilter{ResourceType: topic, ResourceName: name("orders"), PatternType: kmsg.ACLResourcePatternTypeMatch,
			Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, []int{1, 0, 2}},
		{ACLFilter{ResourceType: kmsg.ACLResourceTypeAny, ResourceName: name("orders"), PatternType: kmsg.ACLResourcePatternTypeAny,
			Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, []int{0, 4}},
		{ACLFilter{ResourceType: topic, ResourceName: name("ord"), PatternType: prefix,
			Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, []int{2}},
		{ACLFilter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Principal: name("User:bob"),
			Host: name("*"), Operation: opWrite, Permission: allow}, []int{3}},
		{ACLFilter{ResourceType: topic, ResourceName: name("*"), PatternType: literal,
			Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, []int{1}},
	}
	for i, c := range cases {
		if err := c.f.Validate(); err != nil {
			t.Fatal(err)
		}
		got := a.ACLs(c.f)
		var want []ACLBinding
		for _, j := range c.want {
			want = append(want, bindings[j])
		}
		if len(got) != len(want) {
			t.Errorf("filter %d: %v, want %v", i, got, want)
			continue
		}
		for k := range got {
			if got[k] != want[k] {
				t.Errorf("filter %d: %v, want %v", i, got, want)
				break
			}
		}
	}
	for _, f := range []ACLFilter{
		{ResourceType: 0, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny},
		{ResourceType: topic, PatternType: 0, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny},
		{ResourceType: topic, PatternType: literal, Operation: 0, Permission: kmsg.ACLPermissionTypeAny},
		{ResourceType: topic, PatternType: literal, Operation: opRead, Permission: 0},
	} {
		if err := f.Validate(); !errors.Is(err, ErrInvalidACL) {
			t.Errorf("filter %+v: %v", f, err)
		}
	}

	// Invalid bindings are reported and left out; the valid ones apply.
	err := a.SetACLs([]ACLBinding{good, acl(topic, "", literal, "User:a", "*", opRead, allow)})
	if !errors.Is(err, ErrInvalidACL) || len(a.ACLs(AnyACL())) != 1 || !a.Authorize(alice, "h", opRead, topic, "t") {
		t.Fatalf("SetACLs with an invalid binding: %v, %v", err, a.ACLs(AnyACL()))
	}
}

// naiveAuthorize is the reference the index is checked against: Kafka's rules applied to
// every binding in turn, no index.
func naiveAuthorize(bindings []ACLBinding, noACLOK bool, p Principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	r := newRequester(p, host)
	found, allowed := false, false
	for _, b := range bindings {
		if b.ResourceType != rt {
			continue
		}
		applies := (b.PatternType == literal && (b.ResourceName == name || b.ResourceName == WildcardResource)) ||
			(b.PatternType == prefix && strings.HasPrefix(name, b.ResourceName))
		if !applies {
			continue
		}
		found = true
		e := newEntry(b)
		switch e.decide(r, op) {
		case decisionDeny:
			return false
		case decisionAllow:
			allowed = true
		}
	}
	return allowed || (!found && noACLOK)
}

// TestAuthorizerIndexOracle compares the index with the naive scan on random ACL sets.
func TestAuthorizerIndexOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "ab", "abc", "abd", "b", "*", "bc", "abcd", "x"}
	principals := []string{"User:alice", "User:bob", "User:*"}
	hosts := []string{"*", "10.0.0.1", "::1"}
	ops := []kmsg.ACLOperation{opAll, opRead, opWrite, opDescribe, opAlter, opDescribeConfigs, opAlterConfigs, opDelete}
	for round := range 300 {
		var bindings []ACLBinding
		for range rng.IntN(12) {
			bindings = append(bindings, acl(
				[]kmsg.ACLResourceType{topic, group}[rng.IntN(2)],
				names[rng.IntN(len(names))],
				[]kmsg.ACLResourcePatternType{literal, prefix}[rng.IntN(2)],
				principals[rng.IntN(len(principals))],
				hosts[rng.IntN(len(hosts))],
				ops[rng.IntN(len(ops))],
				[]kmsg.ACLPermissionType{allow, deny}[rng.IntN(2)]))
		}
		noACLOK := round%2 == 0
		a := newTestAuthorizer(t, AuthorizerConfig{AllowEveryoneIfNoACLFound: noACLOK}, bindings...)
		for range 50 {
			p := []Principal{alice, bob}[rng.IntN(2)]
			host := []string{"10.0.0.1", "10.0.0.2", "0:0:0:0:0:0:0:1"}[rng.IntN(3)]
			op := ops[1+rng.IntN(len(ops)-1)]
			rt := []kmsg.ACLResourceType{topic, group}[rng.IntN(2)]
			name := names[rng.IntN(len(names))] + []string{"", "z"}[rng.IntN(2)]
			want := naiveAuthorize(bindings, noACLOK, p, host, op, rt, name)
			if got := a.Authorize(p, host, op, rt, name); got != want {
				t.Fatalf("round %d: %s@%s %s %s %q = %v, naive %v; ACLs %v", round, p, host, op, rt, name, got, want, bindings)
			}
		}
	}
}

func BenchmarkAuthorize(b *testing.B) {
	var bindings []ACLBinding
	for i := range 10000 {
		n := "topic-" + strings.Repeat("x", i%20) + string(rune('a'+i%26))
		bindings = append(bindings, acl(topic, n, []kmsg.ACLResourcePatternType{literal, prefix}[i%2],
			"User:u"+string(rune('a'+i%26)), "*", opRead, allow))
	}
	a := newTestAuthorizer(b, AuthorizerConfig{}, bindings...)
	b.ResetTimer()
	for b.Loop() {
		a.Authorize(alice, "10.0.0.1", opRead, topic, "topic-xxxxxxxa-orders")
	}
}

// FuzzAuthorizer builds an ACL set from the input and checks the index against the naive
// scan for a request also drawn from it: never panics, always agrees.
func FuzzAuthorizer(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b"), "abc")
	f.Add([]byte("\xff\x10\x20\x30\x40\x50\x60\x70"), "*")
	names := []string{"a", "ab", "abc", "b", "*", ""}
	ops := []kmsg.ACLOperation{opAll, opRead, opWrite, opDescribe, opAlter, opDescribeConfigs, opAlterConfigs, kmsg.ACLOperationAny}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		if len(data) > 8*64 {
			data = data[:8*64]
		}
		var bindings []ACLBinding
		for i := 0; i+8 <= len(data); i += 8 {
			d := data[i : i+8]
			bindings = append(bindings, acl(
				kmsg.ACLResourceType(d[0]%8),
				names[int(d[1])%len(names)],
				kmsg.ACLResourcePatternType(d[2]%5),
				[]string{"User:alice", "User:bob", "User:*", "alice"}[d[3]%4],
				[]string{"*", "10.0.0.1", "::1", ""}[d[4]%4],
				ops[int(d[5])%len(ops)],
				kmsg.ACLPermissionType(d[6]%4)))
		}
		a, err := NewAuthorizer(AuthorizerConfig{AllowEveryoneIfNoACLFound: len(data)%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		a.SetACLs(bindings) // invalid bindings are left out
		valid := a.ACLs(AnyACL())
		for _, b := range valid {
			if b.Validate() != nil {
				t.Fatalf("an invalid binding was loaded: %s", b)
			}
		}
		for _, op := range ops[1:] {
			for _, rt := range []kmsg.ACLResourceType{topic, group} {
				for _, host := range []string{"10.0.0.1", "0:0:0:0:0:0:0:1", "h"} {
					want := naiveAuthorize(valid, len(data)%2 == 0, alice, host, op, rt, name)
					if op == kmsg.ACLOperationAny {
						want = false
					}
					if got := a.Authorize(alice, host, op, rt, name); got != want {
						t.Fatalf("%s %s %q from %s = %v, naive %v; ACLs %v", op, rt, name, host, got, want, valid)
					}
				}
			}
		}
	})
}

// TestAuthorizerConcurrentReload: decisions go on while the ACLs are replaced (run with
// -race); every decision reflects one whole ACL set, never a mix.
func TestAuthorizerConcurrentReload(t *testing.T) {
	setA := []ACLBinding{acl(topic, "t", literal, "User:alice", "*", opRead, allow)}
	setB := []ACLBinding{acl(topic, "t", literal, "User:alice", "*", opRead, deny),
		acl(topic, "t", prefix, "User:alice", "*", opAll, allow)}
	a := newTestAuthorizer(t, AuthorizerConfig{}, setA...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			if i%2 == 0 {
				a.SetACLs(setA)
			} else {
				a.SetACLs(setB)
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		// Under either set, READ of t is decided and WRITE of t follows: set A allows
		// READ only, set B allows WRITE only.
		res := a.AuthorizeActions(alice, "h", []Action{{opRead, topic, "t"}, {opWrite, topic, "t"}})
		if res[0] == res[1] {
			t.Fatalf("a decision mixed two ACL sets: %v", res)
		}
	}
}
