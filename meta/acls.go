package meta

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ACLs: acls/<acl-id>, one key per binding (KEYSPACE.md). The id is derived from the binding
// itself, so creating an existing binding again writes the same key (Kafka's CreateAcls is
// idempotent) and concurrent writers never conflict. meta stores bindings as plain data with
// Kafka's protocol codes; what they mean is security's business (security.ACLBinding has the
// same fields, typed with kmsg's enums).

// ACLRecord is one ACL binding as stored: Kafka's protocol codes for the resource type,
// pattern type, operation and permission type.
type ACLRecord struct {
	ResourceType int8   `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  int8   `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    int8   `json:"operation"`
	Permission   int8   `json:"permission_type"`
}

type aclValue struct {
	V int `json:"v"`
	ACLRecord
}

// maxACLField bounds the strings of a binding (Kafka names are far shorter; etcd values
// should stay small).
const maxACLField = 4096

// maxOpsPerTxn keeps multi-key writes within etcd's default --max-txn-ops (128), so they
// also work against an external etcd that Sediment did not configure.
const maxOpsPerTxn = 128

func checkACL(r ACLRecord) error {
	for _, f := range []string{r.ResourceName, r.Principal, r.Host} {
		if f == "" || len(f) > maxACLField {
			return fmt.Errorf("%w: ACL with an empty or oversized field (%d bytes)", ErrInvalid, len(f))
		}
	}
	return nil
}

// aclID returns the binding's key segment: 16 bytes of SHA-256 over its fields, in Kafka's
// UUID text form (22 characters of URL-safe base64).
func aclID(r ACLRecord) string {
	sum := sha256.Sum256([]byte(encode(r)))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// ACLKey returns acls/<acl-id> for r.
func (s *Store) ACLKey(r ACLRecord) string { return s.prefix + aclsDir + aclID(r) }

func compareACLs(a, b ACLRecord) int {
	return cmp.Or(cmp.Compare(a.ResourceType, b.ResourceType), cmp.Compare(a.PatternType, b.PatternType),
		strings.Compare(a.ResourceName, b.ResourceName), strings.Compare(a.Principal, b.Principal),
		strings.Compare(a.Host, b.Host), cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Permission, b.Permission))
}

// CreateACLs stores every binding, creating those that do not exist yet; existing ones are
// left alone. Batches of up to 128 bindings are atomic; a larger call that fails part-way
// has created the earlier batches, and retrying it is safe. It returns the revision of the
// last write (0 if every binding existed).
func (s *Store) CreateACLs(ctx context.Context, recs []ACLRecord) (int64, error) {
	for _, r := range recs {
		if err := checkACL(r); err != nil {
			return 0, err
		}
	}
	// One txn may not write a key twice.
	recs = slices.Clone(recs)
	slices.SortFunc(recs, compareACLs)
	recs = slices.Compact(recs)
	var rev int64
	for chunk := range slices.Chunk(recs, maxOpsPerTxn) {
		ops := make([]clientv3.Op, 0, len(chunk))
		for _, r := range chunk {
			key := s.ACLKey(r)
			// Put-if-absent without a second round trip: a nested txn per key.
			ops = append(ops, clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(key, encode(aclValue{V: valueVersion, ACLRecord: r}))},
				nil))
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return rev, fmt.Errorf("meta: creating ACLs: %w", err)
		}
		for _, r := range resp.Responses {
			if r.GetResponseTxn().GetSucceeded() {
				rev = resp.Header.Revision
			}
		}
	}
	return rev, nil
}

// ACLs reads every binding, sorted, and the revision they were read at.
func (s *Store) ACLs(ctx context.Context) ([]ACLRecord, int64, error) {
	resp, err := s.cli.Get(ctx, s.prefix+aclsDir, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("meta: reading ACLs: %w", err)
	}
	out := make([]ACLRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		r, err := decodeACL(string(kv.Key), kv.Value)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, compareACLs)
	return out, resp.Header.Revision, nil
}

func decodeACL(key string, data []byte) (ACLRecord, error) {
	var w aclValue
	err := decode(key, data, &w, func() int { return w.V })
	return w.ACLRecord, err
}

// DeleteACLs deletes the bindings match selects (DeleteAcls: the broker passes its filter's
// Matches) and returns those it deleted, sorted, with the revision of the last delete (0 if
// none). A binding deleted by someone else meanwhile is not reported.
func (s *Store) DeleteACLs(ctx context.Context, match func(ACLRecord) bool) ([]ACLRecord, int64, error) {
	all, _, err := s.ACLs(ctx)
	if err != nil {
		return nil, 0, err
	}
	var victims []ACLRecord
	for _, r := range all {
		if match(r) {
			victims = append(victims, r)
		}
	}
	var (
		deleted []ACLRecord
		rev     int64
	)
	for chunk := range slices.Chunk(victims, maxOpsPerTxn) {
		ops := make([]clientv3.Op, 0, len(chunk))
		for _, r := range chunk {
			ops = append(ops, clientv3.OpDelete(s.ACLKey(r)))
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return deleted, rev, fmt.Errorf("meta: deleting ACLs: %w", err)
		}
		for i, r := range resp.Responses {
			if r.GetResponseDeleteRange().GetDeleted() > 0 {
				deleted = append(deleted, chunk[i])
				rev = resp.Header.Revision
			}
		}
	}
	return deleted, rev, nil
}

// ACLWatch follows acls/ and hands every change to a callback (see Store.WatchACLs).
// Safe for concurrent use.
type ACLWatch struct{ w *dirWatch }

// WatchACLs calls fn with every stored binding (sorted) once before it returns, and again
// after each change until ctx is done or Close is called: each call has the complete set, as
// of one revision, ready for security.Authorizer.SetACLs. Calls never overlap; fn should be
// quick (the next change waits for it). Undecodable values are logged and left out.
func (s *Store) WatchACLs(ctx context.Context, fn func([]ACLRecord)) (*ACLWatch, error) {
	w, err := s.startDirWatch(ctx, aclsDir, func(items map[string][]byte, rev int64) {
		out := make([]ACLRecord, 0, len(items))
		for key, data := range items {
			r, err := decodeACL(key, data)
			if err != nil {
				s.log.Warn("skipping ACL", "key", s.prefix+aclsDir+key, "revision", rev, "err", err)
				continue
			}
			out = append(out, r)
		}
		slices.SortFunc(out, compareACLs)
		fn(out)
	})
	if err != nil {
		return nil, err
	}
	return &ACLWatch{w: w}, nil
}

// Revision is the revision the last callback reflected.
func (w *ACLWatch) Revision() int64 { return w.w.Revision() }

// WaitRevision waits until the callback has seen the write that returned rev.
func (w *ACLWatch) WaitRevision(ctx context.Context, rev int64) error {
	return w.w.WaitRevision(ctx, rev)
}

// Close stops the watch; no callback runs after it returns.
func (w *ACLWatch) Close() { w.w.Close() }
