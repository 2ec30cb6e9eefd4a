package txn

// The records of __transaction_state, in Kafka's format so that Kafka's
// tools read them: the key is kmsg.TxnMetadataKey version 0 (the
// transactional id), the value kmsg.TxnMetadataValue, version 0, or the
// flexible version 1 carrying KIP-890's fields once the producer speaks
// transaction version 2; a null value is a tombstone (the id expired). The
// coordinator writes one uncompressed v2 batch per transition, framed by
// the log's own codec (segment.EncodeBatch).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/segment"
)

const (
	keyVersion = 0
	// maxKeyVersion is the newest key version Kafka writes; keys of newer
	// versions are skipped on load, as Kafka does.
	maxKeyVersion = 0
	// maxPartitionsPerTxn bounds what a loaded value may name, so a
	// corrupt record cannot make load allocate without bound.
	maxPartitionsPerTxn = 1 << 20
)

// ErrBadRecord is returned by load for a record of __transaction_state it
// cannot decode.
var ErrBadRecord = errors.New("txn: undecodable __transaction_state record")

func encodeKey(id string) []byte {
	k := kmsg.TxnMetadataKey{Version: keyVersion, TransactionalID: id}
	return k.AppendTo(nil)
}

// encodeValue is m as Kafka writes it. Empty transactions carry no
// partitions (Kafka refuses to write them).
func encodeValue(m meta) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis = m.producerID, m.epoch, m.timeoutMs
	v.State = kmsg.TransactionState(m.state)
	v.LastUpdateTimestamp, v.StartTimestamp = m.updateMs, m.startMs
	if m.clientTV >= 2 {
		v.Version = 1
		v.PreviousProducerID, v.NextProducerID = m.prevProducerID, m.nextProducerID
		v.ClientTransactionVersion = m.clientTV
	}
	if m.state != Empty {
		for _, tp := range m.partitions {
			if n := len(v.Topics); n > 0 && v.Topics[n-1].Topic == tp.Topic {
				v.Topics[n-1].Partitions = append(v.Topics[n-1].Partitions, tp.Partition)
				continue
			}
			v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic, Partitions: []int32{tp.Partition}})
		}
	}
	return v.AppendTo(nil)
}

// decodeKey returns the transactional id of a key; ok is false for a key
// version this coordinator does not know (skipped).
func decodeKey(key []byte) (id string, ok bool, err error) {
	if len(key) < 2 {
		return "", false, fmt.Errorf("%w: key of %d bytes", ErrBadRecord, len(key))
	}
	if v := int16(binary.BigEndian.Uint16(key)); v < 0 || v > maxKeyVersion {
		return "", false, nil
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return "", false, fmt.Errorf("%w: key: %v", ErrBadRecord, err)
	}
	return k.TransactionalID, true, nil
}

// decodeValue is the state a value holds. Values of any version decode
// (later versions only add tagged fields); a state out of range, a
// negative timeout or an absurd partition list is an error.
func decodeValue(value []byte) (meta, error) {
	if len(value) < 2 || int16(binary.BigEndian.Uint16(value)) < 0 {
		return meta{}, fmt.Errorf("%w: value of %d bytes", ErrBadRecord, len(value))
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return meta{}, fmt.Errorf("%w: value: %v", ErrBadRecord, err)
	}
	m := meta{producerID: v.ProducerID, epoch: v.ProducerEpoch, timeoutMs: v.TimeoutMillis,
		state: State(v.State), startMs: v.StartTimestamp, updateMs: v.LastUpdateTimestamp,
		prevProducerID: noProducerID, nextProducerID: noProducerID}
	if v.Version >= 1 {
		m.prevProducerID, m.nextProducerID, m.clientTV = v.PreviousProducerID, v.NextProducerID, v.ClientTransactionVersion
	}
	switch {
	case m.state < Empty || m.state > PrepareEpochFence:
		return meta{}, fmt.Errorf("%w: state %d", ErrBadRecord, v.State)
	case m.timeoutMs < 0:
		return meta{}, fmt.Errorf("%w: timeout %d ms", ErrBadRecord, v.TimeoutMillis)
	case m.producerID < 0:
		return meta{}, fmt.Errorf("%w: producer id %d", ErrBadRecord, v.ProducerID)
	}
	n := 0
	for _, t := range v.Topics {
		n += len(t.Partitions)
	}
	if n > maxPartitionsPerTxn {
		return meta{}, fmt.Errorf("%w: %d partitions", ErrBadRecord, n)
	}
	m.partitions = make([]TopicPartition, 0, n)
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			m.partitions = append(m.partitions, TopicPartition{t.Topic, p})
		}
	}
	slices.SortFunc(m.partitions, TopicPartition.compare)
	m.partitions = slices.Compact(m.partitions)
	return m, nil
}

// batchOf frames one record (a nil value is a tombstone) as an
// uncompressed v2 record batch with the log's own encoder; the leader
// assigns its offset and epoch on append.
func batchOf(key, value []byte, tsMs int64) ([]byte, error) {
	h := segment.BatchHeader{PartitionLeaderEpoch: -1, BaseTimestamp: tsMs, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	return segment.EncodeBatch(h, []segment.Record{{Timestamp: tsMs, Key: key, Value: value}})
}

// readRecords calls fn with each record of the whole v2 batches at the
// start of b and returns the offset after the last batch read. Batches are
// validated (CRC included) by the log's decoder. Control batches (markers,
// never written here) are skipped; compressed batches are refused, the
// coordinator never writes them and producing to __transaction_state is
// refused. Invariant (fuzzed): never panics, and allocates in proportion to
// b.
func readRecords(b []byte, fn func(off int64, key, value []byte) error) (next int64, err error) {
	for len(b) > 0 {
		h, err := segment.ValidateBatch(b)
		if err != nil {
			return next, fmt.Errorf("%w: %w", ErrBadRecord, err)
		}
		if h.Compression() != segment.CompressionNone {
			return next, fmt.Errorf("%w: compressed batch at offset %d", ErrBadRecord, h.BaseOffset)
		}
		batch := b[:h.Size()]
		b = b[h.Size():]
		next = h.NextOffset()
		if h.Control() {
			continue
		}
		_, recs, err := segment.DecodeRecords(batch)
		if err != nil {
			return next, fmt.Errorf("%w: %w", ErrBadRecord, err)
		}
		for _, r := range recs {
			if err := fn(r.Offset, r.Key, r.Value); err != nil {
				return next, err
			}
		}
	}
	return next, nil
}
