package tier

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// The contract between the uploader, the remote reader and the remote
// metadata kept in etcd (meta's tier/<topic-id>/<partition>/ keys). REMOTE.md
// documents it; change them together.

// SegmentState is a remote segment's place in its life cycle (KIP-405).
type SegmentState string

const (
	CopyStarted    SegmentState = "COPY_STARTED"
	CopyFinished   SegmentState = "COPY_FINISHED"
	DeleteStarted  SegmentState = "DELETE_STARTED"
	DeleteFinished SegmentState = "DELETE_FINISHED"
)

// EpochEntry is one leader epoch and the offset it starts at.
type EpochEntry struct {
	Epoch       int32 `json:"epoch"`
	StartOffset int64 `json:"start_offset"`
}

// RemoteSegment describes one upload of a sealed segment. Its identity is
// (TopicID, Partition, BaseOffset, UploadID): a retried or repeated upload of
// the same segment gets a new UploadID, so objects of a half-finished upload
// are never mistaken for a finished one.
type RemoteSegment struct {
	V           int      `json:"v"`
	TopicID     [16]byte `json:"topic_id"`
	Partition   int32    `json:"partition"`
	UploadID    string   `json:"upload_id"` // 22 chars of URL-safe base64, random
	BaseOffset  int64    `json:"base_offset"`
	EndOffset   int64    `json:"end_offset"`   // last offset in the segment (inclusive)
	LeaderEpoch int32    `json:"leader_epoch"` // of the leader that uploaded it (fencing)
	// Epochs is the leader-epoch slice covering the segment, for
	// OffsetForLeaderEpoch answers from remote data.
	Epochs       []EpochEntry `json:"epochs"`
	MaxTimestamp int64        `json:"max_timestamp"`
	Size         int64        `json:"size"` // bytes of the .log object before compression
	// Compression is "none", or "zstd-frames": the .log object is a sequence
	// of independently decompressible zstd frames with a frame index. It is what
	// this upload used (UploaderConfig.Compression "auto" picks per segment),
	// never "auto".
	Compression string `json:"compression"`
	// TxnIndex says that the upload has a txnindex object: the segment's aborted-transaction
	// index, which read_committed reads of the tier need. False (and absent from the JSON)
	// when the segment had no aborted transaction, and in uploads made before the object
	// existed: both mean "no aborted transaction ends in this segment" (KIP-1058's
	// txnIdxEmpty, inverted, so that old records read right), and readers then fetch nothing.
	TxnIndex bool         `json:"txn_index,omitempty"`
	State    SegmentState `json:"state"`
	// DeletedAtMs is when the upload's objects were deleted (Unix milliseconds, the
	// deleting leader's clock), set only in DELETE_FINISHED. A DELETE_FINISHED record of
	// an upload that never finished is kept until DeleteGrace after it, when its objects
	// are deleted once more (a deposed uploader's late Put) and the record is removed.
	// 0 in every other state, and in records written before the field existed.
	DeletedAtMs int64 `json:"deleted_at_ms,omitempty"`
}

// Object kinds uploaded for a segment.
const (
	KindLog       = "log"
	KindIndex     = "index"
	KindTimeIndex = "timeindex"
	KindEpochs    = "epochs"
	KindSnapshot  = "snapshot"
	KindFrames    = "frames"   // frame index of a zstd-frames .log
	KindTxnIndex  = "txnindex" // aborted-transaction index, iff RemoteSegment.TxnIndex
)

// ObjectKey names one object of a remote segment:
//
//	<hh>/<topic-id>/<partition>/<base-offset %020d>-<leader-epoch>-<upload-id>.<kind>
//
// hh is two hex digits of FNV-1a over "<topic-id>/<partition>/<base-offset>",
// spreading a partition's objects over S3 key ranges; the rest keeps every
// object of one upload together and sorted by offset. The topic id is in
// Kafka's text form (22 characters of URL-safe base64).
func ObjectKey(topicID string, partition int32, baseOffset int64, leaderEpoch int32, uploadID, kind string) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d/%d", topicID, partition, baseOffset)
	return fmt.Sprintf("%02x/%s/%d/%020d-%d-%s.%s", h.Sum32()&0xff, topicID, partition, baseOffset, leaderEpoch, uploadID, kind)
}

// ManifestKey names a partition's manifest: the COPY_FINISHED segments, as
// JSON, rewritten after every change so a cluster can be restored from the
// bucket alone.
func ManifestKey(topicID string, partition int32) string {
	return fmt.Sprintf("manifests/%s/%d/manifest.json", topicID, partition)
}

// ParseObjectKey is the inverse of ObjectKey.
func ParseObjectKey(key string) (topicID string, partition int32, baseOffset int64, leaderEpoch int32, uploadID, kind string, err error) {
	parts := strings.Split(key, "/")
	if len(parts) != 4 || len(parts[0]) != 2 {
		return "", 0, 0, 0, "", "", fmt.Errorf("tier: %q is not a segment object key", key)
	}
	topicID = parts[1]
	if _, err := fmt.Sscanf(parts[2], "%d", &partition); err != nil {
		return "", 0, 0, 0, "", "", fmt.Errorf("tier: %q: bad partition: %w", key, err)
	}
	name, kind, ok := strings.Cut(parts[3], ".")
	fields := strings.SplitN(name, "-", 3)
	if !ok || len(fields) != 3 {
		return "", 0, 0, 0, "", "", fmt.Errorf("tier: %q: bad object name", key)
	}
	if _, err := fmt.Sscanf(fields[0]+" "+fields[1], "%d %d", &baseOffset, &leaderEpoch); err != nil {
		return "", 0, 0, 0, "", "", fmt.Errorf("tier: %q: bad offset or epoch: %w", key, err)
	}
	return topicID, partition, baseOffset, leaderEpoch, fields[2], kind, nil
}
