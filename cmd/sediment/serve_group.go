package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/sedimentio/sediment/broker"
)

// groupFlags are serve's group coordinator settings (Kafka's group.* and
// offsets.* broker configs).
type groupFlags struct {
	initialDelay     time.Duration
	minSession       time.Duration
	maxSession       time.Duration
	maxSize          int
	retention        time.Duration
	retentionCheck   time.Duration
	metadataMax      int
	commitTimeout    time.Duration
	consumerSession  time.Duration
	consumerInterval time.Duration
	topicPartitions  int
	topicReplication int
	topicSegment     int64
}

func (g *groupFlags) register(fs *flag.FlagSet, d broker.Config) {
	fs.DurationVar(&g.initialDelay, "group-initial-rebalance-delay", d.Group.InitialRebalanceDelay, "group.initial.rebalance.delay.ms as a duration: how long the first rebalance of an empty group waits for more members")
	fs.DurationVar(&g.minSession, "group-min-session-timeout", d.Group.MinSessionTimeout, "group.min.session.timeout.ms as a duration: the shortest session timeout a group member may ask for")
	fs.DurationVar(&g.maxSession, "group-max-session-timeout", d.Group.MaxSessionTimeout, "group.max.session.timeout.ms as a duration: the longest session timeout a group member may ask for")
	fs.IntVar(&g.maxSize, "group-max-size", d.Group.MaxGroupSize, "group.max.size: most members of one group")
	fs.DurationVar(&g.retention, "offsets-retention", d.Group.OffsetsRetention, "offsets.retention.minutes as a duration: committed offsets of a group that has been empty this long expire")
	fs.DurationVar(&g.retentionCheck, "offsets-retention-check-interval", d.Group.OffsetsRetentionCheckInterval, "offsets.retention.check.interval.ms as a duration")
	fs.IntVar(&g.metadataMax, "offset-metadata-max-bytes", d.Group.OffsetMetadataMaxBytes, "offset.metadata.max.bytes: largest metadata string of a committed offset")
	fs.DurationVar(&g.commitTimeout, "offsets-commit-timeout", d.Group.CommitTimeout, "offsets.commit.timeout.ms as a duration: how long an offset commit waits to be replicated")
	fs.DurationVar(&g.consumerSession, "group-consumer-session-timeout", d.Group.ConsumerSessionTimeout, "group.consumer.session.timeout.ms as a duration: a KIP-848 consumer group member silent this long is removed")
	fs.DurationVar(&g.consumerInterval, "group-consumer-heartbeat-interval", d.Group.ConsumerHeartbeatInterval, "group.consumer.heartbeat.interval.ms as a duration: how often KIP-848 consumer group members heartbeat (the bound of how fast they learn of a rebalance)")
	fs.IntVar(&g.topicPartitions, "offsets-topic-num-partitions", int(d.OffsetsTopicPartitions), "offsets.topic.num.partitions: partitions of __consumer_offsets when it is created (never changed afterwards)")
	fs.IntVar(&g.topicReplication, "offsets-topic-replication-factor", int(d.OffsetsTopicReplicationFactor), "offsets.topic.replication.factor: replication factor of __consumer_offsets when it is created (capped by the live brokers then)")
	fs.Int64Var(&g.topicSegment, "offsets-topic-segment-bytes", d.OffsetsTopicSegmentBytes, "offsets.topic.segment.bytes: segment.bytes of __consumer_offsets")
}

func (g *groupFlags) apply(c *broker.Config) error {
	if g.topicPartitions < 1 || g.topicPartitions > 1<<20 {
		return fmt.Errorf("--offsets-topic-num-partitions %d out of range", g.topicPartitions)
	}
	if g.topicReplication < 1 || g.topicReplication > 1<<15-1 {
		return fmt.Errorf("--offsets-topic-replication-factor %d out of range", g.topicReplication)
	}
	c.Group.InitialRebalanceDelay = g.initialDelay
	c.Group.MinSessionTimeout, c.Group.MaxSessionTimeout = g.minSession, g.maxSession
	c.Group.MaxGroupSize = g.maxSize
	c.Group.OffsetsRetention, c.Group.OffsetsRetentionCheckInterval = g.retention, g.retentionCheck
	c.Group.OffsetMetadataMaxBytes = g.metadataMax
	c.Group.CommitTimeout = g.commitTimeout
	c.Group.ConsumerSessionTimeout, c.Group.ConsumerHeartbeatInterval = g.consumerSession, g.consumerInterval
	c.OffsetsTopicPartitions = int32(g.topicPartitions)
	c.OffsetsTopicReplicationFactor = int16(g.topicReplication)
	c.OffsetsTopicSegmentBytes = g.topicSegment
	return nil
}
