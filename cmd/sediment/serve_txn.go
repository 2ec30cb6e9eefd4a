package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/sedimentio/sediment/broker"
)

// txnFlags are serve's transaction coordinator settings (Kafka's
// transaction.* and transactional.id.* broker configs).
type txnFlags struct {
	topicPartitions  int
	topicReplication int
	topicMinISR      int
	topicSegment     int
	maxTimeout       time.Duration
	idExpiration     time.Duration
	abortInterval    time.Duration
	removeInterval   time.Duration
	verification     bool
}

func (x *txnFlags) register(fs *flag.FlagSet, d broker.Config) {
	t := d.Txn
	fs.IntVar(&x.topicPartitions, "transaction-state-log-num-partitions", int(t.NumPartitions), "transaction.state.log.num.partitions: partitions of __transaction_state when it is created (never changed afterwards)")
	fs.IntVar(&x.topicReplication, "transaction-state-log-replication-factor", int(t.ReplicationFactor), "transaction.state.log.replication.factor: replication factor of __transaction_state when it is created (capped by the live brokers then)")
	fs.IntVar(&x.topicMinISR, "transaction-state-log-min-isr", int(t.MinISR), "transaction.state.log.min.isr: min.insync.replicas of __transaction_state (capped by its replication factor when it is created)")
	fs.IntVar(&x.topicSegment, "transaction-state-log-segment-bytes", int(t.SegmentBytes), "transaction.state.log.segment.bytes: segment.bytes of __transaction_state")
	fs.DurationVar(&x.maxTimeout, "transaction-max-timeout", t.MaxTimeout, "transaction.max.timeout.ms as a duration: the longest transaction.timeout.ms a producer may ask for")
	fs.DurationVar(&x.idExpiration, "transactional-id-expiration", t.IDExpiration, "transactional.id.expiration.ms as a duration: a transactional id with no transaction and no request for this long is forgotten")
	fs.DurationVar(&x.abortInterval, "transaction-abort-timed-out-transaction-cleanup-interval", t.AbortTimedOutInterval, "transaction.abort.timed.out.transaction.cleanup.interval.ms as a duration: how often transactions past their timeout are looked for and aborted")
	fs.BoolVar(&x.verification, "transaction-partition-verification-enable", d.TxnVerification, "transaction.partition.verification.enable: before a transaction's first batch in a partition, its leader checks with the transaction coordinator that the transaction includes the partition (KIP-890 part 1)")
	fs.DurationVar(&x.removeInterval, "transaction-remove-expired-transaction-cleanup-interval", t.RemoveExpiredInterval, "transaction.remove.expired.transaction.cleanup.interval.ms as a duration: how often expired transactional ids are looked for")
}

func (x *txnFlags) apply(c *broker.Config) error {
	if x.topicPartitions < 1 || x.topicPartitions > 1<<20 {
		return fmt.Errorf("--transaction-state-log-num-partitions %d out of range", x.topicPartitions)
	}
	if x.topicReplication < 1 || x.topicReplication > 1<<15-1 {
		return fmt.Errorf("--transaction-state-log-replication-factor %d out of range", x.topicReplication)
	}
	if x.topicMinISR < 1 || x.topicMinISR > 1<<15-1 {
		return fmt.Errorf("--transaction-state-log-min-isr %d out of range", x.topicMinISR)
	}
	if x.topicSegment < 1 || x.topicSegment > 1<<31-1 {
		return fmt.Errorf("--transaction-state-log-segment-bytes %d out of range", x.topicSegment)
	}
	c.Txn.NumPartitions = int32(x.topicPartitions)
	c.Txn.ReplicationFactor = int16(x.topicReplication)
	c.Txn.MinISR = int32(x.topicMinISR)
	c.Txn.SegmentBytes = int32(x.topicSegment)
	c.Txn.MaxTimeout = x.maxTimeout
	c.Txn.IDExpiration = x.idExpiration
	c.Txn.AbortTimedOutInterval = x.abortInterval
	c.Txn.RemoveExpiredInterval = x.removeInterval
	c.TxnVerification = x.verification
	return nil
}
