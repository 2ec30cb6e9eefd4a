package meta

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sedimentio/sediment/security"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func testACL(name, principal string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) ACLRecord {
	return ACLRecord{ResourceType: int8(kmsg.ACLResourceTypeTopic), ResourceName: name,
		PatternType: int8(kmsg.ACLResourcePatternTypeLiteral), Principal: principal, Host: "*",
		Operation: int8(op), Permission: int8(perm)}
}

// toBindings is the broker's conversion: the same fields, typed with kmsg's enums.
func toBindings(recs []ACLRecord) []security.ACLBinding {
	out := make([]security.ACLBinding, len(recs))
	for i, r := range recs {
		out[i] = security.ACLBinding{ResourceType: kmsg.ACLResourceType(r.ResourceType), ResourceName: r.ResourceName,
			PatternType: kmsg.ACLResourcePatternType(r.PatternType), Principal: r.Principal, Host: r.Host,
			Operation: kmsg.ACLOperation(r.Operation), Permission: kmsg.ACLPermissionType(r.Permission)}
	}
	return out
}

func toRecord(b security.ACLBinding) ACLRecord {
	return ACLRecord{ResourceType: int8(b.ResourceType), ResourceName: b.ResourceName, PatternType: int8(b.PatternType),
		Principal: b.Principal, Host: b.Host, Operation: int8(b.Operation), Permission: int8(b.Permission)}
}

func TestACLStore(t *testing.T) {
	ctx := testCtx(t)
	n := startSingle(t, "")
	s := openStore(t, n.Client())

	read := testACL("orders", "User:alice", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow)
	write := testACL("orders", "User:alice", kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeAllow)
	other := testACL("payments", "User:bob", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeDeny)
	rev, err := s.CreateACLs(ctx, []ACLRecord{read, write, read, other})
	if err != nil || rev == 0 {
		t.Fatalf("CreateACLs = %d, %v", rev, err)
	}
	// Creating existing bindings again changes nothing.
	if rev2, err := s.CreateACLs(ctx, []ACLRecord{read}); err != nil || rev2 != 0 {
		t.Fatalf("CreateACLs again = %d, %v", rev2, err)
	}
	got, _, err := s.ACLs(ctx)
	if err != nil || len(got) != 3 || got[0] != read || got[1] != write || got[2] != other {
		t.Fatalf("ACLs = %v, %v", got, err)
	}
	if _, err := s.CreateACLs(ctx, []ACLRecord{{ResourceName: "x"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an ACL without principal and host: %v", err)
	}

	// Delete with a security filter, as DeleteAcls does.
	alices := "User:alice"
	f := security.ACLFilter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny,
		Principal: &alices, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	deleted, drev, err := s.DeleteACLs(ctx, func(r ACLRecord) bool { return f.Matches(toBindings([]ACLRecord{r})[0]) })
	if err != nil || len(deleted) != 2 || drev <= rev {
		t.Fatalf("DeleteACLs = %v, %d, %v", deleted, drev, err)
	}
	got, _, _ = s.ACLs(ctx)
	if len(got) != 1 || got[0] != other {
		t.Fatalf("after the delete: %v", got)
	}
	if deleted, drev, err := s.DeleteACLs(ctx, func(ACLRecord) bool { return false }); err != nil || len(deleted) != 0 || drev != 0 {
		t.Fatalf("deleting nothing = %v, %d, %v", deleted, drev, err)
	}

	// More bindings than one transaction may hold.
	var many []ACLRecord
	for i := range 300 {
		many = append(many, testACL(fmt.Sprintf("t%03d", i), "User:carol", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow))
	}
	if _, err := s.CreateACLs(ctx, many); err != nil {
		t.Fatal(err)
	}
	deleted, _, err = s.DeleteACLs(ctx, func(r ACLRecord) bool { return r.Principal == "User:carol" })
	if err != nil || len(deleted) != 300 {
		t.Fatalf("deleting 300: %d, %v", len(deleted), err)
	}
}

// TestACLWatchFeedsAuthorizer: ACL changes written through one broker's store reach another
// broker's authorizer through its watch within a second.
func TestACLWatchFeedsAuthorizer(t *testing.T) {
	ctx := testCtx(t)
	n := startSingle(t, "")
	writer := openStore(t, n.Client())
	reader := openStore(t, newClient(t, n))

	authz, err := security.NewAuthorizer(security.AuthorizerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		calls int
	)
	watch, err := reader.WatchACLs(ctx, func(recs []ACLRecord) {
		if err := authz.SetACLs(toBindings(recs)); err != nil {
			t.Errorf("SetACLs: %v", err)
		}
		mu.Lock()
		calls++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.Close)
	if !authz.Ready() {
		t.Fatal("WatchACLs returned before the first load")
	}
	alice := security.UserPrincipal("alice")
	allowed := func() bool {
		return authz.Authorize(alice, "10.0.0.1", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders")
	}
	within := func(want bool, what string) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for allowed() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not applied within a second", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if allowed() {
		t.Fatal("allowed with no ACLs")
	}
	b := security.ACLBinding{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "ord",
		PatternType: kmsg.ACLResourcePatternTypePrefixed, Principal: "User:alice", Host: "*",
		Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow}
	rev, err := writer.CreateACLs(ctx, []ACLRecord{toRecord(b)})
	if err != nil {
		t.Fatal(err)
	}
	within(true, "create")
	if err := watch.WaitRevision(ctx, rev); err != nil || watch.Revision() < rev {
		t.Fatalf("WaitRevision: %v", err)
	}
	deny := b
	deny.PatternType, deny.ResourceName, deny.Permission = kmsg.ACLResourcePatternTypeLiteral, "orders", kmsg.ACLPermissionTypeDeny
	if _, err := writer.CreateACLs(ctx, []ACLRecord{toRecord(deny)}); err != nil {
		t.Fatal(err)
	}
	within(false, "a DENY")
	if _, _, err := writer.DeleteACLs(ctx, func(r ACLRecord) bool { return r.Permission == int8(kmsg.ACLPermissionTypeDeny) }); err != nil {
		t.Fatal(err)
	}
	within(true, "deleting the DENY")

	// A value this build cannot read is skipped, not fatal.
	if _, err := n.Client().Put(ctx, writer.Prefix()+aclsDir+"junk", `{"v":99}`); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.CreateACLs(ctx, []ACLRecord{testACL("x", "User:bob", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for len(authz.ACLs(security.AnyACL())) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("ACLs = %v", authz.ACLs(security.AnyACL()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	watch.Close()
	mu.Lock()
	before := calls
	mu.Unlock()
	writer.CreateACLs(ctx, []ACLRecord{testACL("y", "User:bob", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow)})
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if calls != before {
		t.Fatal("a callback ran after Close")
	}
	if !strings.HasPrefix(writer.ACLKey(toRecord(b)), writer.Prefix()+"acls/") {
		t.Fatalf("ACL key %s", writer.ACLKey(toRecord(b)))
	}
}
