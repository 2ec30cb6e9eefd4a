package group

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// controlBatch is a transaction marker as the log writes one: a
// transactional control batch of one record whose key is the marker type.
func controlBatch(producerID int64, epoch int16, commit bool, offset int64) []byte {
	typ := kmsg.ControlRecordKeyTypeAbort
	if commit {
		typ = kmsg.ControlRecordKeyTypeCommit
	}
	key := (&kmsg.ControlRecordKey{Version: 0, Type: typ}).AppendTo(nil)
	value := (&kmsg.EndTxnMarker{Version: 0, CoordinatorEpoch: 1}).AppendTo(nil)
	rec := kmsg.Record{Key: key, Value: value}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	b := kmsg.RecordBatch{FirstOffset: offset, PartitionLeaderEpoch: -1, Magic: 2, Attributes: 0x30,
		ProducerID: producerID, ProducerEpoch: epoch, FirstSequence: -1, NumRecords: 1, Records: rec.AppendTo(nil)}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:12], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:21], crc32.Checksum(out[21:], castagnoli))
	return out
}

// TestTransactionalBatchRoundTrip: a TxnOffsetCommit batch carries the
// producer, its sequence and the transactional attribute, and reads back
// as such; a marker that follows reads back as COMMIT or ABORT.
func TestTransactionalBatchRoundTrip(t *testing.T) {
	o := offset{offset: 42, leaderEpoch: 3, metadata: "m", commitTime: time.UnixMilli(1000)}
	records := []kv{{key: offsetKey("g", "t", 1), value: offsetValue(o)}, {key: offsetKey("g", "t", 2), value: offsetValue(o)}}
	b := encodeBatchAs(records, time.UnixMilli(1000), batchProducer{id: 7, epoch: 2, sequence: 5, transactional: true})
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if rb.ProducerID != 7 || rb.ProducerEpoch != 2 || rb.FirstSequence != 5 || rb.Attributes != attrTransactional ||
		rb.CRC != int32(crc32.Checksum(b[21:], castagnoli)) {
		t.Fatalf("batch header: %+v", rb)
	}
	b = append(b, controlBatch(7, 2, true, 2)...)
	b = append(b, controlBatch(8, 0, false, 3)...)
	var got []string
	next, err := decodeBatches(b, func(batch batchInfo, off int64, key, value []byte) error {
		if !batch.transactional || batch.producerID != 7 || batch.producerEpoch != 2 {
			t.Errorf("record at %d: batch %+v", off, batch)
		}
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return err
		}
		got = append(got, "offset")
		return nil
	}, func(batch batchInfo, commit bool) error {
		got = append(got, map[bool]string{true: "commit", false: "abort"}[commit])
		return nil
	})
	if err != nil || next != 4 {
		t.Fatalf("next %d, err %v", next, err)
	}
	if want := []string{"offset", "offset", "commit", "abort"}; len(got) != len(want) || got[0] != want[0] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("got %v, want %v", got, want)
	}
	if s := addSequence(1<<31-1, 1); s != 0 {
		t.Fatalf("sequence wraps to %d", s)
	}
}

// TestTxnStateMarkers: a marker resolves the transaction of its producer
// only, once; one of an older epoch than the offsets leaves them pending;
// a tombstone drops a pending offset.
func TestTxnStateMarkers(t *testing.T) {
	ts := newTxnState()
	tp := topicPartition{"t", 0}
	ts.addLocked(7, 3, "g", tp, offset{offset: 1, logOffset: 10})
	ts.addLocked(8, 0, "g", topicPartition{"t", 1}, offset{offset: 2, logOffset: 11})
	if p := ts.pendingLocked("g"); len(p) != 2 {
		t.Fatalf("pending: %v", p)
	}
	if ts.takeLocked(7, 2) != nil {
		t.Fatal("an older epoch's marker resolved the transaction")
	}
	if got := ts.takeLocked(7, 4); got == nil || got.groups["g"][tp].offset != 1 {
		t.Fatalf("take: %+v", got)
	}
	if ts.takeLocked(7, 4) != nil {
		t.Fatal("resolved twice")
	}
	ts.dropLocked("g", []topicPartition{{"t", 1}})
	if p := ts.pendingLocked("g"); len(p) != 0 {
		t.Fatalf("pending after the tombstone: %v", p)
	}
}

// FuzzDecodeBatches: decodeBatches never panics on arbitrary bytes, and
// what it reads of a valid prefix it reads the same when more follows.
func FuzzDecodeBatches(f *testing.F) {
	o := offset{offset: 1, commitTime: time.UnixMilli(1)}
	f.Add(encodeBatchAs([]kv{{key: offsetKey("g", "t", 0), value: offsetValue(o)}}, time.UnixMilli(1),
		batchProducer{id: 1, epoch: 0, sequence: 0, transactional: true}))
	f.Add(append(encodeBatch([]kv{{key: groupKey("g")}}, time.UnixMilli(1)), controlBatch(1, 0, true, 1)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		count := func(b []byte) (int, error) {
			n := 0
			_, err := decodeBatches(b, func(batchInfo, int64, []byte, []byte) error { n++; return nil },
				func(batchInfo, bool) error { n++; return nil })
			return n, err
		}
		n, err := count(b)
		if err != nil {
			return
		}
		m, err := count(append(b[:len(b):len(b)], controlBatch(9, 0, false, 99)...))
		if err != nil || m != n+1 {
			t.Fatalf("a valid prefix then a marker: %d then %d, %v", n, m, err)
		}
	})
}
