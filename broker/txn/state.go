package txn

import (
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is the state of a transactional id, with Kafka's numbering (the
// value written to __transaction_state).
type State int8

// The states of Kafka's TransactionMetadata.
const (
	Empty             State = 0 // no transaction; the producer may start one
	Ongoing           State = 1 // partitions were added; data may be written
	PrepareCommit     State = 2 // EndTxn(commit) written; markers pending
	PrepareAbort      State = 3 // EndTxn(abort), a fence or a timeout; markers pending
	CompleteCommit    State = 4 // markers written
	CompleteAbort     State = 5 // markers written
	Dead              State = 6 // being expired (a tombstone is being written); never on disk
	PrepareEpochFence State = 7 // in memory only: the epoch is bumped to fence a producer, an abort follows
)

func (s State) String() string { return kmsg.TransactionState(s).String() }

// parseState is the state of Kafka's name, as ListTransactions filters
// name them.
func parseState(name string) (State, bool) {
	for s := Empty; s <= PrepareEpochFence; s++ {
		if s.String() == name {
			return s, true
		}
	}
	return 0, false
}

// validPrevious lists, for each state, the states it may be entered from
// (Kafka's TransactionState.validPreviousStates).
var validPrevious = map[State][]State{
	Empty:             {Empty, CompleteCommit, CompleteAbort},
	Ongoing:           {Ongoing, Empty, CompleteCommit, CompleteAbort},
	PrepareCommit:     {Ongoing},
	PrepareAbort:      {Ongoing, PrepareEpochFence},
	CompleteCommit:    {PrepareCommit},
	CompleteAbort:     {PrepareAbort},
	Dead:              {Empty, CompleteCommit, CompleteAbort},
	PrepareEpochFence: {Ongoing},
}

func canTransition(from, to State) bool { return slices.Contains(validPrevious[to], from) }

const (
	noProducerID    = -1
	noProducerEpoch = -1
)

// epochExhausted: the epoch cannot be bumped again without risking the
// overflow Kafka guards against (it keeps the last value for fencing).
func epochExhausted(e int16) bool { return e >= math.MaxInt16-1 }

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (a TopicPartition) compare(b TopicPartition) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return int(a.Partition) - int(b.Partition)
}

// meta is what one __transaction_state value holds: the durable state of a
// transactional id. Values are copied, never shared: partitions is sorted
// and never modified in place.
type meta struct {
	producerID     int64
	prevProducerID int64 // Kafka's lastProducerId: the id before the last rotation
	nextProducerID int64 // KIP-890 part 2; kept as read
	epoch          int16
	timeoutMs      int32
	state          State
	partitions     []TopicPartition
	startMs        int64 // when the ongoing transaction began; -1 without one
	updateMs       int64
	clientTV       int16 // the client's transaction version (KIP-890)
}

func (m meta) has(tp TopicPartition) bool {
	_, ok := slices.BinarySearchFunc(m.partitions, tp, TopicPartition.compare)
	return ok
}

// withPartitions returns m's partitions and adds, sorted and deduplicated.
func (m meta) withPartitions(add []TopicPartition) []TopicPartition {
	out := make([]TopicPartition, 0, len(m.partitions)+len(add))
	out = append(out, m.partitions...)
	out = append(out, add...)
	slices.SortFunc(out, TopicPartition.compare)
	return slices.Compact(out)
}

// txn is one transactional id this coordinator holds.
//
// Its mu guards everything; it is never held while waiting for a write or
// for markers. A transition is written with writing set: requests meanwhile
// get CONCURRENT_TRANSACTIONS, and cur changes only once the write is
// committed, as Kafka's pendingState does.
type txn struct {
	id string

	mu      sync.Mutex
	cur     meta
	loaded  bool // cur was written (or read from the log), not just created
	writing bool // a transition is being written, or markers sent
	// settled is closed when writing ends (nil while it is false): requests
	// that would get CONCURRENT_TRANSACTIONS may wait on it instead.
	settled chan struct{}
	// lastEpoch is the epoch before the last bump by InitProducerId, so that
	// a retried InitProducerId gets the same answer (KIP-360); in memory
	// only, as in Kafka.
	lastEpoch int16
	removed   bool // expired and tombstoned: a new txn replaces it
}

func newTxn(id string, m meta) *txn {
	return &txn{id: id, cur: m, lastEpoch: noProducerEpoch}
}

// startWriting marks a transition of t in flight (t.mu held).
func (t *txn) startWriting() {
	if !t.writing {
		t.writing, t.settled = true, make(chan struct{})
	}
}

// stopWriting ends it (t.mu held) and wakes those waiting for t to settle.
func (t *txn) stopWriting() {
	if t.writing {
		t.writing = false
		close(t.settled)
		t.settled = nil
	}
}
