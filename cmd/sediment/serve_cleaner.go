package main

import (
	"flag"
	"fmt"
	"math"
	"time"

	"github.com/sedimentio/sediment/broker"
	"github.com/sedimentio/sediment/segment"
)

// cleanerFlags are serve's compaction settings: the log cleaner (Kafka's
// log.cleaner.*) and the broker defaults of the compaction topic configs.
type cleanerFlags struct {
	policy      string
	enable      bool
	threads     int
	dedupe      int64
	backoff     time.Duration
	ratio       float64
	minLagMs    int64
	maxLagMs    int64
	deleteRetMs int64
}

func (c *cleanerFlags) register(fs *flag.FlagSet, d broker.Config) {
	l := d.Log
	fs.StringVar(&c.policy, "log-cleanup-policy", l.CleanupPolicy.String(), "log.cleanup.policy: default cleanup.policy of topics: delete, compact or compact,delete")
	fs.BoolVar(&c.enable, "log-cleaner-enable", d.LogCleaner.Enable, "log.cleaner.enable: run the log cleaner, which compacts topics whose cleanup.policy includes compact")
	fs.IntVar(&c.threads, "log-cleaner-threads", d.LogCleaner.Threads, "log.cleaner.threads: logs cleaned at once")
	fs.Int64Var(&c.dedupe, "log-cleaner-dedupe-buffer-size", d.LogCleaner.DedupeBufferSize, "log.cleaner.dedupe.buffer.size: memory of the cleaner's offset maps (24 bytes a key), split among the threads; it bounds the cleaner's memory")
	fs.DurationVar(&c.backoff, "log-cleaner-backoff", d.LogCleaner.Backoff, "log.cleaner.backoff.ms as a duration: how long the cleaner sleeps when no log needs cleaning")
	fs.Float64Var(&c.ratio, "log-cleaner-min-cleanable-ratio", l.MinCleanableDirtyRatio, "log.cleaner.min.cleanable.ratio: default min.cleanable.dirty.ratio of topics")
	fs.Int64Var(&c.minLagMs, "log-cleaner-min-compaction-lag-ms", l.MinCompactionLag.Milliseconds(), "log.cleaner.min.compaction.lag.ms: default min.compaction.lag.ms of topics")
	fs.Int64Var(&c.maxLagMs, "log-cleaner-max-compaction-lag-ms", math.MaxInt64, "log.cleaner.max.compaction.lag.ms: default max.compaction.lag.ms of topics")
	fs.Int64Var(&c.deleteRetMs, "log-cleaner-delete-retention-ms", l.DeleteRetention.Milliseconds(), "log.cleaner.delete.retention.ms: default delete.retention.ms of topics (how long tombstones stay)")
}

func (c *cleanerFlags) apply(b *broker.Config) error {
	p, err := segment.ParseCleanupPolicy(c.policy)
	if err != nil {
		return fmt.Errorf("--log-cleanup-policy: %w", err)
	}
	b.Log.CleanupPolicy = p
	b.Log.MinCleanableDirtyRatio = c.ratio
	b.Log.MinCompactionLag = msDuration(c.minLagMs)
	b.Log.DeleteRetention = msDuration(c.deleteRetMs)
	b.Log.MaxCompactionLag = msDuration(c.maxLagMs)
	if c.maxLagMs >= math.MaxInt64/int64(time.Millisecond) {
		b.Log.MaxCompactionLag = segment.MaxCompactionLagNone
	}
	b.LogCleaner.Enable = c.enable
	b.LogCleaner.Threads = c.threads
	b.LogCleaner.DedupeBufferSize = c.dedupe
	b.LogCleaner.Backoff = c.backoff
	return nil
}

// msDuration is a millisecond count as a duration, saturating (broker.Config.Validate
// refuses the negative ones, naming the config).
func msDuration(ms int64) time.Duration {
	return time.Duration(min(ms, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
}
