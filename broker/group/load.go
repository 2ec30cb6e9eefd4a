package group

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// load reads the shard's partition from its log start to its log end (as
// of becoming leader) and rebuilds the groups and offsets it holds: the last
// record of each key wins, a tombstone deletes. Then the shard serves, and
// its retention loop starts.
func (sh *shard) load() {
	start := time.Now()
	groups := map[string]*group{}
	get := func(id string) *group {
		g := groups[id]
		if g == nil {
			g = newGroup(sh, id, sh.c.now())
			groups[id] = g
		}
		return g
	}
	// Offsets of open transactions, by producer: a marker resolves them
	// (Kafka's replay of transactional offset commits and end markers).
	txn := newTxnState()
	apply := func(batch batchInfo, off int64, key, value []byte) error {
		v, ok := keyVersion(key)
		if !ok {
			return fmt.Errorf("%w: key of %d bytes at offset %d", errBadRecord, len(key), off)
		}
		switch v {
		case 0, 1:
			return applyOffset(get, &txn, batch, off, key, value)
		case 2:
			return sh.applyGroup(get, key, value)
		case consumerKeyVersion:
			return applyConsumer(get, off, key, value)
		default:
			// Records of kinds this broker does not know (newer Kafka
			// coordinators) are skipped, as Kafka skips unknown versions.
			return nil
		}
	}
	marker := func(batch batchInfo, commit bool) error {
		t := txn.takeLocked(batch.producerID, batch.producerEpoch)
		if t != nil && commit {
			for id, offs := range t.groups {
				get(id).materializeLocked(offs)
			}
		}
		return nil
	}
	log := sh.p.Log()
	off, end := log.LogStartOffset(), log.LogEndOffset()
	var records int
	for off < end && sh.ctx.Err() == nil {
		sl, err := log.Read(off, 1<<20, end, true)
		if err != nil {
			sh.c.log.Error("loading groups failed", "partition", sh.p.String(), "offset", off, "err", err)
			return
		}
		b, err := sl.ReadAll()
		sl.Release()
		if err != nil {
			sh.c.log.Error("loading groups failed", "partition", sh.p.String(), "offset", off, "err", err)
			return
		}
		if len(b) == 0 {
			break // the rest is a gap (compaction) up to the end
		}
		next, err := decodeBatches(b, func(batch batchInfo, o int64, key, value []byte) error {
			records++
			return apply(batch, o, key, value)
		}, marker)
		if err != nil {
			// A record this coordinator cannot read would lose groups or
			// offsets if skipped silently: stay unloaded (the partition
			// answers COORDINATOR_LOAD_IN_PROGRESS) and say why.
			sh.c.log.Error("loading groups failed: undecodable record; the partition's groups stay unavailable",
				"partition", sh.p.String(), "offset", off, "err", err)
			return
		}
		off = next
	}
	if sh.ctx.Err() != nil {
		return
	}
	sh.mu.Lock()
	// Markers committed while the shard loaded resolve what the log
	// replayed, before anyone sees the groups; from now on
	// CompleteTransaction resolves directly.
	sh.txnMu.Lock()
	txn.early = sh.txn.early
	txn.resolveEarlyLocked(get)
	txn.seqs = sh.txn.seqs
	txn.loaded = true
	sh.txn = txn
	pending := len(txn.open)
	sh.txnMu.Unlock()
	for id, g := range groups {
		if g.kind == kindClassic && len(g.members) == 0 && len(g.offsets) == 0 && g.protocolType == "" &&
			len(txn.pendingLocked(id)) == 0 {
			continue // deleted (a group with offsets pending in a transaction stays, as in Kafka)
		}
		g.mu.Lock()
		switch {
		case g.kind == kindConsumer:
			if len(g.cg.members) > 0 {
				g.setStateLocked(stateStable)
			}
			for _, m := range g.cg.members {
				g.touchConsumerLocked(m) // members must heartbeat to this coordinator
			}
		case len(g.members) > 0:
			g.setStateLocked(stateStable)
			for _, m := range g.members {
				g.touchLocked(m)
			}
		}
		g.mu.Unlock()
		sh.groups[id] = g
	}
	n := len(sh.groups)
	sh.mu.Unlock()
	sh.loaded.Store(true)
	sh.c.log.Info("loaded groups", "partition", sh.p.String(), "leader_epoch", sh.epoch, "groups", n,
		"records", records, "open_transactions", pending, "took", time.Since(start))
	sh.retain()
}

// applyOffset replays an offset commit record: a plain one is the group's
// committed offset, one in a transactional batch is pending in its
// producer's transaction, a tombstone deletes both.
func applyOffset(get func(string) *group, txn *txnState, batch batchInfo, off int64, key, value []byte) error {
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: offset key at %d: %v", errBadRecord, off, err)
	}
	g := get(k.Group)
	tp := topicPartition{k.Topic, k.Partition}
	if value == nil {
		delete(g.offsets, tp)
		txn.dropLocked(k.Group, []topicPartition{tp})
		return nil
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return fmt.Errorf("%w: offset value at %d: %v", errBadRecord, off, err)
	}
	epoch := v.LeaderEpoch
	if v.Version < 3 {
		epoch = -1
	}
	o := offset{offset: v.Offset, leaderEpoch: epoch, metadata: v.Metadata,
		commitTime: time.UnixMilli(v.CommitTimestamp), logOffset: off}
	if batch.transactional && batch.producerID >= 0 {
		txn.addLocked(batch.producerID, batch.producerEpoch, k.Group, tp, o)
		return nil
	}
	g.offsets[tp] = o
	return nil
}

func (sh *shard) applyGroup(get func(string) *group, key, value []byte) error {
	var k kmsg.GroupMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return fmt.Errorf("%w: group key: %v", errBadRecord, err)
	}
	g := get(k.Group)
	g.members = map[string]*member{}
	g.static = map[string]string{}
	g.classicPersisted = value != nil
	if value == nil {
		if g.kind == kindClassic {
			g.protocolType, g.protocol, g.leader = "", "", ""
		}
		return nil
	}
	g.kind, g.cg, g.consumerPersisted = kindClassic, nil, false
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return fmt.Errorf("%w: group value of %q: %v", errBadRecord, k.Group, err)
	}
	g.protocolType, g.generation = v.ProtocolType, v.Generation
	g.protocol, g.leader = deref(v.Protocol), deref(v.Leader)
	if v.Version >= 2 && v.CurrentStateTimestamp > 0 {
		g.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
	}
	for _, vm := range v.Members {
		m := &member{id: vm.MemberID, instanceID: vm.InstanceID, clientID: vm.ClientID, clientHost: vm.ClientHost,
			sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
			protocols:        []protocol{{name: g.protocol, metadata: vm.Subscription}},
			assignment:       vm.Assignment}
		if v.Version < 1 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// classicRecordsLocked are the records of a classic group's state: its
// metadata record, and a tombstone for the consumer group it was, if any.
func (g *group) classicRecordsLocked() []kv {
	out := []kv{g.groupRecordLocked()}
	if g.consumerPersisted {
		out = append(out, kv{key: consumerKey(g.id)})
		g.consumerPersisted = false
	}
	g.classicPersisted = true
	return out
}

// groupRecordLocked is the group's metadata record as of now.
func (g *group) groupRecordLocked() kv {
	v := kmsg.GroupMetadataValue{Version: groupValueVersion, ProtocolType: g.protocolType, Generation: g.generation,
		CurrentStateTimestamp: g.stateSince.UnixMilli()}
	if g.protocol != "" {
		v.Protocol = kmsg.StringPtr(g.protocol)
	}
	if g.leader != "" {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	for _, m := range g.members {
		v.Members = append(v.Members, kmsg.GroupMetadataValueMember{MemberID: m.id, InstanceID: m.instanceID,
			ClientID: m.clientID, ClientHost: m.clientHost,
			RebalanceTimeoutMillis: int32(m.rebalanceTimeout / time.Millisecond),
			SessionTimeoutMillis:   int32(m.sessionTimeout / time.Millisecond),
			Subscription:           m.metadataFor(g.protocol), Assignment: m.assignment})
	}
	return kv{key: groupKey(g.id), value: v.AppendTo(nil)}
}

// persistAsync writes the group's metadata record and logs a failure; for
// transitions nobody waits on (the group became empty).
func (g *group) persistAsync() {
	sh := g.sh
	w := sh.append(g.classicRecordsLocked())
	sh.c.wg.Go(func() {
		if code := sh.wait(sh.ctx, w); code != 0 && sh.ctx.Err() == nil {
			sh.c.log.Warn("writing group metadata failed", "group", g.id, "error_code", code)
		}
	})
}
