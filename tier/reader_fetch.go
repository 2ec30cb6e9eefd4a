package tier

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// get reads len(p) bytes at off of key with one ranged GET, holding a MaxParallel token.
// A short object is ErrRemoteCorrupt; a missing one wraps ErrNotExist.
func (r *Reader) get(ctx context.Context, key string, p []byte, off int64, passed func() bool) error {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.sem }()
	if passed != nil && passed() {
		return errPassed
	}
	r.m.fetchRequests.Inc()
	err := r.store.ReadAt(ctx, key, p, off)
	if err != nil {
		r.m.fetchErrors.Inc()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: %s: shorter than %d bytes: %w", ErrRemoteCorrupt, key, off+int64(len(p)), err)
		}
		return fmt.Errorf("tier: remote read %s [%d, %d): %w", key, off, off+int64(len(p)), err)
	}
	r.m.fetchBytes.Add(float64(len(p)))
	return nil
}

// stat returns the size of key, holding a MaxParallel token.
func (r *Reader) stat(ctx context.Context, key string) (int64, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-r.sem }()
	r.m.fetchRequests.Inc()
	n, err := r.store.Stat(ctx, key)
	if err != nil {
		r.m.fetchErrors.Inc()
		return 0, fmt.Errorf("tier: remote stat %s: %w", key, err)
	}
	return n, nil
}

// fetchChunk GETs chunk i of obj from the store (and decompresses a zstd frame).
// With passed, the GET is not made (errPassed) if passed() holds once it may start.
func (r *Reader) fetchChunk(ctx context.Context, obj *remoteObject, i int, passed func() bool) ([]byte, error) {
	if obj.frames == nil {
		start, end := obj.bounds(i)
		b := make([]byte, end-start)
		if err := r.get(ctx, obj.key, b, start, passed); err != nil {
			return nil, err
		}
		return b, nil
	}
	f := obj.frames[i]
	src := make([]byte, f.CompressedLen)
	if err := r.get(ctx, obj.key, src, f.CompressedOffset, passed); err != nil {
		return nil, err
	}
	b, err := r.zstd.DecodeAll(src, make([]byte, 0, f.UncompressedLen))
	if err != nil {
		return nil, obj.corrupt(f.UncompressedOffset, "zstd frame %d: %w", i, err)
	}
	if int64(len(b)) != f.UncompressedLen {
		return nil, obj.corrupt(f.UncompressedOffset, "zstd frame %d decompressed to %d bytes, want %d", i, len(b), f.UncompressedLen)
	}
	return b, nil
}
