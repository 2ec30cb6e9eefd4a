package tier

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// ErrCorruptManifest is wrapped by ParseManifest's errors.
var ErrCorruptManifest = errors.New("tier: corrupt manifest")

// Manifest is a partition's COPY_FINISHED segments, mirrored to the bucket under
// ManifestKey so that a cluster can be restored from the bucket alone (REMOTE.md).
type Manifest struct {
	V           int             `json:"v"`
	TopicID     string          `json:"topic_id"` // text form
	Partition   int32           `json:"partition"`
	LeaderEpoch int32           `json:"leader_epoch"` // of the leader that wrote it
	Segments    []RemoteSegment `json:"segments"`     // COPY_FINISHED, sorted by base offset
}

// TopicIDText is Kafka's text form of a topic id: 22 characters of URL-safe base64.
func TopicIDText(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// SegmentObjectKey is ObjectKey for one object of seg.
func SegmentObjectKey(seg RemoteSegment, kind string) string {
	return ObjectKey(TopicIDText(seg.TopicID), seg.Partition, seg.BaseOffset, seg.LeaderEpoch, seg.UploadID, kind)
}

// segmentKinds are the object kinds an upload may have, in upload order (log last).
// Deletion goes through all of them: an upload may have put any subset.
var segmentKinds = []string{KindIndex, KindTimeIndex, KindEpochs, KindSnapshot, KindTxnIndex, KindFrames, KindLog}

// EncodeManifest returns the JSON of m.
func EncodeManifest(m *Manifest) []byte {
	b, err := json.Marshal(m)
	if err != nil { // plain structs: cannot fail
		panic(fmt.Sprintf("tier: encoding manifest: %v", err))
	}
	return b
}

// ParseManifest decodes a manifest and checks it: version 1, every segment COPY_FINISHED
// (no deleted_at_ms), of the manifest's topic and partition, with a compression readers
// know ("none" or "zstd-frames"), sorted by base offset, with base <= end. It never panics; an accepted manifest re-encodes to one that parses
// identically.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptManifest, err)
	}
	if m.V != 1 {
		return nil, fmt.Errorf("%w: version %d", ErrCorruptManifest, m.V)
	}
	for i, s := range m.Segments {
		switch {
		case s.State != CopyFinished || s.DeletedAtMs != 0:
			return nil, fmt.Errorf("%w: segment %d is %s (deleted at %d)", ErrCorruptManifest, i, s.State, s.DeletedAtMs)
		case s.Compression != CompressionNone && s.Compression != CompressionZstdFrames:
			return nil, fmt.Errorf("%w: segment %d has compression %q", ErrCorruptManifest, i, s.Compression)
		case TopicIDText(s.TopicID) != m.TopicID || s.Partition != m.Partition:
			return nil, fmt.Errorf("%w: segment %d belongs to %s/%d", ErrCorruptManifest, i, TopicIDText(s.TopicID), s.Partition)
		case s.BaseOffset < 0 || s.EndOffset < s.BaseOffset:
			return nil, fmt.Errorf("%w: segment %d covers [%d, %d]", ErrCorruptManifest, i, s.BaseOffset, s.EndOffset)
		case i > 0 && s.BaseOffset < m.Segments[i-1].BaseOffset:
			return nil, fmt.Errorf("%w: segment %d out of order", ErrCorruptManifest, i)
		}
	}
	return &m, nil
}

// ReadManifest reads and parses the manifest of a partition; a missing manifest is an
// error that store.IsNotExist recognises.
func ReadManifest(ctx context.Context, store ObjectStore, topicID string, partition int32) (*Manifest, error) {
	key := ManifestKey(topicID, partition)
	size, err := store.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if err := store.ReadAt(ctx, key, b, 0); err != nil {
		return nil, err
	}
	return ParseManifest(b)
}

// writeManifest rewrites the manifest from the COPY_FINISHED segments of segs.
func writeManifest(ctx context.Context, store ObjectStore, topicID [16]byte, partition, epoch int32, segs []StoredSegment) error {
	m := &Manifest{V: 1, TopicID: TopicIDText(topicID), Partition: partition, LeaderEpoch: epoch, Segments: []RemoteSegment{}}
	for _, s := range segs {
		if s.State == CopyFinished {
			m.Segments = append(m.Segments, s.RemoteSegment)
		}
	}
	slices.SortStableFunc(m.Segments, func(a, b RemoteSegment) int {
		switch {
		case a.BaseOffset < b.BaseOffset:
			return -1
		case a.BaseOffset > b.BaseOffset:
			return 1
		}
		return 0
	})
	b := EncodeManifest(m)
	if err := store.Put(ctx, ManifestKey(m.TopicID, partition), bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("tier: writing manifest of %s/%d: %w", m.TopicID, partition, err)
	}
	return nil
}
