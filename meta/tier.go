package meta

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Remote segment metadata: tier/<topic-id>/<p>/<base-offset %020d>-<upload-id> (KEYSPACE.md,
// tier/REMOTE.md). meta does not import tier (tier sits below broker, meta beside it), so
// RemoteSegmentRecord mirrors tier.RemoteSegment field for field and the broker's adapter
// converts between them.

// Remote segment states (tier.SegmentState's values, KIP-405).
const (
	RemoteCopyStarted    = "COPY_STARTED"
	RemoteCopyFinished   = "COPY_FINISHED"
	RemoteDeleteStarted  = "DELETE_STARTED"
	RemoteDeleteFinished = "DELETE_FINISHED"
)

// ErrFenced is returned (together with ErrConflict: errors.Is matches both) when a remote
// segment write was refused because its fence failed: the partition key changed, so the
// writer may no longer be the leader it was.
var ErrFenced = errors.New("meta: fenced: partition changed")

// RemoteEpoch is one leader epoch and the offset it starts at (tier.EpochEntry).
type RemoteEpoch struct {
	Epoch       int32 `json:"epoch"`
	StartOffset int64 `json:"start_offset"`
}

// RemoteSegmentRecord is the metadata of one upload of one sealed segment (tier.RemoteSegment
// with the topic id in text form). Revision is the key's ModRevision when read (0 for a
// record not yet written); it is not stored. DeletedAtMs (Unix milliseconds) is set only
// by the transition to DELETE_FINISHED: when the upload's objects were deleted; a
// DELETE_FINISHED record of an abandoned upload stays until a grace period after it
// (tier/REMOTE.md). Records written before the field existed read as 0.
type RemoteSegmentRecord struct {
	TopicID      TopicID       `json:"topic_id"`
	Partition    int32         `json:"partition"`
	UploadID     string        `json:"upload_id"`
	BaseOffset   int64         `json:"base_offset"`
	EndOffset    int64         `json:"end_offset"`
	LeaderEpoch  int32         `json:"leader_epoch"`
	Epochs       []RemoteEpoch `json:"epochs"`
	MaxTimestamp int64         `json:"max_timestamp"`
	Size         int64         `json:"size"`
	Compression  string        `json:"compression"`
	TxnIndex     bool          `json:"txn_index,omitempty"` // the upload has a txnindex object
	State        string        `json:"state"`
	DeletedAtMs  int64         `json:"deleted_at_ms,omitempty"`
	Revision     int64         `json:"-"`
}

type remoteSegmentValue struct {
	V int `json:"v"`
	RemoteSegmentRecord
}

// validRemoteTransition lists the state changes PutRemoteSegment accepts on an existing key.
// COPY_STARTED → DELETE_STARTED cleans up an upload that never finished.
var validRemoteTransition = map[[2]string]bool{
	{RemoteCopyStarted, RemoteCopyFinished}:     true,
	{RemoteCopyStarted, RemoteDeleteStarted}:    true,
	{RemoteCopyFinished, RemoteDeleteStarted}:   true,
	{RemoteDeleteStarted, RemoteDeleteFinished}: true,
}

// RemoteSegmentKey returns tier/<topic-id>/<p>/<base-offset %020d>-<upload-id>.
func (s *Store) RemoteSegmentKey(id TopicID, p int32, baseOffset int64, uploadID string) string {
	return fmt.Sprintf("%s%020d-%s", s.TierPrefix(id, p), baseOffset, uploadID)
}

func checkRemoteSegment(r RemoteSegmentRecord) error {
	switch {
	case r.TopicID.IsZero():
		return fmt.Errorf("%w: remote segment with the zero topic id", ErrInvalid)
	case r.Partition < 0 || r.BaseOffset < 0 || r.EndOffset < r.BaseOffset:
		return fmt.Errorf("%w: remote segment %d/[%d, %d]", ErrInvalid, r.Partition, r.BaseOffset, r.EndOffset)
	case r.UploadID == "" || len(r.UploadID) > 64 || strings.ContainsAny(r.UploadID, "/\x00"):
		return fmt.Errorf("%w: remote segment upload id %q", ErrInvalid, r.UploadID)
	}
	switch r.State {
	case RemoteCopyStarted, RemoteCopyFinished, RemoteDeleteStarted:
		if r.DeletedAtMs != 0 {
			return fmt.Errorf("%w: %s remote segment with deleted_at_ms %d", ErrInvalid, r.State, r.DeletedAtMs)
		}
		return nil
	case RemoteDeleteFinished:
		if r.DeletedAtMs < 0 {
			return fmt.Errorf("%w: remote segment deleted_at_ms %d", ErrInvalid, r.DeletedAtMs)
		}
		return nil
	}
	return fmt.Errorf("%w: remote segment state %q", ErrInvalid, r.State)
}

// sameUpload reports whether a and b describe the same upload: only State (and
// DeletedAtMs, which checkRemoteSegment allows only in DELETE_FINISHED) may change.
func sameUpload(a, b RemoteSegmentRecord) bool {
	a.State, b.State, a.Revision, b.Revision = "", "", 0, 0
	return a.TopicID == b.TopicID && a.Partition == b.Partition && a.UploadID == b.UploadID &&
		a.BaseOffset == b.BaseOffset && a.EndOffset == b.EndOffset && a.LeaderEpoch == b.LeaderEpoch &&
		slices.Equal(a.Epochs, b.Epochs) && a.MaxTimestamp == b.MaxTimestamp && a.Size == b.Size &&
		a.Compression == b.Compression && a.TxnIndex == b.TxnIndex
}

// PutRemoteSegment writes rec at its key, only if every fence condition holds (typically
// PartitionUnchanged for the revision of partitions/<id>/<p> the leader read when it took
// over, so a deposed leader can never write).
//
// A COPY_STARTED record (rec.Revision 0) is created only if the key is absent. Any other
// state is a transition of the stored record, a compare-and-swap on rec.Revision (the
// ModRevision the caller read): COPY_STARTED → COPY_FINISHED, COPY_STARTED or COPY_FINISHED
// → DELETE_STARTED, DELETE_STARTED → DELETE_FINISHED. Nothing but the state (and
// DeletedAtMs with DELETE_FINISHED) may change.
// It returns the new revision. Errors: ErrInvalid (bad record or transition), ErrConflict
// (the key changed, exists or is gone), ErrFenced with ErrConflict (a fence failed).
// DeletedAtMs must be 0 except in DELETE_FINISHED, where the writer stamps it.
func (s *Store) PutRemoteSegment(ctx context.Context, rec RemoteSegmentRecord, fence ...Fence) (int64, error) {
	if err := checkRemoteSegment(rec); err != nil {
		return 0, err
	}
	key := s.RemoteSegmentKey(rec.TopicID, rec.Partition, rec.BaseOffset, rec.UploadID)
	var cond clientv3.Cmp
	if rec.State == RemoteCopyStarted {
		if rec.Revision != 0 {
			return 0, fmt.Errorf("%w: %s: COPY_STARTED is only written once, as a new key", ErrInvalid, key)
		}
		cond = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	} else {
		if rec.Revision <= 0 {
			return 0, fmt.Errorf("%w: %s: a %s record needs the revision it was read at", ErrInvalid, key, rec.State)
		}
		cur, err := s.remoteSegment(ctx, key)
		if err != nil {
			return 0, err
		}
		if cur.Revision != rec.Revision {
			return 0, fmt.Errorf("%w: %s changed since revision %d", ErrConflict, key, rec.Revision)
		}
		if !validRemoteTransition[[2]string{cur.State, rec.State}] {
			return 0, fmt.Errorf("%w: %s: transition %s → %s", ErrInvalid, key, cur.State, rec.State)
		}
		if !sameUpload(cur, rec) {
			return 0, fmt.Errorf("%w: %s: only the state of a remote segment may change", ErrInvalid, key)
		}
		cond = clientv3.Compare(clientv3.ModRevision(key), "=", rec.Revision)
	}
	resp, err := s.cli.Txn(ctx).
		If(conds(cond, fence)...).
		Then(clientv3.OpPut(key, encode(remoteSegmentValue{V: valueVersion, RemoteSegmentRecord: rec}))).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("meta: writing remote segment %s: %w", key, err)
	}
	if !resp.Succeeded {
		return 0, s.remoteWriteFailed(key, rec.Revision, resp)
	}
	return resp.Header.Revision, nil
}

// remoteWriteFailed tells a moved key (ErrConflict) from a failed fence (ErrFenced) using
// the Else branch's Get of the key.
func (s *Store) remoteWriteFailed(key string, rev int64, resp *clientv3.TxnResponse) error {
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	switch {
	case rev == 0 && len(kvs) > 0:
		return fmt.Errorf("%w: %s already exists", ErrConflict, key)
	case rev != 0 && (len(kvs) == 0 || kvs[0].ModRevision != rev):
		return fmt.Errorf("%w: %s changed since revision %d", ErrConflict, key, rev)
	}
	return fmt.Errorf("%w: %w: writing %s", ErrConflict, ErrFenced, key)
}

func (s *Store) remoteSegment(ctx context.Context, key string) (RemoteSegmentRecord, error) {
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return RemoteSegmentRecord{}, fmt.Errorf("meta: reading remote segment %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return RemoteSegmentRecord{}, fmt.Errorf("%w: %s is gone", ErrConflict, key)
	}
	return decodeRemoteSegment(key, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
}

func decodeRemoteSegment(key string, data []byte, rev int64) (RemoteSegmentRecord, error) {
	var w remoteSegmentValue
	err := decode(key, data, &w, func() int { return w.V })
	w.RemoteSegmentRecord.Revision = rev
	return w.RemoteSegmentRecord, err
}

// RemoteSegments reads every remote segment record of partition p of topic id (any state),
// sorted by base offset, then upload id, each with its Revision (a linearizable read).
func (s *Store) RemoteSegments(ctx context.Context, id TopicID, p int32) ([]RemoteSegmentRecord, error) {
	prefix := s.TierPrefix(id, p)
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("meta: reading remote segments of %s/%d: %w", id, p, err)
	}
	out := make([]RemoteSegmentRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		r, err := decodeRemoteSegment(string(kv.Key), kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	// Keys sort by %020d base offset then upload id already; sort anyway so the order does
	// not depend on the key layout.
	slices.SortStableFunc(out, func(a, b RemoteSegmentRecord) int {
		if c := compareInt64(a.BaseOffset, b.BaseOffset); c != 0 {
			return c
		}
		return strings.Compare(a.UploadID, b.UploadID)
	})
	return out, nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DeleteRemoteSegment removes the record of a DELETE_FINISHED upload (its objects are gone),
// compare-and-swap on rec.Revision and under the fence conditions. Errors as for
// PutRemoteSegment; a record in any other state is refused with ErrInvalid.
func (s *Store) DeleteRemoteSegment(ctx context.Context, rec RemoteSegmentRecord, fence ...Fence) error {
	if err := checkRemoteSegment(rec); err != nil {
		return err
	}
	key := s.RemoteSegmentKey(rec.TopicID, rec.Partition, rec.BaseOffset, rec.UploadID)
	if rec.Revision <= 0 {
		return fmt.Errorf("%w: %s: deleting needs the revision it was read at", ErrInvalid, key)
	}
	cur, err := s.remoteSegment(ctx, key)
	if err != nil {
		return err
	}
	if cur.Revision != rec.Revision {
		return fmt.Errorf("%w: %s changed since revision %d", ErrConflict, key, rec.Revision)
	}
	if cur.State != RemoteDeleteFinished {
		return fmt.Errorf("%w: %s is %s, not %s", ErrInvalid, key, cur.State, RemoteDeleteFinished)
	}
	resp, err := s.cli.Txn(ctx).
		If(conds(clientv3.Compare(clientv3.ModRevision(key), "=", rec.Revision), fence)...).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return fmt.Errorf("meta: deleting remote segment %s: %w", key, err)
	}
	if !resp.Succeeded {
		return s.remoteWriteFailed(key, rec.Revision, resp)
	}
	return nil
}
