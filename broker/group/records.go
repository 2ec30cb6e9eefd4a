package group

// The records of __consumer_offsets, in Kafka's format (so Kafka's own tools
// read them): keys and values are kmsg's OffsetCommitKey/Value (key version
// 1) and GroupMetadataKey/Value (key version 2); a null value is a
// tombstone. The coordinator writes uncompressed v2 record batches of them.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	offsetKeyVersion = 1 // OffsetCommitKey
	groupKeyVersion  = 2 // GroupMetadataKey
	// offsetValueVersion 3 carries the leader epoch; groupValueVersion 3
	// carries static instance ids.
	offsetValueVersion = 3
	groupValueVersion  = 3
)

// kv is one record to write: a nil value is a tombstone.
type kv struct {
	key, value []byte
}

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func offsetValue(o offset) []byte {
	v := kmsg.OffsetCommitValue{Version: offsetValueVersion, Offset: o.offset, LeaderEpoch: o.leaderEpoch,
		Metadata: o.metadata, CommitTimestamp: o.commitTime.UnixMilli()}
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeBatch builds one uncompressed v2 record batch of records with a
// valid CRC, written by no producer. The leader assigns its offsets and
// leader epoch on append.
func encodeBatch(records []kv, now time.Time) []byte {
	return encodeBatchAs(records, now, batchProducer{id: -1, epoch: -1, sequence: -1})
}

// batchProducer is who writes a batch: nobody (-1) for the coordinator's own
// records, a transactional producer for TxnOffsetCommit's.
type batchProducer struct {
	id            int64
	epoch         int16
	sequence      int32
	transactional bool
}

// attrTransactional is the record batch attribute of a transaction's data.
const attrTransactional = 0x10

// encodeBatchAs builds one uncompressed v2 record batch of records with a
// valid CRC, written by p.
func encodeBatchAs(records []kv, now time.Time, p batchProducer) []byte {
	var body []byte
	for i, r := range records {
		rec := kmsg.Record{OffsetDelta: int32(i), Key: r.key, Value: r.value}
		// The length prefix counts what follows it: encode once to measure.
		n := len(rec.AppendTo(nil)) - 1 // a zero length is one varint byte
		rec.Length = int32(n)
		body = rec.AppendTo(body)
	}
	ts := now.UnixMilli()
	b := kmsg.RecordBatch{
		FirstOffset: 0, PartitionLeaderEpoch: -1, Magic: 2,
		LastOffsetDelta: int32(len(records) - 1), FirstTimestamp: ts, MaxTimestamp: ts,
		ProducerID: p.id, ProducerEpoch: p.epoch, FirstSequence: p.sequence,
		NumRecords: int32(len(records)), Records: body,
	}
	if p.transactional {
		b.Attributes |= attrTransactional
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:12], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:21], crc32.Checksum(out[21:], castagnoli))
	return out
}

var errBadRecord = errors.New("group: undecodable __consumer_offsets record")

// batchInfo is what a loader needs of the batch holding a record.
type batchInfo struct {
	producerID    int64
	producerEpoch int16
	transactional bool
}

// decodeBatches calls fn for every record of the whole v2 batches in b,
// with its batch and offset, and marker for every transaction marker (a
// control batch's COMMIT or ABORT record), and returns the offset after
// the last batch. Other control records are skipped; compressed batches are
// refused (the coordinator never writes them, and producing to
// __consumer_offsets is refused).
func decodeBatches(b []byte, fn func(batch batchInfo, off int64, key, value []byte) error,
	marker func(batch batchInfo, commit bool) error) (next int64, err error) {
	for len(b) > 0 {
		if len(b) < 61 {
			return next, fmt.Errorf("%w: %d bytes left, short of a batch header", errBadRecord, len(b))
		}
		size := int(int32(binary.BigEndian.Uint32(b[8:12]))) + 12
		if size < 61 || size > len(b) {
			return next, fmt.Errorf("%w: batch of %d bytes with %d left", errBadRecord, size, len(b))
		}
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(b[:size]); err != nil {
			return next, fmt.Errorf("%w: %v", errBadRecord, err)
		}
		b = b[size:]
		next = batch.FirstOffset + int64(batch.LastOffsetDelta) + 1
		if batch.Attributes&0x07 != 0 {
			return next, fmt.Errorf("%w: compressed batch at offset %d", errBadRecord, batch.FirstOffset)
		}
		info := batchInfo{producerID: batch.ProducerID, producerEpoch: batch.ProducerEpoch,
			transactional: batch.Attributes&attrTransactional != 0}
		control := batch.Attributes&0x20 != 0
		recs := batch.Records
		for range batch.NumRecords {
			l, n := binary.Varint(recs)
			if n <= 0 || l < 0 || int(l) > len(recs)-n {
				return next, fmt.Errorf("%w: record length at offset %d", errBadRecord, batch.FirstOffset)
			}
			var r kmsg.Record
			if err := r.ReadFrom(recs[:n+int(l)]); err != nil {
				return next, fmt.Errorf("%w: %v", errBadRecord, err)
			}
			recs = recs[n+int(l):]
			if control {
				// A transaction marker: its key says COMMIT or ABORT
				// (Kafka's ControlRecordType); other control records
				// mean nothing to groups.
				var k kmsg.ControlRecordKey
				if err := k.ReadFrom(r.Key); err != nil || batch.ProducerID < 0 {
					continue
				}
				switch k.Type {
				case kmsg.ControlRecordKeyTypeAbort, kmsg.ControlRecordKeyTypeCommit:
					if err := marker(info, k.Type == kmsg.ControlRecordKeyTypeCommit); err != nil {
						return next, err
					}
				}
				continue
			}
			if err := fn(info, batch.FirstOffset+int64(r.OffsetDelta), r.Key, r.Value); err != nil {
				return next, err
			}
		}
	}
	return next, nil
}

// keyVersion returns the version that starts every key.
func keyVersion(key []byte) (int16, bool) {
	if len(key) < 2 {
		return 0, false
	}
	return int16(binary.BigEndian.Uint16(key)), true
}
