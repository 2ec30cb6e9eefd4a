package tier

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/klauspost/compress/zstd"

	"github.com/sedimentio/sediment/segment"
)

// Compression values of RemoteSegment.Compression and UploaderConfig.Compression.
const (
	CompressionNone       = "none"
	CompressionZstdFrames = "zstd-frames"
	// CompressionAuto is a setting of UploaderConfig.Compression only: each segment is
	// uploaded as CompressionZstdFrames when most of its bytes are in uncompressed record
	// batches, else as CompressionNone (see autoCompression). The RemoteSegment records
	// the choice.
	CompressionAuto = "auto"
)

// DefaultFrameSize is the input size after which a zstd frame ends (at the next batch
// boundary) when Compression is CompressionZstdFrames.
const DefaultFrameSize = 1 << 20

// ErrCorruptFrameIndex is wrapped by ParseFrameIndex's errors.
var ErrCorruptFrameIndex = errors.New("tier: corrupt frame index")

// Frame locates one independent zstd frame of a "zstd-frames" .log object (REMOTE.md).
type Frame struct {
	UncompressedOffset int64 `json:"uncompressed_offset"`
	UncompressedLen    int64 `json:"uncompressed_len"`
	CompressedOffset   int64 `json:"compressed_offset"`
	CompressedLen      int64 `json:"compressed_len"`
}

// FrameIndex is the KindFrames object: the frames of a "zstd-frames" .log object, in order.
type FrameIndex struct {
	V                int     `json:"v"`
	FrameSize        int64   `json:"frame_size"` // informational
	UncompressedSize int64   `json:"uncompressed_size"`
	CompressedSize   int64   `json:"compressed_size"`
	Frames           []Frame `json:"frames"`
}

// Encode returns the JSON form of the index.
func (x *FrameIndex) Encode() []byte {
	b, err := json.Marshal(x)
	if err != nil { // plain structs: cannot fail
		panic(fmt.Sprintf("tier: encoding frame index: %v", err))
	}
	return b
}

// ParseFrameIndex decodes a KindFrames object and checks every invariant of REMOTE.md:
// version 1, contiguous non-empty frames starting at 0/0 and ending at both sizes.
// It never panics; an index it accepts re-encodes to an index it accepts identically.
func ParseFrameIndex(b []byte) (*FrameIndex, error) {
	var x FrameIndex
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptFrameIndex, err)
	}
	if x.V != 1 {
		return nil, fmt.Errorf("%w: version %d", ErrCorruptFrameIndex, x.V)
	}
	var u, c int64
	for i, f := range x.Frames {
		if f.UncompressedOffset != u || f.CompressedOffset != c {
			return nil, fmt.Errorf("%w: frame %d at %d/%d, want %d/%d", ErrCorruptFrameIndex, i, f.UncompressedOffset, f.CompressedOffset, u, c)
		}
		if f.UncompressedLen <= 0 || f.CompressedLen <= 0 || u > (1<<62)-f.UncompressedLen || c > (1<<62)-f.CompressedLen {
			return nil, fmt.Errorf("%w: frame %d has lengths %d/%d", ErrCorruptFrameIndex, i, f.UncompressedLen, f.CompressedLen)
		}
		u += f.UncompressedLen
		c += f.CompressedLen
	}
	if u != x.UncompressedSize || c != x.CompressedSize {
		return nil, fmt.Errorf("%w: frames end at %d/%d, sizes are %d/%d", ErrCorruptFrameIndex, u, c, x.UncompressedSize, x.CompressedSize)
	}
	return &x, nil
}

// Find returns the half-open range [first, last) of indexes of the frames that intersect
// the uncompressed byte range [a, b). It is empty when the range is empty or outside the
// data.
func (x *FrameIndex) Find(a, b int64) (first, last int) {
	if a < 0 {
		a = 0
	}
	if b > x.UncompressedSize {
		b = x.UncompressedSize
	}
	if a >= b {
		return 0, 0
	}
	first = sort.Search(len(x.Frames), func(i int) bool {
		f := x.Frames[i]
		return f.UncompressedOffset+f.UncompressedLen > a
	})
	last = sort.Search(len(x.Frames), func(i int) bool { return x.Frames[i].UncompressedOffset >= b })
	return first, last
}

// compressFrames writes the .log data of size bytes from src to dst as independent zstd
// frames of about frameSize bytes of input, cut at record-batch boundaries, and returns
// the frame index. dst receives exactly FrameIndex.CompressedSize bytes.
func compressFrames(dst io.Writer, src io.ReaderAt, size int64, frameSize int) (*FrameIndex, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	x := &FrameIndex{V: 1, FrameSize: int64(frameSize), UncompressedSize: size}
	var in, out []byte
	var pos, cpos int64
	for pos < size {
		n, err := frameCut(src, pos, size, int64(frameSize))
		if err != nil {
			return nil, err
		}
		if int64(cap(in)) < n {
			in = make([]byte, n)
		}
		in = in[:n]
		if _, err := src.ReadAt(in, pos); err != nil && !(errors.Is(err, io.EOF) && n > 0) {
			return nil, fmt.Errorf("tier: reading segment at %d: %w", pos, err)
		}
		out = enc.EncodeAll(in, out[:0])
		if _, err := dst.Write(out); err != nil {
			return nil, err
		}
		x.Frames = append(x.Frames, Frame{UncompressedOffset: pos, UncompressedLen: n, CompressedOffset: cpos, CompressedLen: int64(len(out))})
		pos += n
		cpos += int64(len(out))
	}
	x.CompressedSize = cpos
	return x, nil
}

// frameCut returns the length of the piece starting at pos: whole batches until at least
// frameSize bytes, or the rest of the file. A header that does not parse (which a sealed,
// validated segment never has) ends the piece at frameSize, so cutting never fails on
// content: readers do not depend on alignment.
func frameCut(src io.ReaderAt, pos, size, frameSize int64) (int64, error) {
	var hdr [12]byte
	p := pos
	for p-pos < frameSize {
		if size-p < 12 {
			return size - pos, nil
		}
		if _, err := src.ReadAt(hdr[:], p); err != nil {
			return 0, fmt.Errorf("tier: reading batch header at %d: %w", p, err)
		}
		l := int64(int32(binary.BigEndian.Uint32(hdr[8:12])))
		if l <= 0 || p+12+l > size {
			return min(frameSize, size-pos), nil
		}
		p += 12 + l
	}
	return p - pos, nil
}

// compressToTemp compresses the .log at path into a temporary file in dir, returning the
// open file (positioned anywhere; read it with ReadAt), its frame index, and a cleanup.
func compressToTemp(dir string, log *os.File, size int64, frameSize int) (*os.File, *FrameIndex, func(), error) {
	f, err := os.CreateTemp(dir, "sediment-upload-*.zst")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tier: temporary file for compression: %w", err)
	}
	cleanup := func() {
		f.Close()
		os.Remove(f.Name())
	}
	x, err := compressFrames(f, log, size, frameSize)
	if err != nil {
		cleanup()
		return nil, nil, nil, fmt.Errorf("tier: compressing %s: %w", log.Name(), err)
	}
	return f, x, cleanup, nil
}

// autoCompression decides CompressionAuto for the .log data of size bytes in src: it walks
// the record-batch headers and returns CompressionZstdFrames when at least half of the
// bytes are in batches whose codec (attributes bits 0-2) is none, else CompressionNone:
// batches compressed by the producer gain next to nothing from a second pass. It stops as
// soon as either side holds more than half of the bytes. A header that does not parse
// (which a sealed, validated segment never has) ends the walk; the bytes seen decide.
func autoCompression(src io.ReaderAt, size int64) (string, error) {
	const window = 64 << 10 // bytes read at once: many small batches cost one read
	buf := make([]byte, min(window, max(size, 0)))
	var bufStart, bufLen int64
	var plain, packed int64
	for pos := int64(0); size-pos >= segment.BatchHeaderSize; {
		if pos < bufStart || pos+segment.BatchHeaderSize > bufStart+bufLen {
			n := min(int64(len(buf)), size-pos)
			if got, err := src.ReadAt(buf[:n], pos); err != nil && !(errors.Is(err, io.EOF) && int64(got) == n) {
				return "", fmt.Errorf("tier: reading batch headers at %d: %w", pos, err)
			}
			bufStart, bufLen = pos, n
		}
		h, err := segment.ParseBatchHeader(buf[pos-bufStart : pos-bufStart+segment.BatchHeaderSize])
		if err != nil {
			break
		}
		n := min(h.Size(), size-pos) // a torn tail counts what is there
		if h.Compression() == segment.CompressionNone {
			plain += n
		} else {
			packed += n
		}
		switch {
		case 2*plain >= size:
			return compressible(src, size)
		case 2*packed > size:
			return CompressionNone, nil
		}
		pos += h.Size()
	}
	if plain > 0 && plain >= packed {
		return compressible(src, size)
	}
	return CompressionNone, nil
}

// compressible decides between zstd frames and none for a segment of uncompressed batches
// by compressing samples (its start, middle and end) at the fastest level: values that are
// already compressed or random (encrypted payloads, say) would only cost CPU on every
// upload and read. It answers CompressionZstdFrames when the samples shrink by 10% or more.
func compressible(src io.ReaderAt, size int64) (string, error) {
	const sample = 128 << 10
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return "", fmt.Errorf("tier: zstd encoder: %w", err)
	}
	defer enc.Close()
	buf := make([]byte, min(sample, size))
	var in, out int64
	for _, at := range []int64{0, size/2 - sample/2, size - sample} {
		at = max(0, min(at, size-int64(len(buf))))
		if got, err := src.ReadAt(buf, at); err != nil && !(errors.Is(err, io.EOF) && got == len(buf)) {
			return "", fmt.Errorf("tier: reading a compression sample at %d: %w", at, err)
		}
		in += int64(len(buf))
		out += int64(len(enc.EncodeAll(buf, nil)))
		if size <= sample {
			break
		}
	}
	if out*10 <= in*9 {
		return CompressionZstdFrames, nil
	}
	return CompressionNone, nil
}
