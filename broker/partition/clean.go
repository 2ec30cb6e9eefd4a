package partition

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/segment"
)

// The log cleaner's runtime (Kafka's LogCleaner and LogCleanerManager): Threads
// goroutines owned by the Manager, each with its own offset map, repeatedly pick
// the dirtiest compacted local log and clean it (segment.Log.Clean) below the
// partition's high watermark. Every replica cleans its own log, followers too, as
// in Kafka. A log is due when its dirty ratio exceeds min.cleanable.dirty.ratio,
// a dirty segment is older than max.compaction.lag.ms, or a tombstone's delete
// horizon passed (segment.Cleanable). With nothing due a thread sleeps Backoff.
//
// The cleaner takes the Manager's lock only inside Manager.All (no I/O under
// it); its own lock, cleaner.mu, guards the set of logs being cleaned and is
// taken alone. Cleaning never blocks produce or fetch: the log takes its append
// lock only to plan and to swap segments in, and reads hold references to the
// segments they read.

// CleanerConfig configures the log cleaner (Kafka's log.cleaner.*).
type CleanerConfig struct {
	Enable bool // log.cleaner.enable
	// Threads is log.cleaner.threads: logs cleaned at once.
	Threads int
	// DedupeBufferSize is log.cleaner.dedupe.buffer.size: the memory of the
	// offset maps (key hash → offset), split among the threads. It bounds the
	// cleaner's memory whatever the logs hold: a clean whose dirty section has
	// more keys than a map holds cleans up to where the map filled.
	DedupeBufferSize int64
	// Backoff is log.cleaner.backoff.ms: how long a thread sleeps when no log
	// needs cleaning.
	Backoff time.Duration
}

// DefaultCleanerConfig is Kafka's defaults.
func DefaultCleanerConfig() CleanerConfig {
	return CleanerConfig{Enable: true, Threads: 1, DedupeBufferSize: 128 << 20, Backoff: 15 * time.Second}
}

// minDedupeBufferPerThread keeps each offset map big enough to make progress.
const minDedupeBufferPerThread = 1 << 10

// Validate names the first problem it finds.
func (c CleanerConfig) Validate() error {
	switch {
	case c.Threads < 1:
		return fmt.Errorf("partition: log.cleaner.threads %d must be at least 1", c.Threads)
	case c.DedupeBufferSize/int64(c.Threads) < minDedupeBufferPerThread:
		return fmt.Errorf("partition: log.cleaner.dedupe.buffer.size %d leaves less than %d bytes to each of %d threads", c.DedupeBufferSize, minDedupeBufferPerThread, c.Threads)
	case c.Backoff <= 0:
		return fmt.Errorf("partition: log.cleaner.backoff.ms %v must be positive", c.Backoff)
	}
	return nil
}

// cleaner is the Manager's log cleaner. Safe for concurrent use.
type cleaner struct {
	cfg CleanerConfig
	met cleanerMetrics

	mu          sync.Mutex
	inProgress  map[*Partition]bool
	uncleanable map[*Partition]error // failed with an error other than an abort: skipped (Kafka does too)
}

type cleanerMetrics struct {
	readBytes, writtenBytes, seconds prometheus.Counter
	cleans                           *prometheus.CounterVec
	lastRatio, lastSeconds, bufUtil  prometheus.Gauge
	dirtyPartitions, dirtyBytes      prometheus.Gauge
	maxDirtyRatio, uncleanable       prometheus.Gauge
}

func newCleaner(cfg CleanerConfig, reg prometheus.Registerer) (*cleaner, error) {
	c := &cleaner{cfg: cfg, inProgress: map[*Partition]bool{}, uncleanable: map[*Partition]error{}}
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "sediment", Subsystem: "log_cleaner", Name: name, Help: help}
	}
	c.met = cleanerMetrics{
		readBytes:       prometheus.NewCounter(prometheus.CounterOpts(opts("read_bytes_total", "Bytes of compacted logs the cleaner read: dirty sections mapped and segments rewritten."))),
		writtenBytes:    prometheus.NewCounter(prometheus.CounterOpts(opts("written_bytes_total", "Bytes of cleaned segments the cleaner wrote."))),
		seconds:         prometheus.NewCounter(prometheus.CounterOpts(opts("clean_seconds_total", "Time spent cleaning logs."))),
		cleans:          prometheus.NewCounterVec(prometheus.CounterOpts(opts("cleans_total", "Cleans of a log, by result: ok, aborted (the log changed or closed), error.")), []string{"result"}),
		lastRatio:       prometheus.NewGauge(prometheus.GaugeOpts(opts("last_clean_ratio", "Bytes written over bytes of segments rewritten by the last clean (Kafka's recopy ratio)."))),
		lastSeconds:     prometheus.NewGauge(prometheus.GaugeOpts(opts("last_clean_seconds", "Duration of the last clean."))),
		bufUtil:         prometheus.NewGauge(prometheus.GaugeOpts(opts("buffer_utilization", "Fraction of the offset map the last clean filled."))),
		dirtyPartitions: prometheus.NewGauge(prometheus.GaugeOpts(opts("partitions_dirty", "Compacted local partitions due for cleaning at the last scan."))),
		dirtyBytes:      prometheus.NewGauge(prometheus.GaugeOpts(opts("dirty_bytes", "Bytes of dirty (not yet cleaned) cleanable segments over compacted local partitions at the last scan."))),
		maxDirtyRatio:   prometheus.NewGauge(prometheus.GaugeOpts(opts("max_dirty_ratio", "The largest dirty ratio of a compacted local partition at the last scan."))),
		uncleanable:     prometheus.NewGauge(prometheus.GaugeOpts(opts("uncleanable_partitions", "Partitions whose clean failed (corruption, I/O): skipped until the broker restarts."))),
	}
	m := &c.met
	for _, col := range []prometheus.Collector{m.readBytes, m.writtenBytes, m.seconds, m.cleans, m.lastRatio, m.lastSeconds, m.bufUtil, m.dirtyPartitions, m.dirtyBytes, m.maxDirtyRatio, m.uncleanable} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("partition: cleaner metrics: %w", err)
		}
	}
	for _, r := range []string{"ok", "aborted", "error"} {
		m.cleans.WithLabelValues(r)
	}
	return c, nil
}

// start runs the cleaner's threads until the Manager's context ends; the
// Manager waits for them in Close.
func (c *cleaner) start(m *Manager) {
	if !c.cfg.Enable {
		return
	}
	for range c.cfg.Threads {
		m.wg.Go(func() { c.run(m) })
	}
}

// run is one cleaner thread. Its offset map is allocated at the first clean, so
// a broker without compacted topics does not pay for it.
func (c *cleaner) run(m *Manager) {
	var om *segment.OffsetMap
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-timer.C:
		}
		p, limit := c.grabFilthiest(m.All())
		if p == nil {
			timer.Reset(c.cfg.Backoff)
			continue
		}
		if om == nil {
			om = segment.NewOffsetMap(c.cfg.DedupeBufferSize / int64(c.cfg.Threads))
		}
		if c.clean(m, p, om, limit) {
			timer.Reset(0) // another log (or more of this one) may be due: look again at once
		} else {
			timer.Reset(c.cfg.Backoff)
		}
	}
}

// grabFilthiest picks the due compacted log with the largest dirty ratio
// (Kafka's grabFilthiestCompactedLog), marks it in progress and returns it
// with the offset below which it may be cleaned; nil when none is due. It
// also refreshes the dirtiness gauges.
func (c *cleaner) grabFilthiest(parts []*Partition) (*Partition, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *Partition
	var bestRatio float64
	var bestLimit int64
	due, dirtyBytes, maxRatio := 0, int64(0), 0.0
	live := make(map[*Partition]bool, len(parts))
	for _, p := range parts {
		live[p] = true
		if !p.log.Compacted() {
			continue
		}
		limit := p.hw.Load() // records not yet committed may still be truncated
		cl := p.log.Cleanable(limit)
		dirtyBytes += cl.DirtyBytes
		maxRatio = max(maxRatio, cl.DirtyRatio())
		if !cl.Due || c.inProgress[p] || c.uncleanable[p] != nil {
			continue
		}
		due++
		// A passed max.compaction.lag.ms or delete horizon counts as fully dirty.
		ratio := cl.DirtyRatio()
		if cl.LagExceeded || cl.HorizonPassed {
			ratio = max(ratio, 1)
		}
		if best == nil || ratio > bestRatio {
			best, bestRatio, bestLimit = p, ratio, limit
		}
	}
	for p := range c.uncleanable {
		if !live[p] {
			delete(c.uncleanable, p)
		}
	}
	c.met.dirtyPartitions.Set(float64(due))
	c.met.dirtyBytes.Set(float64(dirtyBytes))
	c.met.maxDirtyRatio.Set(maxRatio)
	c.met.uncleanable.Set(float64(len(c.uncleanable)))
	if best != nil {
		c.inProgress[best] = true
	}
	return best, bestLimit
}

// clean cleans p's log once and records the outcome; progress reports whether
// it cleaned anything.
func (c *cleaner) clean(m *Manager, p *Partition, om *segment.OffsetMap, limit int64) (progress bool) {
	st, err := p.log.Clean(m.ctx, om, limit)
	c.mu.Lock()
	delete(c.inProgress, p)
	aborted := errors.Is(err, segment.ErrCleanAborted) || errors.Is(err, segment.ErrClosed) || m.ctx.Err() != nil
	if err != nil && !aborted {
		c.uncleanable[p] = err
	}
	c.mu.Unlock()
	c.met.readBytes.Add(float64(st.MapBytesRead + st.BytesRead))
	c.met.writtenBytes.Add(float64(st.BytesWritten))
	c.met.seconds.Add(st.Duration.Seconds())
	switch {
	case err == nil:
		c.met.cleans.WithLabelValues("ok").Inc()
		if st.BytesRead > 0 {
			c.met.lastRatio.Set(float64(st.BytesWritten) / float64(st.BytesRead))
		}
		c.met.lastSeconds.Set(st.Duration.Seconds())
		c.met.bufUtil.Set(st.MapUtilization)
		if st.BytesRead > 0 {
			m.log.Info("cleaned log", "partition", p.String(), "first_dirty", st.FirstDirty, "cleaned_to", st.EndOffset,
				"read_bytes", st.MapBytesRead+st.BytesRead, "written_bytes", st.BytesWritten, "segments", st.SegmentsBefore,
				"segments_after", st.SegmentsAfter, "records_kept", st.RecordsKept, "records_read", st.RecordsRead,
				"map_utilization", st.MapUtilization, "duration", st.Duration)
		}
	case aborted:
		c.met.cleans.WithLabelValues("aborted").Inc()
	default:
		c.met.cleans.WithLabelValues("error").Inc()
		m.log.Error("cleaning log failed; the partition is not cleaned again until the broker restarts", "partition", p.String(), "err", err)
	}
	return err == nil && st.BytesRead > 0
}
