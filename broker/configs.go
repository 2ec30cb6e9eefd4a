package broker

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/segment"
)

// topicConfig describes one topic-level config Sediment honours. Names,
// types and meanings are Kafka's; broker is the broker-level name whose value
// is the default.
type topicConfig struct {
	name   string
	broker string
	typ    kmsg.ConfigType
	doc    string
	// def renders the broker default.
	def func(s *Server) string
	// apply validates v and sets it on c.
	apply func(c *segment.Config, v string) error
}

var topicConfigs = []topicConfig{
	{
		name: "local.retention.bytes", broker: "log.local.retention.bytes", typ: kmsg.ConfigTypeLong,
		doc: "With remote storage: bytes of uploaded segments kept on local disk; -2 means retention.bytes.",
		def: func(s *Server) string { return strconv.FormatInt(s.cfg.LocalRetentionBytes, 10) },
		apply: func(_ *segment.Config, v string) error {
			_, err := parseInt(v, -2, math.MaxInt64)
			return err
		},
	},
	{
		name: "local.retention.ms", broker: "log.local.retention.ms", typ: kmsg.ConfigTypeLong,
		doc: "With remote storage: how long uploaded segments stay on local disk; -2 means retention.ms.",
		def: func(s *Server) string { return strconv.FormatInt(s.cfg.LocalRetentionMs, 10) },
		apply: func(_ *segment.Config, v string) error {
			_, err := parseInt(v, -2, math.MaxInt64/int64(time.Millisecond))
			return err
		},
	},
	{
		name: "remote.storage.enable", broker: "remote.log.storage.system.enable", typ: kmsg.ConfigTypeBoolean,
		doc: "Upload sealed segments to the broker's --tier object store. The default when a tier is configured.",
		def: func(s *Server) string { return strconv.FormatBool(s.tiering) },
		apply: func(_ *segment.Config, v string) error {
			if v != "true" && v != "false" {
				return fmt.Errorf("remote.storage.enable %q must be true or false", v)
			}
			return nil
		},
	},
	{
		name: "cleanup.policy", broker: "log.cleanup.policy", typ: kmsg.ConfigTypeList,
		doc: "delete: retention.* removes old segments; compact: the log cleaner keeps the last record of each key (every record needs a key, tombstones go after delete.retention.ms); compact,delete: both. Compacted topics are not tiered (remote.storage.enable=true is refused).",
		def: func(s *Server) string { return s.cfg.Log.CleanupPolicy.String() },
		apply: func(c *segment.Config, v string) error {
			p, err := segment.ParseCleanupPolicy(v)
			c.CleanupPolicy = p
			return err
		},
	},
	{
		name: "compression.type", broker: "compression.type", typ: kmsg.ConfigTypeString,
		doc: "Only \"producer\": batches are stored as the producer compressed them, never re-encoded.",
		def: func(*Server) string { return "producer" },
		apply: func(_ *segment.Config, v string) error {
			if v != "producer" {
				return fmt.Errorf("compression.type %q is not supported (only \"producer\": batches are stored as sent)", v)
			}
			return nil
		},
	},
	{
		name: "delete.retention.ms", broker: "log.cleaner.delete.retention.ms", typ: kmsg.ConfigTypeLong,
		doc: "Compacted topics: how long a tombstone stays after the clean that first kept it, for consumers to see the delete.",
		def: func(s *Server) string { return strconv.FormatInt(durMs(s.cfg.Log.DeleteRetention), 10) },
		apply: func(c *segment.Config, v string) error {
			n, err := parseInt(v, 0, math.MaxInt64/int64(time.Millisecond))
			c.DeleteRetention = msDur(n)
			return err
		},
	},
	{
		name: "flush.messages", broker: "log.flush.interval.messages", typ: kmsg.ConfigTypeLong,
		doc: "1 (Sediment's default): a produce is acknowledged only after an fdatasync covers its batch (group commit). Any larger value leaves flushing to the OS, as Kafka does by default.",
		def: func(s *Server) string {
			if s.cfg.Log.Flush == segment.FlushOS {
				return strconv.FormatInt(math.MaxInt64, 10)
			}
			return "1"
		},
		apply: func(c *segment.Config, v string) error {
			n, err := parseInt(v, 1, math.MaxInt64)
			if err != nil {
				return err
			}
			c.Flush = segment.FlushGroupCommit
			if n > 1 {
				c.Flush = segment.FlushOS
			}
			return nil
		},
	},
	{
		name: "index.interval.bytes", broker: "log.index.interval.bytes", typ: kmsg.ConfigTypeInt,
		def: func(s *Server) string { return strconv.Itoa(s.cfg.Log.IndexIntervalBytes) },
		apply: func(c *segment.Config, v string) error {
			n, err := parseInt(v, 0, math.MaxInt32)
			c.IndexIntervalBytes = int(n)
			return err
		},
	},
	{
		name: "max.compaction.lag.ms", broker: "log.cleaner.max.compaction.lag.ms", typ: kmsg.ConfigTypeLong,
		doc: "Compacted topics: a record stays uncompacted at most this long, whatever min.cleanable.dirty.ratio says (KIP-354).",
		def: func(s *Server) string { return formatLag(s.cfg.Log.MaxCompactionLag) },
		apply: func(c *segment.Config, v string) error {
			n, err := parseInt(v, 1, math.MaxInt64)
			c.MaxCompactionLag = lagDur(n)
			return err
		},
	},
	{
		name: "max.message.bytes", broker: "message.max.bytes", typ: kmsg.ConfigTypeInt,
		def: func(s *Server) string { return strconv.Itoa(s.cfg.Log.MaxMessageBytes) },
		apply: func(c *segment.Config, v string) error {
			n, err := parseInt(v, 0, math.MaxInt32)
			c.MaxMessageBytes = int(n)
			return err
		},
	},
	{
		name: "message.timestamp.type", broker: "log.message.timestamp.type", typ: kmsg.ConfigTypeString,
		def: func(s *Server) string {
			if s.cfg.Log.LogAppendTime {
				return "LogAppendTime"
			}
			return "CreateTime"
		},
		apply: func(c *segment.Config, v string) error {
			switch v {
			case "CreateTime":
				c.LogAppendTime = false
			case "LogAppendTime":
				c.LogAppendTime = true
			default:
				return fmt.Errorf("message.timestamp.type %q must be CreateTime or LogAppendTime", v)
			}
			return nil
		},
	},
	{
		name: "min.cleanable.dirty.ratio", broker: "log.cleaner.min.cleanable.ratio", typ: kmsg.ConfigTypeDouble,
		doc: "Compacted topics: the log cleaner cleans a log once this fraction of it is dirty (not yet cleaned).",
		def: func(s *Server) string { return strconv.FormatFloat(s.cfg.Log.MinCleanableDirtyRatio, 'g', -1, 64) },
		apply: func(c *segment.Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0 && f <= 1) {
				return fmt.Errorf("min.cleanable.dirty.ratio %q must be a number in [0, 1]", v)
			}
			c.MinCleanableDirtyRatio = f
			return nil
		},
	},
	{
		name: "min.compaction.lag.ms", broker: "log.cleaner.min.compaction.lag.ms", typ: kmsg.ConfigTypeLong,
		doc: "Compacted topics: a record stays uncompacted at least this long.",
		def: func(s *Server) string { return strconv.FormatInt(durMs(s.cfg.Log.MinCompactionLag), 10) },
		apply: func(c *segment.Config, v string) error {
			n, err := parseInt(v, 0, math.MaxInt64/int64(time.Millisecond))
			c.MinCompactionLag = msDur(n)
			return err
		},
	},
	{
		name: "min.insync.replicas", broker: "min.insync.replicas", typ: kmsg.ConfigTypeInt,
		doc: "acks=all produces fail with NOT_ENOUGH_REPLICAS while the ISR is smaller.",
		def: func(s *Server) string { return strconv.Itoa(s.cfg.MinInsyncReplicas) },
		apply: func(_ *segment.Config, v string) error {
			_, err := parseInt(v, 1, math.MaxInt32)
			return err
		},
	},
	{
		name: "retention.bytes", broker: "log.retention.bytes", typ: kmsg.ConfigTypeLong,
		def: func(s *Server) string { return strconv.FormatInt(s.cfg.Log.RetentionBytes, 10) },
		apply: func(c *segment.Config, v string) error {
			n, err := parseInt(v, -1, math.MaxInt64)
			c.RetentionBytes = n
			return err
		},
	},
	{
		name: "retention.ms", broker: "log.retention.ms", typ: kmsg.ConfigTypeLong,
		def: func(s *Server) string { return strconv.FormatInt(durMs(s.cfg.Log.RetentionMs), 10) },
		apply: func(c *segment.Config, v string) error {
			n, err := parseInt(v, -1, math.MaxInt64/int64(time.Millisecond))
			c.RetentionMs = msDur(n)
			return err
		},
	},
	{
		name: "segment.bytes", broker: "log.segment.bytes", typ: kmsg.ConfigTypeInt,
		def: func(s *Server) string { return strconv.FormatInt(s.cfg.Log.SegmentBytes, 10) },
		apply: func(c *segment.Config, v string) error {
			n, err := parseInt(v, 1024, math.MaxInt32)
			c.SegmentBytes = n
			return err
		},
	},
	{
		name: "segment.index.bytes", broker: "log.index.size.max.bytes", typ: kmsg.ConfigTypeInt,
		def: func(s *Server) string { return strconv.Itoa(s.cfg.Log.SegmentIndexBytes) },
		apply: func(c *segment.Config, v string) error {
			n, err := parseInt(v, 8, math.MaxInt32)
			c.SegmentIndexBytes = int(n)
			return err
		},
	},
	{
		name: "segment.ms", broker: "log.roll.ms", typ: kmsg.ConfigTypeLong,
		def: func(s *Server) string { return strconv.FormatInt(durMs(s.cfg.Log.SegmentMs), 10) },
		apply: func(c *segment.Config, v string) error {
			n, err := parseInt(v, 1, math.MaxInt64/int64(time.Millisecond))
			c.SegmentMs = msDur(n)
			return err
		},
	},
	{
		name: "unclean.leader.election.enable", broker: "unclean.leader.election.enable", typ: kmsg.ConfigTypeBoolean,
		def: func(*Server) string { return "false" },
		apply: func(_ *segment.Config, v string) error {
			if v != "true" && v != "false" {
				return fmt.Errorf("unclean.leader.election.enable %q must be true or false", v)
			}
			return nil
		},
	},
}

func lookupTopicConfig(name string) (topicConfig, bool) {
	i := slices.IndexFunc(topicConfigs, func(c topicConfig) bool { return c.name == name })
	if i < 0 {
		return topicConfig{}, false
	}
	return topicConfigs[i], true
}

// logConfig resolves a topic's overrides on top of the broker defaults.
func (s *Server) logConfig(overrides map[string]string) (segment.Config, error) {
	c := s.cfg.Log
	for name, v := range overrides {
		tc, ok := lookupTopicConfig(name)
		if !ok {
			return c, fmt.Errorf("unknown topic config %q", name)
		}
		if err := tc.apply(&c, v); err != nil {
			return c, err
		}
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// validateTopicConfigs checks a full override set as CreateTopics and
// AlterConfigs receive it; the error text goes back to the client.
func (s *Server) validateTopicConfigs(overrides map[string]string) error {
	if overrides["remote.storage.enable"] == "true" && !s.tiering {
		return fmt.Errorf("remote.storage.enable=true needs a broker started with --tier")
	}
	cfg, err := s.logConfig(overrides)
	if err == nil && cfg.CleanupPolicy.Compact() && overrides["remote.storage.enable"] == "true" {
		// The tier's reader and index rely on contiguous offsets and immutable uploaded
		// segments (tier/REMOTE.md); compaction rewrites segments and leaves gaps.
		return fmt.Errorf("cleanup.policy=%s cannot be combined with remote.storage.enable=true: compacted topics are not tiered", cfg.CleanupPolicy)
	}
	return err
}

// tiered reports whether a topic's segments go to the object store: with a tier, every
// topic that does not opt out, except compacted ones.
func (s *Server) tiered(configs map[string]string) bool {
	if !s.tiering {
		return false
	}
	if cfg, err := s.logConfig(configs); err == nil && cfg.CleanupPolicy.Compact() {
		return false
	}
	v, ok := configs["remote.storage.enable"]
	return !ok || v == "true"
}

// localRetention resolves local.retention.ms/bytes (-2: the topic's
// retention.ms/bytes) for a tiered topic.
func (s *Server) localRetention(configs map[string]string, cfg segment.Config) (time.Duration, int64) {
	ms, bytes := cfg.RetentionMs, cfg.RetentionBytes
	lms, lbytes := s.cfg.LocalRetentionMs, s.cfg.LocalRetentionBytes // broker defaults
	if v, ok := configs["local.retention.ms"]; ok {
		lms, _ = strconv.ParseInt(v, 10, 64)
	}
	if v, ok := configs["local.retention.bytes"]; ok {
		lbytes, _ = strconv.ParseInt(v, 10, 64)
	}
	if lms != -2 {
		ms = msDur(lms)
	}
	if lbytes != -2 {
		bytes = lbytes
	}
	return ms, bytes
}

// topicSettings resolves a topic's configs for the partition layer.
func (s *Server) topicSettings(t meta.Topic) (partition.TopicSettings, error) {
	cfg, err := s.logConfig(t.Configs)
	if err != nil {
		return partition.TopicSettings{}, err
	}
	ts := partition.TopicSettings{Log: cfg, MinInsyncReplicas: int32(s.cfg.MinInsyncReplicas), Tiered: s.tiered(t.Configs)}
	if v, ok := t.Configs["min.insync.replicas"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			ts.MinInsyncReplicas = int32(n)
		}
	}
	ts.LocalRetention, ts.LocalRetentionBytes = s.localRetention(t.Configs, cfg)
	return ts, nil
}

// lagDur turns max.compaction.lag.ms into a duration; Long.MAX_VALUE (Kafka's default) and
// anything a Duration cannot hold mean no maximum.
func lagDur(ms int64) time.Duration {
	if ms >= math.MaxInt64/int64(time.Millisecond) {
		return segment.MaxCompactionLagNone
	}
	return time.Duration(ms) * time.Millisecond
}

func formatLag(d time.Duration) string {
	if d == segment.MaxCompactionLagNone {
		return strconv.FormatInt(math.MaxInt64, 10)
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

func parseInt(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", v)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range [%d, %d]", n, lo, hi)
	}
	return n, nil
}

func durMs(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return d.Milliseconds()
}

func msDur(ms int64) time.Duration {
	if ms < 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}
