package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/sedimentio/sediment/segment/vfs"
)

// FlushPolicy says when appended data is made durable.
type FlushPolicy int

const (
	// FlushGroupCommit makes WaitDurable fdatasync before it returns; one fdatasync covers
	// every append that arrived before it started (group commit). The default.
	FlushGroupCommit FlushPolicy = iota
	// FlushOS is Kafka's policy: leave flushing to the OS (and to replication). WaitDurable
	// returns at once. Segments are still synced when they are rolled and on Close.
	FlushOS
)

func (p FlushPolicy) String() string {
	switch p {
	case FlushGroupCommit:
		return "group-commit"
	case FlushOS:
		return "os"
	}
	return fmt.Sprintf("FlushPolicy(%d)", int(p))
}

// Config is one partition log's configuration. Field comments name the Kafka topic
// config each field implements.
type Config struct {
	SegmentBytes       int64         // segment.bytes: roll when the active segment would exceed it
	SegmentMs          time.Duration // segment.ms: roll a non-empty segment this long after its first append (or after Open)
	SegmentIndexBytes  int           // segment.index.bytes: roll when an index would exceed it
	IndexIntervalBytes int           // index.interval.bytes: bytes of log between offset/time index entries
	RetentionMs        time.Duration // retention.ms; negative = unlimited
	RetentionBytes     int64         // retention.bytes; negative = unlimited
	MaxMessageBytes    int           // max.message.bytes: largest batch accepted by AppendLeader
	LogAppendTime      bool          // message.timestamp.type=LogAppendTime
	Flush              FlushPolicy

	// Compaction (clean.go). The cleaner itself runs only when a caller calls Clean.
	CleanupPolicy          CleanupPolicy // cleanup.policy
	MinCleanableDirtyRatio float64       // min.cleanable.dirty.ratio: dirty bytes / all cleanable bytes that make a log worth cleaning
	MinCompactionLag       time.Duration // min.compaction.lag.ms: a record stays uncompacted at least this long
	MaxCompactionLag       time.Duration // max.compaction.lag.ms: a dirty segment older than this is cleaned whatever the ratio; MaxCompactionLagNone: never
	DeleteRetention        time.Duration // delete.retention.ms: how long a tombstone is kept after the clean that first saw it
}

// CleanupPolicy is cleanup.policy: a set of CleanupDelete and CleanupCompact.
type CleanupPolicy uint8

const (
	// CleanupDelete removes old segments by retention.ms and retention.bytes.
	CleanupDelete CleanupPolicy = 1 << iota
	// CleanupCompact keeps the last record of each key (Clean); appended records must
	// have keys (ErrNoKey).
	CleanupCompact
)

// Compact reports whether the policy includes compaction.
func (p CleanupPolicy) Compact() bool { return p&CleanupCompact != 0 }

// Delete reports whether the policy includes deletion by retention.
func (p CleanupPolicy) Delete() bool { return p&CleanupDelete != 0 }

// String is the policy as Kafka spells cleanup.policy.
func (p CleanupPolicy) String() string {
	switch p {
	case CleanupDelete:
		return "delete"
	case CleanupCompact:
		return "compact"
	case CleanupCompact | CleanupDelete:
		return "compact,delete"
	}
	return fmt.Sprintf("CleanupPolicy(%d)", uint8(p))
}

// ParseCleanupPolicy parses cleanup.policy as Kafka spells it: delete, compact, or both
// comma-separated in either order.
func ParseCleanupPolicy(v string) (CleanupPolicy, error) {
	var p CleanupPolicy
	for _, part := range strings.Split(v, ",") {
		switch strings.TrimSpace(part) {
		case "delete":
			p |= CleanupDelete
		case "compact":
			p |= CleanupCompact
		default:
			return CleanupDelete, fmt.Errorf("cleanup.policy %q must be delete, compact or compact,delete", v)
		}
	}
	return p, nil
}

// MaxCompactionLagNone is max.compaction.lag.ms's default, Long.MAX_VALUE: no maximum.
const MaxCompactionLagNone = time.Duration(math.MaxInt64)

// DefaultConfig returns Kafka's defaults with group-commit durability.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		SegmentMs:          7 * 24 * time.Hour,
		SegmentIndexBytes:  10 << 20,
		IndexIntervalBytes: 4096,
		RetentionMs:        7 * 24 * time.Hour,
		RetentionBytes:     -1,
		MaxMessageBytes:    1048588,
		LogAppendTime:      false,
		Flush:              FlushGroupCommit,

		CleanupPolicy:          CleanupDelete,
		MinCleanableDirtyRatio: 0.5,
		MinCompactionLag:       0,
		MaxCompactionLag:       MaxCompactionLagNone,
		DeleteRetention:        24 * time.Hour,
	}
}

// minSegmentBytes is the smallest segment.bytes: one batch header plus a byte. Kafka's floor is
// 14, which cannot hold any v2 batch; a smaller value would roll on every append anyway.
const minSegmentBytes = batchHeaderSize

// Validate reports the first invalid field by its Kafka config name.
func (c Config) Validate() error {
	var errs []error
	if c.SegmentBytes < minSegmentBytes || c.SegmentBytes > math.MaxInt32 {
		// Index entries hold file positions as uint32 and Kafka keeps them below 2 GiB.
		errs = append(errs, fmt.Errorf("segment.bytes (SegmentBytes) = %d: must be in [%d, %d]", c.SegmentBytes, minSegmentBytes, math.MaxInt32))
	}
	if c.SegmentMs < time.Millisecond {
		errs = append(errs, fmt.Errorf("segment.ms (SegmentMs) = %v: must be at least 1ms", c.SegmentMs))
	}
	if c.SegmentIndexBytes < 4 {
		errs = append(errs, fmt.Errorf("segment.index.bytes (SegmentIndexBytes) = %d: must be at least 4", c.SegmentIndexBytes))
	}
	if c.IndexIntervalBytes < 0 {
		errs = append(errs, fmt.Errorf("index.interval.bytes (IndexIntervalBytes) = %d: must not be negative", c.IndexIntervalBytes))
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("max.message.bytes (MaxMessageBytes) = %d: must not be negative", c.MaxMessageBytes))
	}
	if c.Flush != FlushGroupCommit && c.Flush != FlushOS {
		errs = append(errs, fmt.Errorf("flush policy (Flush) = %d: unknown", int(c.Flush)))
	}
	if c.CleanupPolicy == 0 || c.CleanupPolicy > CleanupDelete|CleanupCompact {
		errs = append(errs, fmt.Errorf("cleanup.policy (CleanupPolicy) = %d: must be delete, compact or both", uint8(c.CleanupPolicy)))
	}
	if !(c.MinCleanableDirtyRatio >= 0 && c.MinCleanableDirtyRatio <= 1) { // also refuses NaN
		errs = append(errs, fmt.Errorf("min.cleanable.dirty.ratio (MinCleanableDirtyRatio) = %v: must be in [0, 1]", c.MinCleanableDirtyRatio))
	}
	if c.MinCompactionLag < 0 {
		errs = append(errs, fmt.Errorf("min.compaction.lag.ms (MinCompactionLag) = %v: must not be negative", c.MinCompactionLag))
	}
	if c.MaxCompactionLag < time.Millisecond {
		errs = append(errs, fmt.Errorf("max.compaction.lag.ms (MaxCompactionLag) = %v: must be at least 1ms", c.MaxCompactionLag))
	} else if c.MinCompactionLag > c.MaxCompactionLag {
		errs = append(errs, fmt.Errorf("min.compaction.lag.ms (MinCompactionLag) = %v is greater than max.compaction.lag.ms (MaxCompactionLag) = %v", c.MinCompactionLag, c.MaxCompactionLag))
	}
	if c.DeleteRetention < 0 {
		errs = append(errs, fmt.Errorf("delete.retention.ms (DeleteRetention) = %v: must not be negative", c.DeleteRetention))
	}
	if len(errs) > 0 {
		return fmt.Errorf("segment: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// Options carries a Log's dependencies.
type Options struct {
	Logger *slog.Logger     // nil = discard
	Now    func() time.Time // nil = time.Now; the clock behind segment.ms, retention.ms and LogAppendTime
	// FS is the filesystem the log lives in; nil = vfs.OS{}. Tests pass a *vfs.MemFS to
	// simulate power loss.
	FS vfs.FS
}
