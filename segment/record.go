package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// The record-level codec. The produce and fetch paths of ordinary topics never decode
// records; three things do: the cleaner (compaction rewrites batches record by record),
// the key check of compacted topics (ErrNoKey), and ListOffsets by timestamp. Callers that
// must read records, such as a coordinator loading its compacted topic, use DecodeRecords.
//
// A v2 record (Kafka's DefaultRecord), every integer a zigzag varint:
//
//	length | attributes int8 | timestampDelta | offsetDelta | keyLength | key |
//	valueLength | value | headerCount | headerCount × (keyLength | key | valueLength | value)
//
// A length of -1 is null (not allowed for header keys).

// Header is a record header.
type Header struct {
	Key   string
	Value []byte // nil: null
}

// Record is one decoded record of a v2 batch.
type Record struct {
	Attributes int8  // unused by Kafka; kept as read
	Offset     int64 // absolute: the batch's base offset plus the record's offset delta
	Timestamp  int64 // absolute; with LogAppendTime the batch's maxTimestamp
	Key        []byte
	Value      []byte // nil: a tombstone
	Headers    []Header
}

// attrDeleteHorizon is attributes bit 6 (KIP-534): baseTimestamp holds the delete horizon
// the cleaner set, the time after which the batch's tombstones may be removed.
const attrDeleteHorizon = 0x40

// DeleteHorizon is the delete horizon the cleaner stored in the batch (KIP-534), and
// whether there is one.
func (h *BatchHeader) DeleteHorizon() (int64, bool) {
	if h.Attributes&attrDeleteHorizon == 0 {
		return 0, false
	}
	return h.BaseTimestamp, true
}

// rawRecord is a record as the cleaner handles it: slices into the records buffer, headers
// left encoded.
type rawRecord struct {
	attrs    int8
	tsDelta  int64
	offDelta int32
	key      []byte // nil: null
	value    []byte // nil: null
	headers  []byte // the header count and the headers, as encoded
}

// nextRecord decodes the record at the start of p and returns it and what follows it.
// Only lengths and ranges are checked: that is what Kafka's DefaultRecord.readFrom checks.
func nextRecord(p []byte) (rawRecord, []byte, error) {
	var r rawRecord
	length, n := binary.Varint(p)
	if n <= 0 || length < 1 || length > int64(len(p)-n) {
		return r, nil, fmt.Errorf("%w: record length", errRecords)
	}
	body, rest := p[n:n+int(length)], p[n+int(length):]
	r.attrs = int8(body[0])
	b := body[1:]
	if r.tsDelta, n = binary.Varint(b); n <= 0 {
		return r, nil, fmt.Errorf("%w: timestamp delta", errRecords)
	}
	b = b[n:]
	od, n := binary.Varint(b)
	if n <= 0 || od < 0 || od > math.MaxInt32 {
		return r, nil, fmt.Errorf("%w: offset delta", errRecords)
	}
	r.offDelta = int32(od)
	b = b[n:]
	var err error
	if r.key, b, err = nextBytes(b, true); err != nil {
		return r, nil, err
	}
	if r.value, b, err = nextBytes(b, true); err != nil {
		return r, nil, err
	}
	r.headers = b
	count, n := binary.Varint(b)
	if n <= 0 || count < 0 || count > int64(len(b)) {
		return r, nil, fmt.Errorf("%w: header count", errRecords)
	}
	b = b[n:]
	for range count {
		if _, b, err = nextBytes(b, false); err != nil {
			return r, nil, err
		}
		if _, b, err = nextBytes(b, true); err != nil {
			return r, nil, err
		}
	}
	if len(b) != 0 {
		return r, nil, fmt.Errorf("%w: %d bytes after the headers", errRecords, len(b))
	}
	return r, rest, nil
}

// nextBytes decodes a varint-length byte string (-1: null, when nullable).
func nextBytes(b []byte, nullable bool) (v, rest []byte, err error) {
	l, n := binary.Varint(b)
	switch {
	case n <= 0 || l < -1 || l > int64(len(b)-n):
		return nil, nil, fmt.Errorf("%w: field length", errRecords)
	case l == -1 && !nullable:
		return nil, nil, fmt.Errorf("%w: null header key", errRecords)
	case l == -1:
		return nil, b[n:], nil
	}
	return b[n : n+int(l) : n+int(l)], b[n+int(l):], nil
}

// eachRawRecord calls fn with each of the count records in recs; the records must fill
// recs exactly.
func eachRawRecord(recs []byte, count int32, fn func(*rawRecord) error) error {
	p := recs
	for range count {
		r, rest, err := nextRecord(p)
		if err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		p = rest
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d bytes after %d records", errRecords, len(p), count)
	}
	return nil
}

// varintLen is the size of x as a zigzag varint.
func varintLen(x int64) int {
	ux := uint64(x)<<1 ^ uint64(x>>63)
	n := 1
	for ux >= 0x80 {
		ux >>= 7
		n++
	}
	return n
}

func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	return append(binary.AppendVarint(dst, int64(len(b))), b...)
}

// appendRawRecord encodes r with the given deltas (the batch it goes into may have another
// base timestamp than the one it came from).
func appendRawRecord(dst []byte, r *rawRecord, offDelta, tsDelta int64) []byte {
	size := 1 + varintLen(tsDelta) + varintLen(offDelta) + bytesLen(r.key) + bytesLen(r.value) + len(r.headers)
	dst = binary.AppendVarint(dst, int64(size))
	dst = append(dst, byte(r.attrs))
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, offDelta)
	dst = appendBytes(dst, r.key)
	dst = appendBytes(dst, r.value)
	return append(dst, r.headers...)
}

// DecodeRecords validates the whole batch at the start of b (ValidateBatch), decompresses
// its records (at most 256 MiB) and decodes them. Keys, values and header values alias a
// buffer that is b itself for an uncompressed batch. Errors wrap ErrCorruptBatch.
func DecodeRecords(b []byte) (BatchHeader, []Record, error) {
	h, err := ValidateBatch(b)
	if err != nil {
		return h, nil, err
	}
	recs, err := decompress(nil, &h, b)
	if err != nil {
		return h, nil, fmt.Errorf("%w: %w", ErrCorruptBatch, err)
	}
	out := make([]Record, 0, min(int(h.RecordCount), len(recs)/7+1))
	err = eachRawRecord(recs, h.RecordCount, func(r *rawRecord) error {
		rec := Record{Attributes: r.attrs, Offset: h.BaseOffset + int64(r.offDelta), Timestamp: h.BaseTimestamp + r.tsDelta, Key: r.key, Value: r.value}
		if h.LogAppendTime() {
			rec.Timestamp = h.MaxTimestamp
		}
		hb := r.headers
		count, n := binary.Varint(hb)
		hb = hb[n:]
		for range count {
			k, rest, _ := nextBytes(hb, false) // checked by nextRecord
			v, rest, _ := nextBytes(rest, true)
			rec.Headers = append(rec.Headers, Header{Key: string(k), Value: v})
			hb = rest
		}
		out = append(out, rec)
		return nil
	})
	if err != nil {
		return h, nil, fmt.Errorf("%w: %w", ErrCorruptBatch, err)
	}
	return h, out, nil
}

// EncodeBatch encodes records as one v2 batch with the header fields of h:
// BaseOffset, PartitionLeaderEpoch, Attributes (codec, timestamp type, transactional,
// control, delete horizon), ProducerID, ProducerEpoch, BaseSequence, and LastOffsetDelta
// when it is larger than the records need (a compacted batch keeps its last offset, so
// that its producer's last sequence survives). The records' offsets must increase from
// BaseOffset. BaseTimestamp is the first record's timestamp, or h's when the delete-horizon
// bit is set or there is no record; MaxTimestamp is the largest record timestamp, or h's
// with LogAppendTime or no record. The length and the CRC-32C are computed.
func EncodeBatch(h BatchHeader, records []Record) ([]byte, error) {
	var e batchEncoder
	prev := h.BaseOffset - 1
	var recs []byte
	baseTs := h.BaseTimestamp
	if len(records) > 0 && h.Attributes&attrDeleteHorizon == 0 {
		baseTs = records[0].Timestamp
	}
	maxTs := int64(-1)
	for i := range records {
		r := &records[i]
		if r.Offset <= prev || r.Offset-h.BaseOffset > math.MaxInt32 {
			return nil, fmt.Errorf("%w: record offset %d after %d in a batch at %d", ErrCorruptBatch, r.Offset, prev, h.BaseOffset)
		}
		prev = r.Offset
		hb := binary.AppendVarint(nil, int64(len(r.Headers)))
		for _, x := range r.Headers {
			hb = appendBytes(hb, []byte(x.Key))
			hb = appendBytes(hb, x.Value)
		}
		raw := rawRecord{attrs: r.Attributes, key: r.Key, value: r.Value, headers: hb}
		recs = appendRawRecord(recs, &raw, r.Offset-h.BaseOffset, r.Timestamp-baseTs)
		maxTs = max(maxTs, r.Timestamp)
	}
	h.BaseTimestamp = baseTs
	if len(records) > 0 {
		h.LastOffsetDelta = max(h.LastOffsetDelta, int32(prev-h.BaseOffset))
		if !h.LogAppendTime() {
			h.MaxTimestamp = maxTs
		}
	}
	h.RecordCount = int32(len(records))
	return e.encode(nil, &h, recs)
}

// batchEncoder compresses and frames batches, reusing its buffers and compressors. Not
// safe for concurrent use.
type batchEncoder struct {
	comp compressors
	buf  []byte
}

// encode appends to dst the batch with header h (RecordCount, BaseTimestamp, MaxTimestamp
// and LastOffsetDelta already final) and the uncompressed records recs, compressed with
// h's codec.
func (e *batchEncoder) encode(dst []byte, h *BatchHeader, recs []byte) ([]byte, error) {
	payload := recs
	if c := h.Compression(); c != CompressionNone && h.RecordCount > 0 {
		var err error
		if e.buf, err = e.comp.compress(e.buf[:0], c, recs); err != nil {
			return dst, err
		}
		payload = e.buf
	}
	if int64(len(payload))+minBatchLength > math.MaxInt32 {
		return dst, fmt.Errorf("%w: batch of %d bytes", ErrRecordTooLarge, len(payload))
	}
	start := len(dst)
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(h.BaseOffset))
	dst = be.AppendUint32(dst, uint32(minBatchLength+len(payload)))
	dst = be.AppendUint32(dst, uint32(h.PartitionLeaderEpoch))
	dst = append(dst, 2)
	dst = be.AppendUint32(dst, 0) // crc, below
	dst = be.AppendUint16(dst, uint16(h.Attributes))
	dst = be.AppendUint32(dst, uint32(h.LastOffsetDelta))
	dst = be.AppendUint64(dst, uint64(h.BaseTimestamp))
	dst = be.AppendUint64(dst, uint64(h.MaxTimestamp))
	dst = be.AppendUint64(dst, uint64(h.ProducerID))
	dst = be.AppendUint16(dst, uint16(h.ProducerEpoch))
	dst = be.AppendUint32(dst, uint32(h.BaseSequence))
	dst = be.AppendUint32(dst, uint32(h.RecordCount))
	dst = append(dst, payload...)
	b := dst[start:]
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return dst, nil
}

// checkKeys returns ErrNoKey if a record of the whole batch b (header h) has a null key:
// what a compacted log requires of produced batches. Control batches are not checked.
// A compressed batch is decompressed; records are only walked, not copied.
func checkKeys(h *BatchHeader, b []byte, scratch *[]byte) error {
	if h.Control() {
		return nil
	}
	recs, err := decompress((*scratch)[:0], h, b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorruptBatch, err)
	}
	if h.Compression() != CompressionNone {
		*scratch = recs
	}
	err = eachRawRecord(recs, h.RecordCount, func(r *rawRecord) error {
		if r.key == nil {
			return fmt.Errorf("%w: offset delta %d", ErrNoKey, r.offDelta)
		}
		return nil
	})
	if err != nil && !isNoKey(err) {
		return fmt.Errorf("%w: %w", ErrCorruptBatch, err)
	}
	return err
}

func isNoKey(err error) bool { return errors.Is(err, ErrNoKey) }
