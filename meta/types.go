package meta

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Sentinel errors. Test with errors.Is; they may be wrapped with detail.
var (
	ErrTopicExists        = errors.New("meta: topic already exists")
	ErrTopicNotFound      = errors.New("meta: topic not found")
	ErrPartitionNotFound  = errors.New("meta: partition not found")
	ErrConflict           = errors.New("meta: revision conflict")
	ErrBrokerIDInUse      = errors.New("meta: broker id in use by a live session")
	ErrInvalid            = errors.New("meta: invalid argument")
	ErrClosed             = errors.New("meta: closed")
	ErrUnsupportedVersion = errors.New("meta: unsupported value version")
)

// TopicID is a Kafka topic UUID. Its text form is Kafka's: 22 characters of URL-safe base64
// without padding (what kadm and kafka-topics print).
type TopicID [16]byte

// NewTopicID returns a random topic id. Like Kafka's Uuid.randomUuid it never returns the
// zero id or the reserved id 1 (Kafka's metadata topic), nor one whose text starts with '-'
// (it would read as a flag on command lines).
func NewTopicID() TopicID {
	for {
		var id TopicID
		if _, err := rand.Read(id[:]); err != nil {
			// crypto/rand.Read does not fail on supported platforms (Go 1.24+ crashes instead).
			panic(err)
		}
		if id.IsZero() || id == (TopicID{15: 1}) || id.String()[0] == '-' {
			continue
		}
		return id
	}
}

// ParseTopicID parses the Kafka text form of a topic id.
func ParseTopicID(s string) (TopicID, error) {
	var id TopicID
	if len(s) != 22 {
		return id, fmt.Errorf("%w: topic id %q is not 22 characters", ErrInvalid, s)
	}
	n, err := base64.RawURLEncoding.Decode(id[:], []byte(s))
	if err != nil || n != len(id) {
		return TopicID{}, fmt.Errorf("%w: topic id %q is not URL-safe base64 of 16 bytes", ErrInvalid, s)
	}
	return id, nil
}

// IsZero reports whether id is the all-zero id, which Kafka uses for "no topic id".
func (id TopicID) IsZero() bool { return id == TopicID{} }

// String returns the Kafka text form.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// MarshalText implements encoding.TextMarshaler (JSON values carry the Kafka text form).
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *TopicID) UnmarshalText(b []byte) error {
	v, err := ParseTopicID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// newClusterID returns a Kafka-style cluster id: a random id in Kafka's text form.
func newClusterID() string { return NewTopicID().String() }

// BrokerInfo is a live broker as registered under brokers/<id>.
type BrokerInfo struct {
	NodeID    int32             `json:"node_id"`
	Host      string            `json:"host"`
	Port      int32             `json:"port"`
	Rack      string            `json:"rack,omitempty"`
	Listeners map[string]string `json:"listeners,omitempty"` // listener name -> host:port
	// DirectoryID identifies the broker's data directory (Kafka's
	// meta.properties directory.id). A registration carrying the same id as
	// a new one is a dead incarnation of the same broker: the directory is
	// locked by the live process, so the newcomer may take the id over.
	DirectoryID string `json:"directory_id,omitempty"`
	// ShuttingDown is set by a broker in controlled shutdown: the controller
	// moves leadership away from it and drops it from every ISR.
	ShuttingDown bool `json:"shutting_down,omitempty"`
	// Epoch is the registration's etcd create revision (Kafka's broker
	// epoch): it changes whenever the broker registers anew. Set by reads.
	Epoch int64 `json:"-"`
	// Lease is the registration's lease, set by reads (see RevokeLease).
	Lease int64 `json:"-"`
}

func (b BrokerInfo) clone() BrokerInfo {
	b.Listeners = maps.Clone(b.Listeners)
	return b
}

// Topic is the value of topics/<name>.
type Topic struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Partitions [][]int32         `json:"partitions"`        // replica assignment per partition index
	Configs    map[string]string `json:"configs,omitempty"` // overrides only, Kafka names
	Revision   int64             `json:"-"`                 // etcd ModRevision when read (for CAS)
}

func (t Topic) clone() Topic {
	if t.Partitions != nil {
		ps := make([][]int32, len(t.Partitions))
		for i, r := range t.Partitions {
			ps[i] = slices.Clone(r)
		}
		t.Partitions = ps
	}
	t.Configs = maps.Clone(t.Configs)
	return t
}

// PartitionState is the value of partitions/<topic-id>/<p>: who leads and who is in sync.
// Every change is a compare-and-swap on Revision, so a deposed leader or controller holding an
// old read can never overwrite newer state.
type PartitionState struct {
	Leader         int32   `json:"leader"` // -1: no leader
	LeaderEpoch    int32   `json:"leader_epoch"`
	ISR            []int32 `json:"isr"`
	PartitionEpoch int32   `json:"partition_epoch"`
	// AddingReplicas and RemovingReplicas describe a reassignment in
	// progress (KIP-455): the topic's assignment holds the union of old and
	// new replicas until every new one is in the ISR.
	AddingReplicas   []int32 `json:"adding,omitempty"`
	RemovingReplicas []int32 `json:"removing,omitempty"`
	Revision         int64   `json:"-"` // etcd ModRevision when read (for CAS)
}

// Reassigning reports whether a reassignment is in progress.
func (p PartitionState) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

func (p PartitionState) clone() PartitionState {
	p.ISR = slices.Clone(p.ISR)
	p.AddingReplicas = slices.Clone(p.AddingReplicas)
	p.RemovingReplicas = slices.Clone(p.RemovingReplicas)
	return p
}

// ValidTopicName reports whether name is a legal Kafka topic name: 1..249 characters of
// [a-zA-Z0-9._-], not "." or "..". Legal names are also safe etcd key segments.
func ValidTopicName(name string) bool {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
