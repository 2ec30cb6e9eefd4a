// Package segmenttest builds Kafka v2 record batches for tests of the segment package and
// of packages above it (broker, repl, tier). It does not import segment.
package segmenttest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record of a batch. Its offset delta is its index in the batch.
type Record struct {
	Key, Value     []byte // nil encodes as null
	Headers        []Header
	TimestampDelta int64 // from Batch.FirstTimestamp
}

// Batch describes a v2 record batch; Encode produces its bytes with a valid CRC.
type Batch struct {
	BaseOffset           int64
	PartitionLeaderEpoch int32
	FirstTimestamp       int64
	ProducerID           int64 // -1 for a plain producer
	ProducerEpoch        int16 // -1 for a plain producer
	BaseSequence         int32 // -1 for a plain producer
	Transactional        bool
	Control              bool
	LogAppendTime        bool
	Compression          int8 // 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
	Records              []Record
}

// Values returns records with the given values, no keys and timestamp delta 0.
func Values(values ...string) []Record {
	rs := make([]Record, len(values))
	for i, v := range values {
		rs[i] = Record{Value: []byte(v)}
	}
	return rs
}

// Plain encodes a batch of a non-idempotent producer with the current time as timestamp.
func Plain(values ...string) []byte {
	return Batch{
		FirstTimestamp: time.Now().UnixMilli(),
		ProducerID:     -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: Values(values...),
	}.Encode()
}

// Idempotent encodes a batch of an idempotent producer with the current time as timestamp.
func Idempotent(producerID int64, epoch int16, baseSequence int32, values ...string) []byte {
	return Batch{
		FirstTimestamp: time.Now().UnixMilli(),
		ProducerID:     producerID, ProducerEpoch: epoch, BaseSequence: baseSequence,
		Records: Values(values...),
	}.Encode()
}

// Concat concatenates batches, as a Produce request carries them.
func Concat(batches ...[]byte) []byte { return bytes.Join(batches, nil) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// FixCRC recomputes the CRC-32C of the batch b (exactly one batch) after a test edited it.
func FixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
}

// Encode returns the batch's bytes.
func (b Batch) Encode() []byte {
	var recs []byte
	maxDelta := int64(0)
	for i, r := range b.Records {
		recs = appendRecord(recs, i, r)
		maxDelta = max(maxDelta, r.TimestampDelta)
	}
	payload := compress(b.Compression, recs)
	out := make([]byte, 61, 61+len(payload))
	be := binary.BigEndian
	be.PutUint64(out[0:], uint64(b.BaseOffset))
	be.PutUint32(out[8:], uint32(49+len(payload)))
	be.PutUint32(out[12:], uint32(b.PartitionLeaderEpoch))
	out[16] = 2
	attrs := uint16(b.Compression & 7)
	if b.LogAppendTime {
		attrs |= 0x08
	}
	if b.Transactional {
		attrs |= 0x10
	}
	if b.Control {
		attrs |= 0x20
	}
	be.PutUint16(out[21:], attrs)
	be.PutUint32(out[23:], uint32(max(len(b.Records)-1, 0)))
	be.PutUint64(out[27:], uint64(b.FirstTimestamp))
	be.PutUint64(out[35:], uint64(b.FirstTimestamp+maxDelta))
	be.PutUint64(out[43:], uint64(b.ProducerID))
	be.PutUint16(out[51:], uint16(b.ProducerEpoch))
	be.PutUint32(out[53:], uint32(b.BaseSequence))
	be.PutUint32(out[57:], uint32(len(b.Records)))
	out = append(out, payload...)
	FixCRC(out)
	return out
}

func appendRecord(dst []byte, i int, r Record) []byte {
	var body []byte
	body = append(body, 0) // attributes
	body = binary.AppendVarint(body, r.TimestampDelta)
	body = binary.AppendVarint(body, int64(i))
	body = appendBytes(body, r.Key)
	body = appendBytes(body, r.Value)
	body = binary.AppendVarint(body, int64(len(r.Headers)))
	for _, h := range r.Headers {
		body = appendBytes(body, []byte(h.Key))
		body = appendBytes(body, h.Value)
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func compress(codec int8, b []byte) []byte {
	var buf bytes.Buffer
	switch codec {
	case 1:
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case 2:
		return snappy.Encode(nil, b)
	case 3:
		w := lz4.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case 4:
		w, _ := zstd.NewWriter(&buf)
		w.Write(b)
		w.Close()
	default:
		return b
	}
	return buf.Bytes()
}

// Transactional encodes a batch of a transactional producer with the current time as
// timestamp.
func Transactional(producerID int64, epoch int16, baseSequence int32, values ...string) []byte {
	return Batch{
		FirstTimestamp: time.Now().UnixMilli(),
		ProducerID:     producerID, ProducerEpoch: epoch, BaseSequence: baseSequence,
		Transactional: true,
		Records:       Values(values...),
	}.Encode()
}
