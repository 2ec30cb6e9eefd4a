package tier

import (
	"context"
	"encoding/json"
	"fmt"
)

// frameSpan is one zstd frame of a "zstd-frames" .log object (REMOTE.md): the uncompressed
// range it yields and the compressed range it occupies.
type frameSpan struct {
	UncompressedOffset int64 `json:"uncompressed_offset"`
	UncompressedLen    int64 `json:"uncompressed_len"`
	CompressedOffset   int64 `json:"compressed_offset"`
	CompressedLen      int64 `json:"compressed_len"`
}

// framesObject is the JSON of a frames object (REMOTE.md), as the reader decodes it.
type framesObject struct {
	V                int         `json:"v"`
	FrameSize        int64       `json:"frame_size"`
	UncompressedSize int64       `json:"uncompressed_size"`
	CompressedSize   int64       `json:"compressed_size"`
	Frames           []frameSpan `json:"frames"`
}

// loadFrames reads and checks the frame index of seg, whose log object is key. The frames
// become the reader's chunks: each is fetched with one ranged GET and cached decompressed.
func (r *Reader) loadFrames(ctx context.Context, seg RemoteSegment, key string) ([]frameSpan, error) {
	fkey := r.key(seg, KindFrames)
	b, err := r.readWhole(ctx, fkey)
	if err != nil {
		return nil, err
	}
	logSize, err := r.stat(ctx, key)
	if err != nil {
		return nil, err
	}
	frames, err := parseFrames(b, seg.Size, logSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRemoteCorrupt, fkey, err)
	}
	return frames, nil
}

// parseFrames decodes a frames object and checks REMOTE.md's invariants against the
// uncompressed size (RemoteSegment.Size) and the compressed log object's size. It never
// returns nil without an error (an empty .log has an empty, non-nil slice), so a nil
// remoteObject.frames always means "no frames".
func parseFrames(b []byte, size, compressedSize int64) ([]frameSpan, error) {
	var fo framesObject
	if err := json.Unmarshal(b, &fo); err != nil {
		return nil, fmt.Errorf("frame index: %w", err)
	}
	if fo.V != 1 {
		return nil, fmt.Errorf("frame index version %d", fo.V)
	}
	if fo.UncompressedSize != size || fo.CompressedSize != compressedSize {
		return nil, fmt.Errorf("frame index sizes %d/%d, want %d/%d (uncompressed/compressed)", fo.UncompressedSize, fo.CompressedSize, size, compressedSize)
	}
	var u, c int64
	for i, f := range fo.Frames {
		switch {
		case f.UncompressedOffset != u || f.CompressedOffset != c:
			return nil, fmt.Errorf("frame %d at %d/%d, want %d/%d", i, f.UncompressedOffset, f.CompressedOffset, u, c)
		case f.UncompressedLen <= 0 || f.CompressedLen <= 0:
			return nil, fmt.Errorf("frame %d has a zero length", i)
		case f.UncompressedLen > maxChunkSize || f.CompressedLen > maxChunkSize:
			return nil, fmt.Errorf("frame %d: %d/%d bytes, more than %d", i, f.UncompressedLen, f.CompressedLen, maxChunkSize)
		}
		u += f.UncompressedLen
		c += f.CompressedLen
	}
	if u != size || c != compressedSize {
		return nil, fmt.Errorf("frames end at %d/%d, want %d/%d", u, c, size, compressedSize)
	}
	if fo.Frames == nil {
		fo.Frames = []frameSpan{}
	}
	return fo.Frames, nil
}
