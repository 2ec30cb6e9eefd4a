package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression for batches the cleaner rewrites: a batch that loses records is written back
// with the codec it had, as Kafka does. Snappy is framed the way the Java broker writes it
// (snappy-java's xerial stream), which every client reads.

// compressors holds one writer per codec, reused across batches. Not safe for concurrent
// use.
type compressors struct {
	gz  *gzip.Writer
	lz  *lz4.Writer
	buf bytes.Buffer
}

// zstdEncoder is shared: EncodeAll is safe for concurrent use.
var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
})

// xerialBlock is the uncompressed size of each chunk of a xerial snappy stream
// (snappy-java's default).
const xerialBlock = 32 << 10

// compress appends recs compressed with codec to dst.
func (c *compressors) compress(dst []byte, codec int, recs []byte) ([]byte, error) {
	switch codec {
	case CompressionGzip:
		if c.gz == nil {
			c.gz = gzip.NewWriter(nil)
		}
		return c.stream(dst, c.gz, recs)
	case CompressionSnappy:
		dst = append(dst, xerialHeader...)
		dst = binary.BigEndian.AppendUint32(dst, 1) // version
		dst = binary.BigEndian.AppendUint32(dst, 1) // compatible version
		for p := recs; len(p) > 0; {
			chunk := p[:min(len(p), xerialBlock)]
			p = p[len(chunk):]
			n := snappy.MaxEncodedLen(len(chunk))
			at := len(dst)
			dst = slices.Grow(dst, 4+n)[:at+4+n]
			enc := snappy.Encode(dst[at+4:], chunk)
			binary.BigEndian.PutUint32(dst[at:], uint32(len(enc)))
			dst = dst[:at+4+len(enc)]
		}
		return dst, nil
	case CompressionLZ4:
		if c.lz == nil {
			c.lz = lz4.NewWriter(nil)
		}
		return c.stream(dst, c.lz, recs)
	case CompressionZstd:
		e, err := zstdEncoder()
		if err != nil {
			return dst, err
		}
		return e.EncodeAll(recs, dst), nil
	}
	return dst, fmt.Errorf("%w: codec %d", ErrCorruptBatch, codec)
}

// resetWriter is a stream compressor that can start over on another writer.
type resetWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// stream appends recs compressed by w to dst.
func (c *compressors) stream(dst []byte, w resetWriter, recs []byte) ([]byte, error) {
	c.buf.Reset()
	w.Reset(&c.buf)
	if _, err := w.Write(recs); err != nil {
		return dst, err
	}
	if err := w.Close(); err != nil {
		return dst, err
	}
	return append(dst, c.buf.Bytes()...), nil
}
