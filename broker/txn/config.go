package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StateTopic is the internal topic holding the transaction coordinator's
// state.
const StateTopic = "__transaction_state"

// Config is the coordinator's static configuration; the names are Kafka's
// broker configs.
type Config struct {
	// NumPartitions is transaction.state.log.num.partitions: the partitions
	// __transaction_state is created with.
	NumPartitions int32
	// ReplicationFactor is transaction.state.log.replication.factor (the
	// broker caps it by the live brokers when it creates the topic).
	ReplicationFactor int16
	// MinISR is transaction.state.log.min.isr: min.insync.replicas of
	// __transaction_state.
	MinISR int32
	// SegmentBytes is transaction.state.log.segment.bytes.
	SegmentBytes int32
	// MaxTimeout is transaction.max.timeout.ms: the longest
	// transaction.timeout.ms a producer may ask for.
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms: a transactional id
	// with no transaction and no request for this long is forgotten.
	IDExpiration time.Duration
	// AbortTimedOutInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms: how often
	// transactions past their timeout are looked for and aborted.
	AbortTimedOutInterval time.Duration
	// RemoveExpiredInterval is
	// transaction.remove.expired.transaction.cleanup.interval.ms: how often
	// expired transactional ids are looked for.
	RemoveExpiredInterval time.Duration
	// WriteTimeout is how long a write to __transaction_state may wait to be
	// committed (Kafka uses request.timeout.ms).
	WriteTimeout time.Duration
}

// DefaultConfig is Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		NumPartitions:         50,
		ReplicationFactor:     3,
		MinISR:                2,
		SegmentBytes:          100 << 20,
		MaxTimeout:            15 * time.Minute,
		IDExpiration:          7 * 24 * time.Hour,
		AbortTimedOutInterval: 10 * time.Second,
		RemoveExpiredInterval: time.Hour,
		WriteTimeout:          30 * time.Second,
	}
}

// Validate names the first problem it finds, by its flag.
func (c Config) Validate() error {
	switch {
	case c.NumPartitions < 1:
		return fmt.Errorf("txn: transaction.state.log.num.partitions %d must be at least 1", c.NumPartitions)
	case c.ReplicationFactor < 1:
		return fmt.Errorf("txn: transaction.state.log.replication.factor %d must be at least 1", c.ReplicationFactor)
	case c.MinISR < 1:
		return fmt.Errorf("txn: transaction.state.log.min.isr %d must be at least 1", c.MinISR)
	case c.SegmentBytes < 14:
		return fmt.Errorf("txn: transaction.state.log.segment.bytes %d is too small", c.SegmentBytes)
	case c.MaxTimeout < time.Millisecond || c.MaxTimeout > (1<<31-1)*time.Millisecond:
		return fmt.Errorf("txn: transaction.max.timeout.ms %v must be between 1 ms and 2^31-1 ms", c.MaxTimeout)
	case c.IDExpiration < time.Millisecond:
		return fmt.Errorf("txn: transactional.id.expiration.ms %v must be at least 1 ms", c.IDExpiration)
	case c.AbortTimedOutInterval < time.Millisecond:
		return fmt.Errorf("txn: transaction.abort.timed.out.transaction.cleanup.interval.ms %v must be at least 1 ms", c.AbortTimedOutInterval)
	case c.RemoveExpiredInterval < time.Millisecond:
		return fmt.Errorf("txn: transaction.remove.expired.transaction.cleanup.interval.ms %v must be at least 1 ms", c.RemoveExpiredInterval)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("txn: request.timeout.ms %v must be positive", c.WriteTimeout)
	}
	return nil
}

// TopicConfigs are the configs __transaction_state is created with, as
// Kafka creates it: compacted, uncompressed, no unclean elections,
// transaction.state.log.min.isr and .segment.bytes.
func (c Config) TopicConfigs() map[string]string {
	return map[string]string{
		"cleanup.policy":                 "compact",
		"compression.type":               "uncompressed",
		"unclean.leader.election.enable": "false",
		"min.insync.replicas":            strconv.Itoa(int(c.MinISR)),
		"segment.bytes":                  strconv.Itoa(int(c.SegmentBytes)),
	}
}

// ProducerIDs hands out cluster-unique producer ids (the broker reserves
// blocks of them in etcd, as for idempotent producers).
type ProducerIDs interface {
	NextProducerID(ctx context.Context) (int64, error)
}

// Deps are the coordinator's collaborators.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ProducerIDs allocates producer ids; required.
	ProducerIDs ProducerIDs
	// Markers writes transaction markers to the partitions of a
	// transaction; required.
	Markers MarkerWriter
	// Partitions returns the partition count of __transaction_state, 0 while
	// the topic does not exist; required.
	Partitions func() int32
	// TopicPartitions returns the partition count of a topic, 0 if it does
	// not exist; required. AddPartitionsToTxn refuses unknown partitions,
	// and markers are not sent to partitions that no longer exist.
	TopicPartitions func(topic string) int32
	// MarkerRetryBackoff is the pause before markers that failed are sent
	// again; 0 means 100 ms.
	MarkerRetryBackoff time.Duration
}

func (d *Deps) fill() error {
	if d.ProducerIDs == nil || d.Markers == nil || d.Partitions == nil || d.TopicPartitions == nil {
		return errors.New("txn: a producer id allocator, a marker writer and the partition counts are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.MarkerRetryBackoff <= 0 {
		d.MarkerRetryBackoff = 100 * time.Millisecond
	}
	return nil
}
