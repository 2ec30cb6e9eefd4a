package broker

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sedimentio/sediment/broker/group"
	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/broker/txn"
	"github.com/sedimentio/sediment/security"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/tier"
)

// Config is the broker's static configuration. cmd/sediment fills it from
// flags and the environment; nothing in this package reads either.
type Config struct {
	NodeID    int32
	Listen    string // host:port of the Kafka listener
	Advertise string // host:port clients are told to use; empty = Listen
	Rack      string // broker.rack
	DataDir   string // partition directories live directly below it

	AutoCreateTopics         bool  // auto.create.topics.enable
	NumPartitions            int32 // num.partitions
	DefaultReplicationFactor int16 // default.replication.factor
	MinInsyncReplicas        int   // min.insync.replicas

	// ReplicaLagTimeMax is replica.lag.time.max.ms: a follower that has not
	// caught up for this long leaves the ISR.
	ReplicaLagTimeMax time.Duration
	// InterBrokerListener names the listener followers fetch from
	// (inter.broker.listener.name).
	InterBrokerListener string
	// AutoLeaderRebalance is auto.leader.rebalance.enable;
	// LeaderImbalanceCheckInterval is leader.imbalance.check.interval.seconds.
	AutoLeaderRebalance          bool
	LeaderImbalanceCheckInterval time.Duration
	// ControlledShutdownTimeout bounds how long a stopping broker waits for
	// the controller to move its leaderships away.
	ControlledShutdownTimeout time.Duration

	// SocketRequestMaxBytes bounds a request frame (socket.request.max.bytes).
	// Nothing larger is ever allocated for a frame.
	SocketRequestMaxBytes int32
	// MaxInflightPerConn bounds pipelined requests a connection may have
	// decoded but not yet answered.
	MaxInflightPerConn int

	// Log holds the broker-level defaults of the topic configs
	// (log.segment.bytes, log.retention.ms, ...).
	Log segment.Config

	// RetentionCheckInterval is log.retention.check.interval.ms; it also
	// drives segment.ms rolls.
	RetentionCheckInterval time.Duration
	// DirectoryID identifies the data directory (meta.properties); it lets a
	// restarted broker take over its dead predecessor's registration.
	DirectoryID string
	// SessionTTL is broker.session.timeout.ms: a broker whose lease lapses
	// this long is considered gone.
	SessionTTL time.Duration
	// TierUpload is the template of each partition's uploader config (the
	// partition fields are filled in per partition); TierUploadInterval is
	// how often a leader looks for sealed segments to upload.
	TierUpload         tier.UploaderConfig
	TierUploadInterval time.Duration
	// LocalRetentionMs and LocalRetentionBytes are log.local.retention.ms
	// and log.local.retention.bytes, the defaults of the topic configs
	// local.retention.*: -2 means the topic's retention.*, -1 unlimited.
	LocalRetentionMs, LocalRetentionBytes int64
	// TierCacheBytes bounds the on-disk chunk cache of remote reads
	// (<DataDir>/tier-cache).
	TierCacheBytes int64
	// RemoteFetchMaxWait is remote.fetch.max.wait.ms: how long a fetch waits
	// for its reads from the tier before answering without them.
	RemoteFetchMaxWait time.Duration
	// ShutdownTimeout bounds how long in-flight requests may take to finish.
	ShutdownTimeout time.Duration

	// LogCleaner is the log cleaner of compacted topics (log.cleaner.enable,
	// .threads, .dedupe.buffer.size, .backoff.ms); the topic configs' broker
	// defaults (log.cleaner.min.cleanable.ratio, ...) are in Log.
	LogCleaner partition.CleanerConfig

	// Group is the group coordinator's configuration (group.*, offsets.*).
	Group group.Config
	// OffsetsTopicPartitions, OffsetsTopicReplicationFactor and
	// OffsetsTopicSegmentBytes are offsets.topic.num.partitions,
	// offsets.topic.replication.factor and offsets.topic.segment.bytes: the
	// shape of __consumer_offsets when the first FindCoordinator creates it
	// (the replication factor is capped by the live brokers then).
	OffsetsTopicPartitions        int32
	OffsetsTopicReplicationFactor int16
	OffsetsTopicSegmentBytes      int64

	// Txn is the transaction coordinator's configuration
	// (transaction.state.log.*, transaction.max.timeout.ms,
	// transactional.id.expiration.ms, the reapers' intervals); the shape of
	// __transaction_state when the first FindCoordinator of a transactional
	// id creates it is there too.
	Txn txn.Config
	// TxnVerification is transaction.partition.verification.enable: a
	// partition leader verifies with the transaction coordinator that a
	// transaction includes the partition before its first transactional
	// batch there (KIP-890 part 1).
	TxnVerification bool

	// Authorizer is authorizer.class.name: "" for none (every request is
	// allowed) or AuthorizerACL for Kafka's ACL authorizer over the ACLs
	// stored in etcd.
	Authorizer string
	// SuperUsers is super.users, as principals ("User:admin"): allowed
	// everything. It must include the inter-broker principal.
	SuperUsers []string
	// AllowEveryoneIfNoACLFound is allow.everyone.if.no.acl.found: an action
	// on a resource no ACL applies to is allowed.
	AllowEveryoneIfNoACLFound bool

	// Security is the listeners and authentication (listeners.go).
	Security SecurityConfig
}

// DefaultConfig is one broker with Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		NodeID:                        1,
		Listen:                        "127.0.0.1:9092",
		DataDir:                       "./data",
		AutoCreateTopics:              true,
		NumPartitions:                 1,
		DefaultReplicationFactor:      1,
		MinInsyncReplicas:             1,
		ReplicaLagTimeMax:             30 * time.Second,
		InterBrokerListener:           "PLAINTEXT",
		ControlledShutdownTimeout:     30 * time.Second,
		SocketRequestMaxBytes:         100 << 20,
		MaxInflightPerConn:            64,
		Log:                           segment.DefaultConfig(),
		RetentionCheckInterval:        5 * time.Minute,
		ShutdownTimeout:               10 * time.Second,
		SessionTTL:                    9 * time.Second,
		TierUpload:                    partition.DefaultConfig().TierUpload,
		TierUploadInterval:            5 * time.Second,
		RemoteFetchMaxWait:            500 * time.Millisecond,
		TierCacheBytes:                1 << 30,
		LocalRetentionMs:              -2,
		LocalRetentionBytes:           -2,
		AutoLeaderRebalance:           true,
		LeaderImbalanceCheckInterval:  5 * time.Minute,
		Group:                         group.DefaultConfig(),
		OffsetsTopicPartitions:        50,
		OffsetsTopicReplicationFactor: 3,
		OffsetsTopicSegmentBytes:      100 << 20,
		LogCleaner:                    partition.DefaultCleanerConfig(),
		Txn:                           txn.DefaultConfig(),
		TxnVerification:               true,
		Security:                      DefaultSecurityConfig(),
	}
}

// Validate names the first problem it finds.
func (c Config) Validate() error {
	if c.NodeID < 0 {
		return fmt.Errorf("broker: node id %d is negative", c.NodeID)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("broker: listen address %q: %w", c.Listen, err)
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			return fmt.Errorf("broker: advertise address %q: %w", c.Advertise, err)
		}
	}
	if c.DataDir == "" {
		return errors.New("broker: data dir is empty")
	}
	if c.NumPartitions < 1 {
		return fmt.Errorf("broker: num.partitions %d must be at least 1", c.NumPartitions)
	}
	if c.DefaultReplicationFactor < 1 {
		return fmt.Errorf("broker: default.replication.factor %d must be at least 1", c.DefaultReplicationFactor)
	}
	if c.MinInsyncReplicas < 1 {
		return fmt.Errorf("broker: min.insync.replicas %d must be at least 1", c.MinInsyncReplicas)
	}
	if c.AutoLeaderRebalance && c.LeaderImbalanceCheckInterval <= 0 {
		return fmt.Errorf("broker: leader.imbalance.check.interval %v must be positive", c.LeaderImbalanceCheckInterval)
	}
	if c.LocalRetentionMs < -2 || c.LocalRetentionBytes < -2 {
		return fmt.Errorf("broker: log.local.retention.ms %d / log.local.retention.bytes %d: -2 (as retention.*), -1 (unlimited) or >= 0", c.LocalRetentionMs, c.LocalRetentionBytes)
	}
	if c.RemoteFetchMaxWait <= 0 {
		return fmt.Errorf("broker: remote.fetch.max.wait.ms %v must be positive", c.RemoteFetchMaxWait)
	}
	if c.SessionTTL < time.Second {
		return fmt.Errorf("broker: broker.session.timeout.ms %v must be at least 1s", c.SessionTTL)
	}
	if c.InterBrokerListener == "" {
		return errors.New("broker: inter-broker listener name is empty")
	}
	if err := c.validateSecurity(); err != nil {
		return err
	}
	if c.SocketRequestMaxBytes < 1024 {
		return fmt.Errorf("broker: socket.request.max.bytes %d is below 1024", c.SocketRequestMaxBytes)
	}
	if c.MaxInflightPerConn < 1 {
		return fmt.Errorf("broker: max in-flight requests per connection %d must be at least 1", c.MaxInflightPerConn)
	}
	if err := c.Log.Validate(); err != nil {
		return fmt.Errorf("broker: log defaults: %w", err)
	}
	if err := c.partitionConfig().Validate(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := c.Group.Validate(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := c.Txn.Validate(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if c.Txn.NumPartitions > maxPartitionsPerTopic {
		return fmt.Errorf("broker: transaction.state.log.num.partitions %d must be at most %d", c.Txn.NumPartitions, maxPartitionsPerTopic)
	}
	switch {
	case c.OffsetsTopicPartitions < 1 || c.OffsetsTopicPartitions > maxPartitionsPerTopic:
		return fmt.Errorf("broker: offsets.topic.num.partitions %d must be between 1 and %d", c.OffsetsTopicPartitions, maxPartitionsPerTopic)
	case c.OffsetsTopicReplicationFactor < 1:
		return fmt.Errorf("broker: offsets.topic.replication.factor %d must be at least 1", c.OffsetsTopicReplicationFactor)
	case c.OffsetsTopicSegmentBytes < 1024:
		return fmt.Errorf("broker: offsets.topic.segment.bytes %d must be at least 1024", c.OffsetsTopicSegmentBytes)
	}
	return nil
}

func (c Config) advertised() string {
	if c.Advertise != "" {
		return c.Advertise
	}
	return c.Listen
}

// partitionConfig is the partition layer's share of the configuration.
func (c Config) partitionConfig() partition.Config {
	pc := partition.DefaultConfig()
	pc.NodeID = c.NodeID
	pc.DataDir = c.DataDir
	pc.ReplicaLagTimeMax = c.ReplicaLagTimeMax
	pc.RetentionCheckInterval = c.RetentionCheckInterval
	pc.TierUpload = c.TierUpload
	pc.TierUploadInterval = c.TierUploadInterval
	pc.TierCacheBytes = c.TierCacheBytes
	pc.Cleaner = c.LogCleaner
	return pc
}

// Listener is one Kafka listener (an entry of listeners, with its
// advertised.listeners entry and its listener.security.protocol.map
// protocol).
type Listener struct {
	Name      string // e.g. PLAINTEXT, INTERNAL
	Protocol  string // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	Addr      string // host:port to listen on
	Advertise string // host:port clients are told; empty = the bound address
}

// The security protocols of listener.security.protocol.map.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

func (l Listener) tls() bool {
	return l.Protocol == ProtocolSSL || l.Protocol == ProtocolSASLSSL
}

func (l Listener) sasl() bool {
	return l.Protocol == ProtocolSASLPlaintext || l.Protocol == ProtocolSASLSSL
}

// SecurityConfig is the authentication half of the broker's security: its
// listeners, TLS (ssl.*), SASL (sasl.*) and how it authenticates to other
// brokers.
type SecurityConfig struct {
	// Listeners replaces Listen/Advertise when set; the first listener is
	// what Addr reports.
	Listeners []Listener
	// TLS names the PEM files of SSL and SASL_SSL listeners and of
	// inter-broker TLS connections (ssl.keystore/truststore, ssl.client.auth).
	TLS security.TLSConfig
	// PrincipalMappingRules is ssl.principal.mapping.rules.
	PrincipalMappingRules string
	// SASLMechanisms is sasl.enabled.mechanisms.
	SASLMechanisms []security.Mechanism
	// MaxReauth is connections.max.reauth.ms: a SASL session lasts this
	// long before the client must re-authenticate (KIP-368); 0 = forever.
	MaxReauth time.Duration
	// InterBrokerMechanism (sasl.mechanism.inter.broker.protocol),
	// InterBrokerUser and InterBrokerPassword are this broker's
	// credentials on a SASL inter-broker listener.
	InterBrokerMechanism security.Mechanism
	InterBrokerUser      string
	InterBrokerPassword  string
}

// DefaultSecurityConfig is one PLAINTEXT listener (from Listen), PLAIN and
// both SCRAM mechanisms enabled, no re-authentication.
func DefaultSecurityConfig() SecurityConfig {
	return SecurityConfig{
		TLS:                   security.DefaultTLSConfig(),
		PrincipalMappingRules: security.DefaultPrincipalMappingRules,
		SASLMechanisms:        []security.Mechanism{security.Plain, security.ScramSHA256, security.ScramSHA512},
		InterBrokerMechanism:  security.ScramSHA512,
	}
}

// listeners is the configured listeners, or the one PLAINTEXT listener
// Listen and Advertise describe.
func (c Config) listeners() []Listener {
	if len(c.Security.Listeners) > 0 {
		return c.Security.Listeners
	}
	return []Listener{{Name: ProtocolPlaintext, Protocol: ProtocolPlaintext, Addr: c.Listen, Advertise: c.Advertise}}
}

// interBroker is the inter-broker listener's configuration.
func (c Config) interBroker() (Listener, bool) {
	for _, l := range c.listeners() {
		if l.Name == c.InterBrokerListener {
			return l, true
		}
	}
	return Listener{}, false
}

func (c Config) validateSecurity() error {
	ls := c.listeners()
	names := map[string]bool{}
	usesTLS, usesSASL := false, false
	for _, l := range ls {
		if l.Name == "" {
			return errors.New("broker: a listener has no name")
		}
		if names[l.Name] {
			return fmt.Errorf("broker: listener %s is defined twice", l.Name)
		}
		names[l.Name] = true
		switch l.Protocol {
		case ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL:
		default:
			return fmt.Errorf("broker: listener %s: unknown security protocol %q (want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", l.Name, l.Protocol)
		}
		if _, _, err := net.SplitHostPort(l.Addr); err != nil {
			return fmt.Errorf("broker: listener %s address %q: %w", l.Name, l.Addr, err)
		}
		if l.Advertise != "" {
			if _, _, err := net.SplitHostPort(l.Advertise); err != nil {
				return fmt.Errorf("broker: listener %s advertised address %q: %w", l.Name, l.Advertise, err)
			}
		}
		usesTLS = usesTLS || l.tls()
		usesSASL = usesSASL || l.sasl()
	}
	ib, ok := c.interBroker()
	if !ok {
		return fmt.Errorf("broker: inter.broker.listener.name %s is not a listener", c.InterBrokerListener)
	}
	if usesTLS {
		if err := c.Security.TLS.Validate(); err != nil {
			return fmt.Errorf("broker: a listener uses TLS: %w", err)
		}
	}
	if ib.tls() && c.Security.TLS.CAFile == "" {
		return fmt.Errorf("broker: inter-broker listener %s uses TLS: --ssl-ca-file must name the CA that signed the brokers' certificates", ib.Name)
	}
	if usesSASL {
		if len(c.Security.SASLMechanisms) == 0 {
			return errors.New("broker: a listener uses SASL but no mechanism is enabled")
		}
	}
	if ib.sasl() {
		if c.Security.InterBrokerUser == "" {
			return fmt.Errorf("broker: inter-broker listener %s uses SASL: set the inter-broker SASL user and password", ib.Name)
		}
		m := c.Security.InterBrokerMechanism
		if m != security.Plain && !m.IsScram() {
			return fmt.Errorf("broker: sasl.mechanism.inter.broker.protocol %q is not PLAIN or SCRAM", m)
		}
	}
	if c.Security.MaxReauth < 0 {
		return fmt.Errorf("broker: connections.max.reauth.ms %v is negative", c.Security.MaxReauth)
	}
	if _, err := security.ParsePrincipalMappingRules(c.Security.PrincipalMappingRules); err != nil {
		return fmt.Errorf("broker: ssl.principal.mapping.rules: %w", err)
	}
	return nil
}
