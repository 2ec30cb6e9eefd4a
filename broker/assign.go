package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sedimentio/sediment/meta"
)

// maxPartitionsPerTopic bounds what one request may create, so a hostile
// partition count cannot make the broker allocate without limit.
const maxPartitionsPerTopic = 10000

var legalTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// validateTopicName applies Kafka's rules.
func validateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > 249:
		return fmt.Errorf("topic name is %d characters long; the limit is 249", len(name))
	case !legalTopicName.MatchString(name):
		return fmt.Errorf("topic name %q contains characters other than ASCII alphanumerics, '.', '_' and '-'", name)
	}
	return nil
}

// assignReplicas spreads partitions' replicas round-robin over the live
// brokers, starting at a random broker so that leaders of many topics spread.
// With broker.rack set, brokers are ordered alternating between racks first,
// so a partition's consecutive replicas land on different racks whenever
// there are enough racks.
func assignReplicas(brokers []meta.BrokerInfo, first, n int32, rf int16) ([][]int32, error) {
	if int(rf) > len(brokers) {
		return nil, fmt.Errorf("replication factor %d is larger than the %d available brokers", rf, len(brokers))
	}
	ids := rackAlternating(brokers)
	start := rand.IntN(len(ids))
	out := make([][]int32, n)
	for i := range out {
		r := make([]int32, rf)
		for j := range r {
			r[j] = ids[(start+int(first)+i+j)%len(ids)]
		}
		out[i] = r
	}
	return out, nil
}

// rackAlternating lists broker ids taking one from each rack in turn (racks
// and brokers sorted), e.g. racks a:[1,2] b:[3] c:[4,5] give 1,3,4,2,5.
// Brokers without a rack form a rack of their own.
func rackAlternating(brokers []meta.BrokerInfo) []int32 {
	byRack := map[string][]int32{}
	for _, b := range brokers {
		byRack[b.Rack] = append(byRack[b.Rack], b.NodeID)
	}
	racks := make([]string, 0, len(byRack))
	for r, ids := range byRack {
		slices.Sort(ids)
		racks = append(racks, r)
	}
	slices.Sort(racks)
	var out []int32
	for i := 0; len(out) < len(brokers); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out
}

func initialStates(assign [][]int32) []meta.PartitionState {
	states := make([]meta.PartitionState, len(assign))
	for i, r := range assign {
		states[i] = meta.PartitionState{Leader: r[0], LeaderEpoch: 0, ISR: slices.Clone(r)}
	}
	return states
}

// topicError carries a Kafka error code and the message for the client.
type topicError struct {
	code int16
	msg  string
}

func (e *topicError) Error() string { return e.msg }

func newTopicError(k *kerr.Error, format string, args ...any) *topicError {
	return &topicError{code: k.Code, msg: fmt.Sprintf(format, args...)}
}

// topicSpec is a topic to create, as CreateTopics or auto-creation ask.
type topicSpec struct {
	name       string
	partitions int32 // -1: num.partitions
	rf         int16 // -1: default.replication.factor
	assignment [][]int32
	configs    map[string]string
}

// createTopic validates spec and, unless validateOnly, writes it to etcd and
// waits until this broker has opened its local partitions.
func (s *Server) createTopic(ctx context.Context, spec topicSpec, validateOnly bool) (meta.Topic, error) {
	if err := validateTopicName(spec.name); err != nil {
		return meta.Topic{}, newTopicError(kerr.InvalidTopicException, "%v", err)
	}
	if _, ok := s.cache.Topic(spec.name); ok {
		return meta.Topic{}, newTopicError(kerr.TopicAlreadyExists, "topic %q already exists", spec.name)
	}
	if err := s.validateTopicConfigs(spec.configs); err != nil {
		return meta.Topic{}, newTopicError(kerr.InvalidConfig, "%v", err)
	}
	brokers := s.cache.Brokers()
	var assign [][]int32
	if len(spec.assignment) > 0 {
		if spec.partitions != -1 || spec.rf != -1 {
			return meta.Topic{}, newTopicError(kerr.InvalidRequest, "both a replica assignment and partition count/replication factor were given")
		}
		if len(spec.assignment) > maxPartitionsPerTopic {
			return meta.Topic{}, newTopicError(kerr.InvalidPartitions, "%d partitions exceed the limit of %d", len(spec.assignment), maxPartitionsPerTopic)
		}
		if err := validateAssignment(spec.assignment, brokers); err != nil {
			return meta.Topic{}, newTopicError(kerr.InvalidReplicaAssignment, "%v", err)
		}
		assign = spec.assignment
	} else {
		n, rf := spec.partitions, spec.rf
		if n == -1 {
			n = s.cfg.NumPartitions
		}
		if rf == -1 {
			rf = s.cfg.DefaultReplicationFactor
		}
		if n < 1 || n > maxPartitionsPerTopic {
			return meta.Topic{}, newTopicError(kerr.InvalidPartitions, "partition count %d must be between 1 and %d", n, maxPartitionsPerTopic)
		}
		if rf < 1 {
			return meta.Topic{}, newTopicError(kerr.InvalidReplicationFactor, "replication factor %d must be at least 1", rf)
		}
		var err error
		if assign, err = assignReplicas(brokers, 0, n, rf); err != nil {
			return meta.Topic{}, newTopicError(kerr.InvalidReplicationFactor, "%v", err)
		}
	}
	t := meta.Topic{Name: spec.name, ID: meta.NewTopicID(), Partitions: assign, Configs: spec.configs}
	if validateOnly {
		return t, nil
	}
	rev, err := s.store.CreateTopic(ctx, t, initialStates(assign))
	if errors.Is(err, meta.ErrTopicExists) {
		return meta.Topic{}, newTopicError(kerr.TopicAlreadyExists, "topic %q already exists", spec.name)
	}
	if err != nil {
		s.log.Error("writing topic to etcd", "topic", spec.name, "err", err)
		return meta.Topic{}, newTopicError(kerr.KafkaStorageError, "storing the topic failed: %v", err)
	}
	if err := s.syncMeta(ctx, rev); err != nil {
		return t, newTopicError(kerr.RequestTimedOut, "topic created but not yet visible: %v", err)
	}
	s.log.Info("created topic", "topic", t.Name, "partitions", len(assign), "topic_id", t.ID.String())
	return t, nil
}

// syncMeta waits until the cache has applied rev and the local logs follow it.
func (s *Server) syncMeta(ctx context.Context, rev int64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.cache.WaitRevision(ctx, rev); err != nil {
		return err
	}
	return s.parts.Reconcile()
}

func validateAssignment(assign [][]int32, brokers []meta.BrokerInfo) error {
	live := map[int32]bool{}
	for _, b := range brokers {
		live[b.NodeID] = true
	}
	rf := len(assign[0])
	for i, r := range assign {
		if len(r) == 0 || len(r) != rf {
			return fmt.Errorf("partition %d has %d replicas; every partition needs the same non-zero count", i, len(r))
		}
		seen := map[int32]bool{}
		for _, id := range r {
			if !live[id] {
				return fmt.Errorf("partition %d names broker %d, which is not live", i, id)
			}
			if seen[id] {
				return fmt.Errorf("partition %d names broker %d twice", i, id)
			}
			seen[id] = true
		}
	}
	return nil
}

// updateTopic applies fn to the current topic and writes it with a
// compare-and-swap, retrying when another writer got there first.
func (s *Server) updateTopic(ctx context.Context, name string, fn func(t *meta.Topic) (map[int32]meta.PartitionState, error)) error {
	for attempt := 0; ; attempt++ {
		t, ok := s.cache.Topic(name)
		if !ok {
			return newTopicError(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
		}
		newParts, err := fn(&t)
		if errors.Is(err, errValidateOnly) {
			return nil
		}
		if err != nil {
			return err
		}
		rev, err := s.store.UpdateTopic(ctx, t, newParts)
		if errors.Is(err, meta.ErrConflict) && attempt < 5 {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			s.cache.WaitRevision(wctx, s.cache.Revision()+1)
			cancel()
			continue
		}
		if errors.Is(err, meta.ErrTopicNotFound) {
			return newTopicError(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
		}
		if err != nil {
			return newTopicError(kerr.KafkaStorageError, "updating topic %q failed: %v", name, err)
		}
		return s.syncMeta(ctx, rev)
	}
}

// errorCodeMessage splits an error into a Kafka code and message.
func errorCodeMessage(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	var te *topicError
	if errors.As(err, &te) {
		return te.code, &te.msg
	}
	msg := err.Error()
	return kerr.UnknownServerError.Code, &msg
}

// timeoutOr turns a request's timeout into a duration, with a default for
// zero or negative values.
func timeoutOr(ms int32) time.Duration {
	if ms <= 0 {
		return 30 * time.Second
	}
	return time.Duration(ms) * time.Millisecond
}

// errValidateOnly stops an update after validation; it reports success.
var errValidateOnly = errors.New("validate only")
