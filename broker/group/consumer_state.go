package group

// A consumer group's state in __consumer_offsets: one record per group,
// Sediment's own (key version 1000, the group id as in Kafka's keys; the
// value a JSON object with a version field "v"). Kafka spreads the same state
// over records of key versions 3 to 8; one record keeps a group's writes
// atomic here, and a loader skips what it does not know, so neither
// broker misreads the other's records.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const consumerKeyVersion = 1000

func consumerKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: consumerKeyVersion, Group: group}
	return k.AppendTo(nil)
}

type consumerRecord struct {
	V           int            `json:"v"`
	Epoch       int32          `json:"epoch"`
	AssignEpoch int32          `json:"assignment_epoch"`
	Assignor    string         `json:"assignor"`
	EmptySince  int64          `json:"empty_since_ms,omitempty"`
	Members     []memberRecord `json:"members"`
}

type memberRecord struct {
	ID               string             `json:"id"`
	InstanceID       *string            `json:"instance_id,omitempty"`
	RackID           *string            `json:"rack_id,omitempty"`
	ClientID         string             `json:"client_id"`
	ClientHost       string             `json:"client_host"`
	Topics           []string           `json:"topics,omitempty"`
	Regex            *string            `json:"regex,omitempty"`
	Assignor         string             `json:"assignor,omitempty"`
	RebalanceTimeout int64              `json:"rebalance_timeout_ms"`
	Epoch            int32              `json:"epoch"`
	PrevEpoch        int32              `json:"previous_epoch"`
	Assigned         map[string][]int32 `json:"assigned"`
	Revoking         map[string][]int32 `json:"revoking,omitempty"`
	Target           map[string][]int32 `json:"target"`
	Left             bool               `json:"left,omitempty"`
}

func encodeAssignment(a assignment) map[string][]int32 {
	out := make(map[string][]int32, len(a))
	for t, ps := range a {
		out[base64.RawURLEncoding.EncodeToString(t[:])] = ps
	}
	return out
}

func decodeAssignment(m map[string][]int32) (assignment, error) {
	out := assignment{}
	for s, ps := range m {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) != 16 {
			return nil, fmt.Errorf("topic id %q", s)
		}
		var id [16]byte
		copy(id[:], b)
		for _, p := range ps {
			out.add(id, p)
		}
	}
	return out, nil
}

// consumerRecordLocked is the group's state record as of now (a tombstone
// once it is no consumer group).
func (g *group) consumerRecordLocked() kv {
	if g.kind != kindConsumer {
		return kv{key: consumerKey(g.id)}
	}
	cg := g.cg
	r := consumerRecord{V: 1, Epoch: cg.epoch, AssignEpoch: cg.assignEpoch, Assignor: cg.assignor, Members: []memberRecord{}}
	if len(cg.members) == 0 {
		r.EmptySince = g.stateSince.UnixMilli()
	}
	for _, m := range cg.members {
		r.Members = append(r.Members, memberRecord{ID: m.id, InstanceID: m.instanceID, RackID: m.rackID,
			ClientID: m.clientID, ClientHost: m.clientHost, Topics: m.topics, Regex: m.regex, Assignor: m.assignor,
			RebalanceTimeout: m.rebalanceTimeout.Milliseconds(), Epoch: m.epoch, PrevEpoch: m.prevEpoch,
			Assigned: encodeAssignment(m.assigned), Revoking: encodeAssignment(m.revoking),
			Target: encodeAssignment(cg.target[m.id]), Left: m.left})
	}
	b, _ := json.Marshal(r) // plain data: cannot fail
	return kv{key: consumerKey(g.id), value: b}
}

// applyConsumer loads a consumer group's state record.
func applyConsumer(get func(string) *group, off int64, key, value []byte) error {
	var k kmsg.GroupMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: consumer group key at %d: %v", errBadRecord, off, err)
	}
	g := get(k.Group)
	if value == nil {
		if g.kind == kindConsumer {
			g.kind, g.cg = kindClassic, nil
		}
		g.consumerPersisted = false
		return nil
	}
	var r consumerRecord
	if err := json.Unmarshal(value, &r); err != nil || r.V != 1 {
		return fmt.Errorf("%w: consumer group %q at %d: version %d, %v", errBadRecord, k.Group, off, r.V, err)
	}
	cg := newConsumerGroup()
	cg.epoch, cg.assignEpoch, cg.assignor = r.Epoch, r.AssignEpoch, r.Assignor
	for _, mr := range r.Members {
		m := &cmember{id: mr.ID, instanceID: mr.InstanceID, rackID: mr.RackID, clientID: mr.ClientID,
			clientHost: mr.ClientHost, topics: mr.Topics, regex: mr.Regex, assignor: mr.Assignor,
			rebalanceTimeout: time.Duration(mr.RebalanceTimeout) * time.Millisecond,
			epoch:            mr.Epoch, prevEpoch: mr.PrevEpoch, left: mr.Left}
		var err error
		if m.assigned, err = decodeAssignment(mr.Assigned); err != nil {
			return fmt.Errorf("%w: consumer group %q: %v", errBadRecord, k.Group, err)
		}
		if m.revoking, err = decodeAssignment(mr.Revoking); err != nil {
			return fmt.Errorf("%w: consumer group %q: %v", errBadRecord, k.Group, err)
		}
		t, err := decodeAssignment(mr.Target)
		if err != nil {
			return fmt.Errorf("%w: consumer group %q: %v", errBadRecord, k.Group, err)
		}
		cg.target[m.id] = t
		cg.members[m.id] = m
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
	}
	g.kind, g.cg, g.consumerPersisted = kindConsumer, cg, true
	g.protocolType = "consumer"
	g.members, g.static = map[string]*member{}, map[string]string{}
	if r.EmptySince > 0 {
		g.stateSince = time.UnixMilli(r.EmptySince)
	}
	return nil
}
