package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Decompression, for record-level decoding: ListOffsets (OffsetForTimestamp, MaxTimestamp)
// must name a record, not a batch; compaction and the key check of compacted topics read
// keys (record.go). The produce and fetch paths of other topics never decode records.

// maxDecompressed bounds the records of one batch after decompression, against
// decompression bombs.
const maxDecompressed = 256 << 20

var errRecords = errors.New("segment: undecodable records")

// recordsOf returns the records section of a whole batch b, decompressed.
func recordsOf(h *BatchHeader, b []byte) ([]byte, error) { return decompress(nil, h, b) }

// decompress returns the records section of the whole batch b, decompressed into dst's
// storage when it needs decompressing (the raw section of b itself otherwise).
func decompress(dst []byte, h *BatchHeader, b []byte) ([]byte, error) {
	raw := b[batchHeaderSize:h.Size()]
	switch h.Compression() {
	case CompressionNone:
		return raw, nil
	case CompressionGzip:
		r, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if r == nil {
			r, err = gzip.NewReader(bytes.NewReader(raw))
		} else {
			err = r.Reset(bytes.NewReader(raw))
		}
		if err != nil {
			return nil, err
		}
		out, err := readBounded(dst, r)
		gzipReaders.Put(r)
		return out, err
	case CompressionSnappy:
		return unsnappy(dst, raw)
	case CompressionLZ4:
		r := lz4.NewReader(bytes.NewReader(raw))
		out, err := readBounded(dst, r)
		r.Reset(nil) // gives its block buffer (up to 4 MiB) back to lz4's pool
		return out, err
	case CompressionZstd:
		d, err := zstdDecoder()
		if err != nil {
			return nil, err
		}
		return d.DecodeAll(raw, dst[:0])
	}
	return nil, fmt.Errorf("%w: codec %d", errRecords, h.Compression())
}

func readBounded(dst []byte, r io.Reader) ([]byte, error) {
	b := bytes.NewBuffer(dst[:0])
	if _, err := b.ReadFrom(io.LimitReader(r, maxDecompressed+1)); err != nil {
		return nil, err
	}
	if b.Len() > maxDecompressed {
		return nil, fmt.Errorf("%w: more than %d bytes decompressed", errRecords, maxDecompressed)
	}
	return b.Bytes(), nil
}

// gzipReaders reuses gzip readers (and their inflate state) across batches.
var gzipReaders sync.Pool

// zstdDecoder is shared: DecodeAll is safe for concurrent use.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxDecompressed))
})

// xerialHeader starts snappy data framed by the Java client's snappy-java (xerial) stream:
// the magic, then version and compatible-version int32s, then chunks of
// (int32 length, snappy block). Other clients send one raw snappy block.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

func unsnappy(dst, raw []byte) ([]byte, error) {
	if !bytes.HasPrefix(raw, xerialHeader) {
		return snappyBlock(dst, raw)
	}
	p := raw[len(xerialHeader):]
	if len(p) < 8 {
		return nil, fmt.Errorf("%w: short xerial header", errRecords)
	}
	p = p[8:]
	out := dst[:0]
	for len(p) > 0 {
		if len(p) < 4 {
			return nil, fmt.Errorf("%w: short xerial chunk", errRecords)
		}
		n := binary.BigEndian.Uint32(p)
		p = p[4:]
		if uint64(n) > uint64(len(p)) {
			return nil, fmt.Errorf("%w: xerial chunk of %d bytes", errRecords, n)
		}
		dl, err := snappy.DecodedLen(p[:n])
		if err != nil {
			return nil, err
		}
		if len(out)+dl > maxDecompressed {
			return nil, fmt.Errorf("%w: more than %d bytes decompressed", errRecords, maxDecompressed)
		}
		out = slices.Grow(out, dl)
		d, err := snappy.Decode(out[len(out):len(out)+dl], p[:n])
		if err != nil {
			return nil, err
		}
		out = out[:len(out)+len(d)]
		p = p[n:]
	}
	return out, nil
}

func snappyBlock(dst, b []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(b)
	if err != nil {
		return nil, err
	}
	if n > maxDecompressed {
		return nil, fmt.Errorf("%w: snappy block of %d bytes", errRecords, n)
	}
	return snappy.Decode(dst[:cap(dst)], b)
}

// forEachRecord calls fn with each record's offset delta and timestamp delta, in order,
// until fn returns false. Only the leading fields of each record are decoded; the rest is
// skipped by the record's length.
func forEachRecord(recs []byte, count int32, fn func(offsetDelta int32, tsDelta int64) bool) error {
	p := recs
	for range count {
		length, n := binary.Varint(p)
		if n <= 0 || length < 0 || length > int64(len(p)-n) {
			return fmt.Errorf("%w: record length", errRecords)
		}
		body := p[n : n+int(length)]
		p = p[n+int(length):]
		if len(body) < 1 {
			return fmt.Errorf("%w: empty record", errRecords)
		}
		body = body[1:] // attributes
		tsDelta, n := binary.Varint(body)
		if n <= 0 {
			return fmt.Errorf("%w: timestamp delta", errRecords)
		}
		offDelta, m := binary.Varint(body[n:])
		if m <= 0 || offDelta < 0 || offDelta > 1<<31-1 {
			return fmt.Errorf("%w: offset delta", errRecords)
		}
		if !fn(int32(offDelta), tsDelta) {
			return nil
		}
	}
	return nil
}
