package segment

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Field positions of a v2 record batch (Kafka's DefaultRecordBatch). Everything is big-endian.
const (
	offBaseOffset      = 0  // int64
	offBatchLength     = 8  // int32: bytes after this field
	offLeaderEpoch     = 12 // int32: partitionLeaderEpoch
	offMagic           = 16 // int8
	offCRC             = 17 // uint32: CRC-32C of attributes..end
	offAttributes      = 21 // int16
	offLastOffsetDelta = 23 // int32
	offBaseTimestamp   = 27 // int64
	offMaxTimestamp    = 35 // int64
	offProducerID      = 43 // int64
	offProducerEpoch   = 51 // int16
	offBaseSequence    = 53 // int32
	offRecordCount     = 57 // int32
	offRecords         = 61

	// logOverhead is baseOffset+batchLength: the bytes not counted by batchLength.
	logOverhead = 12
	// minBatchLength is the smallest batchLength: the v2 header after the length field.
	minBatchLength = offRecords - logOverhead // 49
	// batchHeaderSize is the full v2 header, baseOffset through recordCount.
	batchHeaderSize = offRecords // 61
)

// BatchHeaderSize is the size of a v2 record batch header, baseOffset through recordCount.
const BatchHeaderSize = batchHeaderSize

// Attribute bits of a v2 batch.
const (
	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

// Compression codecs (attributes bits 0-2).
const (
	CompressionNone   = 0
	CompressionGzip   = 1
	CompressionSnappy = 2
	CompressionLZ4    = 3
	CompressionZstd   = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded header of a v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the batch's size on disk and on the wire: batchLength plus the 12 bytes before it.
func (h *BatchHeader) Size() int64 { return int64(h.BatchLength) + logOverhead }

// LastOffset is the offset of the batch's last record.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset following the batch.
func (h *BatchHeader) NextOffset() int64 { return h.LastOffset() + 1 }

// Compression is the codec: CompressionNone..CompressionZstd.
func (h *BatchHeader) Compression() int { return int(h.Attributes & attrCompressionMask) }

// LogAppendTime reports whether the batch's timestamps are broker log-append times.
func (h *BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h *BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds a control record (a transaction marker).
func (h *BatchHeader) Control() bool { return h.Attributes&attrControl != 0 }

// HasProducer reports whether the batch was written by an idempotent or transactional producer.
func (h *BatchHeader) HasProducer() bool { return h.ProducerID >= 0 }

// LastSequence is the sequence number of the batch's last record; sequences wrap from
// MaxInt32 to 0 (Kafka's DefaultRecordBatch.incrementSequence).
func (h *BatchHeader) LastSequence() int32 {
	return addSequence(h.BaseSequence, h.LastOffsetDelta)
}

func addSequence(seq, delta int32) int32 {
	if seq < 0 || delta < 0 {
		return seq
	}
	if seq > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - seq) - 1
	}
	return seq + delta
}

// ParseBatchHeader decodes the header at the start of b. It checks only what the header
// alone can say: that b holds a whole header, the magic byte is 2 and batchLength is at
// least 49. It checks neither the CRC nor that b holds the whole batch: use ValidateBatch.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	var h BatchHeader
	if len(b) <= offMagic {
		return h, fmt.Errorf("%w: %d bytes, shorter than a batch header", ErrCorruptBatch, len(b))
	}
	if m := int8(b[offMagic]); m != 2 {
		return h, fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, m)
	}
	if len(b) < batchHeaderSize {
		return h, fmt.Errorf("%w: %d bytes, shorter than a batch header", ErrCorruptBatch, len(b))
	}
	h = decodeHeader(b)
	if h.BatchLength < minBatchLength {
		return h, fmt.Errorf("%w: batchLength %d < %d", ErrCorruptBatch, h.BatchLength, minBatchLength)
	}
	return h, nil
}

// decodeHeader decodes b[:61] without any check.
func decodeHeader(b []byte) BatchHeader {
	_ = b[batchHeaderSize-1]
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(be.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		RecordCount:          int32(be.Uint32(b[offRecordCount:])),
	}
}

// ValidateBatch validates the batch at the start of b (b may continue with more batches)
// and returns its header: the header checks of ParseBatchHeader, that b holds the whole
// batch, the CRC-32C, recordCount >= 0, lastOffsetDelta >= 0 and >= recordCount-1 (compaction
// may leave fewer records than offsets), and a known compression codec. Records are not
// decoded. The batch is b[:h.Size()].
func ValidateBatch(b []byte) (BatchHeader, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() > int64(len(b)) {
		return h, fmt.Errorf("%w: batch of %d bytes but only %d present", ErrCorruptBatch, h.Size(), len(b))
	}
	if err := h.checkFields(); err != nil {
		return h, err
	}
	if c := crc32.Checksum(b[offAttributes:h.Size()], castagnoli); c != h.CRC {
		return h, fmt.Errorf("%w: crc %08x, computed %08x", ErrCorruptBatch, h.CRC, c)
	}
	return h, nil
}

// checkFields checks the header fields that need no payload.
func (h *BatchHeader) checkFields() error {
	switch {
	case h.RecordCount < 0:
		return fmt.Errorf("%w: recordCount %d", ErrCorruptBatch, h.RecordCount)
	case h.LastOffsetDelta < 0:
		return fmt.Errorf("%w: lastOffsetDelta %d", ErrCorruptBatch, h.LastOffsetDelta)
	case h.RecordCount > 0 && h.LastOffsetDelta < h.RecordCount-1:
		return fmt.Errorf("%w: lastOffsetDelta %d with %d records", ErrCorruptBatch, h.LastOffsetDelta, h.RecordCount)
	case h.Compression() > CompressionZstd:
		return fmt.Errorf("%w: compression codec %d", ErrCorruptBatch, h.Compression())
	}
	return nil
}

// checkLeader adds the checks Kafka's LogValidator makes on batches from clients: at least
// one record, and exactly one offset per record.
func (h *BatchHeader) checkLeader() error {
	if h.RecordCount <= 0 {
		return fmt.Errorf("%w: recordCount %d in a produced batch", ErrCorruptBatch, h.RecordCount)
	}
	if h.LastOffsetDelta != h.RecordCount-1 {
		return fmt.Errorf("%w: lastOffsetDelta %d with %d records", ErrCorruptBatch, h.LastOffsetDelta, h.RecordCount)
	}
	return nil
}

// setLogAppendTime marks b's batch as LogAppendTime with maxTimestamp ts and recomputes its
// CRC (both fields are covered by it; baseTimestamp stays the client's, as in Kafka).
func setLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	attrs := be.Uint16(b[offAttributes:]) | attrLogAppendTime
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

// setOffsetAndEpoch writes baseOffset and partitionLeaderEpoch, neither covered by the CRC.
func setOffsetAndEpoch(b []byte, base int64, epoch int32) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}
