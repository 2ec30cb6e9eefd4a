package txn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestRecordsRoundTrip(t *testing.T) {
	ongoing := meta{producerID: 7, prevProducerID: -1, nextProducerID: -1, epoch: 3, timeoutMs: 60000, state: Ongoing,
		partitions: []TopicPartition{{"a", 0}, {"a", 2}, {"b", 1}}, startMs: 100, updateMs: 200}
	tv2 := ongoing
	tv2.clientTV, tv2.prevProducerID, tv2.nextProducerID = 2, 5, 9
	for name, m := range map[string]meta{"v0": ongoing, "v1": tv2} {
		v := encodeValue(m)
		if want := map[string]int16{"v0": 0, "v1": 1}[name]; int16(binary.BigEndian.Uint16(v)) != want {
			t.Fatalf("%s: value version %d", name, binary.BigEndian.Uint16(v))
		}
		got, err := decodeValue(v)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%s: %+v, want %+v", name, got, m)
		}
	}
	// Kafka's tools read it: kmsg decodes the same fields.
	var kv kmsg.TxnMetadataValue
	if err := kv.ReadFrom(encodeValue(ongoing)); err != nil || kv.State != kmsg.TransactionStateOngoing ||
		len(kv.Topics) != 2 || kv.Topics[0].Topic != "a" || len(kv.Topics[0].Partitions) != 2 {
		t.Fatalf("kmsg reads %+v, %v", kv, err)
	}
	// Empty carries no partitions, as Kafka writes it.
	empty := ongoing
	empty.state = Empty
	if got, _ := decodeValue(encodeValue(empty)); len(got.partitions) != 0 {
		t.Fatalf("empty state with partitions %v", got.partitions)
	}
	id, ok, err := decodeKey(encodeKey("tx-1"))
	if id != "tx-1" || !ok || err != nil {
		t.Fatalf("key: %q %v %v", id, ok, err)
	}
	if _, ok, err := decodeKey([]byte{0, 5, 0, 0}); ok || err != nil {
		t.Fatalf("a newer key version is skipped: %v %v", ok, err)
	}
	for name, b := range map[string][]byte{
		"short key":   {0},
		"short value": {0, 0, 1},
	} {
		var err error
		if name == "short key" {
			_, _, err = decodeKey(b)
		} else {
			_, err = decodeValue(b)
		}
		if !errors.Is(err, ErrBadRecord) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	bad := ongoing
	bad.state = 9
	if _, err := decodeValue(encodeValue(bad)); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("state 9: %v", err)
	}
}

func mustBatch(t testing.TB, key, value []byte, ts int64) []byte {
	t.Helper()
	b, err := batchOf(key, value, ts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBatchFraming(t *testing.T) {
	var log []byte
	for i, kv := range []struct{ k, v []byte }{{encodeKey("a"), encodeValue(meta{producerID: 1, state: Empty})}, {encodeKey("a"), nil}} {
		b := mustBatch(t, kv.k, kv.v, 1000)
		binary.BigEndian.PutUint64(b, uint64(10+i))
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil || rb.NumRecords != 1 || rb.Magic != 2 {
			t.Fatalf("batch: %+v %v", rb, err)
		}
		log = append(log, b...)
	}
	var offs []int64
	var tomb bool
	next, err := readRecords(log, func(off int64, key, value []byte) error {
		offs = append(offs, off)
		tomb = value == nil
		return nil
	})
	if err != nil || next != 12 || len(offs) != 2 || offs[1] != 11 || !tomb {
		t.Fatalf("read %v next %d tombstone %v: %v", offs, next, tomb, err)
	}
	corrupt := bytes.Clone(log)
	corrupt[len(corrupt)-1] ^= 1 // the CRC no longer matches
	if _, err := readRecords(corrupt, func(int64, []byte, []byte) error { return nil }); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("corrupt: %v", err)
	}
	if _, err := readRecords(log[:70], func(int64, []byte, []byte) error { return nil }); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("torn batch: %v", err)
	}
}

// FuzzReplay feeds arbitrary bytes to the decoding load does. Invariants:
// it never panics; every value it accepts re-encodes to a value that
// decodes to the same state.
func FuzzReplay(f *testing.F) {
	m := meta{producerID: 7, epoch: 3, timeoutMs: 60000, state: PrepareCommit,
		partitions: []TopicPartition{{"a", 0}, {"b", 1}}, startMs: 100, updateMs: 200, prevProducerID: -1, nextProducerID: -1}
	f.Add(mustBatch(f, encodeKey("x"), encodeValue(m), 1))
	m.clientTV = 2
	f.Add(append(mustBatch(f, encodeKey("y"), encodeValue(m), 1), mustBatch(f, encodeKey("y"), nil, 2)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = readRecords(b, func(off int64, key, value []byte) error {
			if _, ok, err := decodeKey(key); err != nil || !ok || value == nil {
				return err
			}
			got, err := decodeValue(value)
			if err != nil {
				return err
			}
			if got.state == Empty {
				got.partitions = nil // not written for Empty
			}
			again, err := decodeValue(encodeValue(got))
			if err != nil {
				t.Fatalf("re-encoded %+v does not decode: %v", got, err)
			}
			if len(again.partitions) == 0 && len(got.partitions) == 0 {
				again.partitions, got.partitions = nil, nil
			}
			if got.clientTV < 2 { // v0 carries no KIP-890 fields
				got.prevProducerID, got.nextProducerID, got.clientTV = -1, -1, 0
			}
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("re-encoded %+v decodes to %+v", got, again)
			}
			return nil
		})
		// The same bytes as a whole value and key.
		_, _ = decodeValue(b)
		_, _, _ = decodeKey(b)
	})
}
