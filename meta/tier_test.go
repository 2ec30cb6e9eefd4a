package meta

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func exampleRemoteSegment(id TopicID) RemoteSegmentRecord {
	return RemoteSegmentRecord{TopicID: id, Partition: 3, UploadID: "Zr4mIVSE0nWlbyAJ3DpRdA", BaseOffset: 1000,
		EndOffset: 1999, LeaderEpoch: 4, Epochs: []RemoteEpoch{{Epoch: 3, StartOffset: 1000}, {Epoch: 4, StartOffset: 1500}},
		MaxTimestamp: 1732492800000, Size: 1048576, Compression: "none", State: RemoteCopyFinished, Revision: 99}
}

// TestRemoteSegmentKeyspaceDoc checks the tier/ example of KEYSPACE.md byte for byte.
func TestRemoteSegmentKeyspaceDoc(t *testing.T) {
	doc, err := os.ReadFile("KEYSPACE.md")
	if err != nil {
		t.Fatal(err)
	}
	id, err := ParseTopicID("uW8eU0f4SnyiWXqgyfjh0A")
	if err != nil {
		t.Fatal(err)
	}
	v := encode(remoteSegmentValue{V: valueVersion, RemoteSegmentRecord: exampleRemoteSegment(id)})
	if !strings.Contains(string(doc), "\n"+v+"\n") {
		t.Errorf("KEYSPACE.md does not show the value %s", v)
	}
	s := &Store{prefix: clusterPrefix("q5TQ0yYhQd2sJ9uZPd1vBw")}
	if got, want := s.RemoteSegmentKey(id, 3, 1000, "Zr4mIVSE0nWlbyAJ3DpRdA"),
		"/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/tier/uW8eU0f4SnyiWXqgyfjh0A/3/00000000000000001000-Zr4mIVSE0nWlbyAJ3DpRdA"; got != want {
		t.Errorf("key %q, want %q", got, want)
	}
	back, err := decodeRemoteSegment("k", []byte(v), 7)
	want := exampleRemoteSegment(id)
	want.Revision = 7
	if err != nil || !sameUpload(back, want) || back.State != want.State || back.Revision != 7 {
		t.Errorf("decode = %+v, %v", back, err)
	}
}

func TestRemoteSegmentLifecycle(t *testing.T) {
	n := startSingle(t, "")
	s := openStore(t, n.Client())
	ctx := testCtx(t)
	topic, parts := testTopic("tiered", 1)
	if _, err := s.CreateTopic(ctx, topic, parts); err != nil {
		t.Fatal(err)
	}
	st, err := s.Partition(ctx, topic.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	fence := s.PartitionUnchanged(topic.ID, 0, st.Revision)

	rec := func(base int64, up string) RemoteSegmentRecord {
		return RemoteSegmentRecord{TopicID: topic.ID, Partition: 0, UploadID: up, BaseOffset: base, EndOffset: base + 9,
			LeaderEpoch: 0, Epochs: []RemoteEpoch{{0, base}}, MaxTimestamp: -1, Size: 100, Compression: "none", State: RemoteCopyStarted}
	}

	// Create, in an order that is not the offset order.
	var revs = map[string]int64{}
	for _, r := range []RemoteSegmentRecord{rec(20, "c"), rec(0, "a"), rec(10, "b"), rec(10, "a2")} {
		rev, err := s.PutRemoteSegment(ctx, r, fence)
		if err != nil {
			t.Fatalf("create %d-%s: %v", r.BaseOffset, r.UploadID, err)
		}
		revs[r.UploadID] = rev
	}
	if _, err := s.PutRemoteSegment(ctx, rec(0, "a"), fence); !errors.Is(err, ErrConflict) || errors.Is(err, ErrFenced) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	list, err := s.RemoteSegments(ctx, topic.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range list {
		order = append(order, r.UploadID)
		if r.Revision != revs[r.UploadID] || r.State != RemoteCopyStarted {
			t.Errorf("%s: revision %d state %s, want %d COPY_STARTED", r.UploadID, r.Revision, r.State, revs[r.UploadID])
		}
	}
	if got := strings.Join(order, ","); got != "a,a2,b,c" {
		t.Fatalf("order %s", got)
	}

	a := list[0]
	// Invalid: no revision, wrong state jumps, changed fields, stale revisions.
	bad := []struct {
		name string
		r    func() RemoteSegmentRecord
		want error
	}{
		{"no revision", func() RemoteSegmentRecord { r := a; r.Revision = 0; r.State = RemoteCopyFinished; return r }, ErrInvalid},
		{"restart", func() RemoteSegmentRecord { return a }, ErrInvalid},
		{"skip to DELETE_FINISHED", func() RemoteSegmentRecord { r := a; r.State = RemoteDeleteFinished; return r }, ErrInvalid},
		{"unknown state", func() RemoteSegmentRecord { r := a; r.State = "DONE"; return r }, ErrInvalid},
		{"changed end", func() RemoteSegmentRecord { r := a; r.State = RemoteCopyFinished; r.EndOffset++; return r }, ErrInvalid},
		{"stale revision", func() RemoteSegmentRecord { r := a; r.State = RemoteCopyFinished; r.Revision--; return r }, ErrConflict},
		{"bad upload id", func() RemoteSegmentRecord { r := rec(0, "x/y"); return r }, ErrInvalid},
		{"deleted_at_ms before DELETE_FINISHED", func() RemoteSegmentRecord { r := a; r.State = RemoteCopyFinished; r.DeletedAtMs = 5; return r }, ErrInvalid},
		{"created with deleted_at_ms", func() RemoteSegmentRecord { r := rec(40, "e"); r.DeletedAtMs = 5; return r }, ErrInvalid},
	}
	for _, tc := range bad {
		if _, err := s.PutRemoteSegment(ctx, tc.r(), fence); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}

	// The full life cycle of a.
	fin := a
	fin.State = RemoteCopyFinished
	if fin.Revision, err = s.PutRemoteSegment(ctx, fin, fence); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRemoteSegment(ctx, fin, fence); !errors.Is(err, ErrInvalid) {
		t.Fatalf("deleting a COPY_FINISHED record: %v", err)
	}
	if _, err := s.PutRemoteSegment(ctx, a, fence); !errors.Is(err, ErrInvalid) {
		t.Fatalf("COPY_STARTED again: %v", err)
	}
	// A second writer holding the old revision loses.
	if _, err := s.PutRemoteSegment(ctx, func() RemoteSegmentRecord { r := a; r.State = RemoteDeleteStarted; return r }(), fence); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale writer: %v", err)
	}
	del := fin
	del.State = RemoteDeleteStarted
	if del.Revision, err = s.PutRemoteSegment(ctx, del, fence); err != nil {
		t.Fatal(err)
	}
	done := del
	done.State = RemoteDeleteFinished
	done.DeletedAtMs = -1
	if _, err := s.PutRemoteSegment(ctx, done, fence); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative deleted_at_ms: %v", err)
	}
	done.DeletedAtMs = 1732492800123 // stamped by the DELETE_FINISHED write, kept in the record
	if done.Revision, err = s.PutRemoteSegment(ctx, done, fence); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RemoteSegments(ctx, topic.ID, 0); err != nil || len(got) == 0 || got[0].UploadID != "a" ||
		got[0].State != RemoteDeleteFinished || got[0].DeletedAtMs != done.DeletedAtMs || got[0].Revision != done.Revision {
		t.Fatalf("DELETE_FINISHED record read back: %+v, %v", got, err)
	}
	if err := s.DeleteRemoteSegment(ctx, del, fence); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete at a stale revision: %v", err)
	}
	if err := s.DeleteRemoteSegment(ctx, done, fence); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRemoteSegment(ctx, done, fence); !errors.Is(err, ErrConflict) {
		t.Fatalf("deleting twice: %v", err)
	}

	// COPY_STARTED → DELETE_STARTED (abandoned upload).
	b := list[2]
	b.State = RemoteDeleteStarted
	if _, err := s.PutRemoteSegment(ctx, b, fence); err != nil {
		t.Fatalf("abandon: %v", err)
	}

	// Fencing: a new leader changes the partition key; every write under the old fence fails
	// with ErrFenced and changes nothing.
	st.Leader, st.LeaderEpoch = 2, st.LeaderEpoch+1
	if _, err := s.UpdatePartition(ctx, topic.ID, 0, st); err != nil {
		t.Fatal(err)
	}
	c := list[3]
	c.State = RemoteCopyFinished
	if _, err := s.PutRemoteSegment(ctx, c, fence); !errors.Is(err, ErrFenced) || !errors.Is(err, ErrConflict) {
		t.Fatalf("fenced finish: %v", err)
	}
	if _, err := s.PutRemoteSegment(ctx, rec(30, "d"), fence); !errors.Is(err, ErrFenced) {
		t.Fatalf("fenced create: %v", err)
	}
	list, err = s.RemoteSegments(ctx, topic.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	order = order[:0]
	for _, r := range list {
		order = append(order, r.UploadID+":"+r.State)
	}
	if got := strings.Join(order, ","); got != "a2:COPY_STARTED,b:DELETE_STARTED,c:COPY_STARTED" {
		t.Fatalf("after fencing: %s", got)
	}
	// Other partitions and topics are not listed.
	if other, err := s.RemoteSegments(ctx, topic.ID, 1); err != nil || len(other) != 0 {
		t.Fatalf("partition 1: %v, %v", other, err)
	}
}
