package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
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
}

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
