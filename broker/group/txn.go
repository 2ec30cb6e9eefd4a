package group

// Offsets committed in transactions (KIP-98, fenced by group membership as
// KIP-447 asks). TxnOffsetCommit writes ordinary offset-commit records, but
// in a transactional batch of the producer's id and epoch; they stay
// pending, invisible to OffsetFetch, until the transaction's marker reaches
// __consumer_offsets: a COMMIT makes them the groups' committed offsets
// (unless a plain commit written later in the log is there already), an
// ABORT drops them. A loader replays the same rules from the log.

import (
	"context"
	"errors"
	"math"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/segment"
)

// TxnOffsetCommit serves TxnOffsetCommit (versions 0-4 as Kafka 4 serves
// them; later versions add nothing this coordinator reads). From v3 the
// request names the member committing, fenced as OffsetCommit fences it:
// a classic group's generation (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS); a consumer group's member
// epoch, a stale one answered ILLEGAL_GENERATION as Kafka does for
// transactional commits. Generation -1 without a member commits unchecked
// (v0-2 always do). The offsets are appended at once as a transactional
// batch of the request's producer and stay pending until
// CompleteTransaction; the returned function waits until the batch is
// committed in __consumer_offsets and answers. A producer epoch the log
// has seen superseded is INVALID_PRODUCER_EPOCH.
func (c *Coordinator) TxnOffsetCommit(req *kmsg.TxnOffsetCommitRequest) func(context.Context) *kmsg.TxnOffsetCommitResponse {
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	wait := c.txnCommit(req, codes)
	return func(ctx context.Context) *kmsg.TxnOffsetCommitResponse {
		code := wait(ctx)
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for i, t := range req.Topics {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				if code != 0 {
					rp.ErrorCode = code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
}

// txnMember is who a TxnOffsetCommit says commits: nobody before v3.
type txnMember struct {
	generation int32
	memberID   string
	instanceID *string
}

func (c *Coordinator) txnCommit(req *kmsg.TxnOffsetCommitRequest, codes [][]int16) func(context.Context) int16 {
	now := func(code int16) func(context.Context) int16 { return func(context.Context) int16 { return code } }
	who := txnMember{generation: -1}
	if req.Version >= 3 {
		who = txnMember{generation: req.Generation, memberID: req.MemberID, instanceID: req.InstanceID}
	}
	switch {
	case req.Group == "":
		return now(kerr.InvalidGroupID.Code)
	case req.ProducerID < 0:
		return now(kerr.InvalidProducerIDMapping.Code)
	case req.ProducerEpoch < 0:
		return now(kerr.InvalidProducerEpoch.Code)
	}
	sh, g, code := c.commitGroup(req.Group, who.generation)
	if code != 0 {
		return now(code)
	}
	if code := g.txnCommitAllowedLocked(who); code != 0 {
		g.mu.Unlock()
		c.log.Debug("transactional offset commit refused", "group", req.Group, "member", who.memberID,
			"generation", who.generation, "producer_id", req.ProducerID, "version", req.Version, "error_code", code)
		return now(code)
	}
	var parts []commitPartition
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			cp := commitPartition{topic: t.Topic, partition: p.Partition, offset: p.Offset, leaderEpoch: -1,
				metadata: p.Metadata, i: i, j: j}
			if req.Version >= 2 {
				cp.leaderEpoch = p.LeaderEpoch
			}
			parts = append(parts, cp)
		}
	}
	at := c.now()
	records, staged := g.stageLocked(parts, at, c.cfg.OffsetMetadataMaxBytes, codes)
	if len(records) == 0 {
		g.mu.Unlock()
		return now(0)
	}
	// The batch's sequence is computed, the batch appended and its offsets
	// made pending in one critical section: the next batch of the producer
	// continues from this one, and a marker can only resolve offsets
	// already pending.
	sh.txnMu.Lock()
	seq := sh.txn.nextSequenceLocked(sh, req.ProducerID, req.ProducerEpoch)
	w := sh.appendBatch(encodeBatchAs(records, at, batchProducer{id: req.ProducerID, epoch: req.ProducerEpoch,
		sequence: seq, transactional: true}))
	if w.err == nil {
		sh.txn.seqs[req.ProducerID] = producerSeq{epoch: req.ProducerEpoch, next: addSequence(seq, len(records))}
		for k, s := range staged {
			s.o.logOffset = w.res.FirstOffset + int64(k)
			sh.txn.addLocked(req.ProducerID, req.ProducerEpoch, g.id, s.tp, s.o)
		}
	}
	sh.txnMu.Unlock()
	g.mu.Unlock()
	return func(ctx context.Context) int16 {
		wcode := txnWriteErrorCode(w.err)
		if wcode == 0 {
			wcode = sh.wait(ctx, w)
		}
		for _, s := range staged {
			codes[s.i][s.j] = wcode
		}
		if wcode == 0 {
			c.metrics.commits.Add(float64(len(staged)))
		}
		return 0
	}
}

// txnWriteErrorCode maps a failed transactional append to the code Kafka's
// coordinator answers: the producer's fencing passes through; the rest as
// for any write to __consumer_offsets.
func txnWriteErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, segment.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, segment.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	}
	return writeErrorCode(err)
}

// txnCommitAllowedLocked applies Kafka's rules for transactional commits
// (KIP-447): as for OffsetCommit, except that a request naming no member
// may commit to a group with members, and a stale member epoch of a
// consumer group is ILLEGAL_GENERATION (the producer's clients know no
// STALE_MEMBER_EPOCH for this API).
func (g *group) txnCommitAllowedLocked(who txnMember) int16 {
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if g.kind == kindConsumer {
		cg := g.cg
		m := cg.members[who.memberID]
		switch {
		case who.generation < 0 && len(cg.members) == 0:
			return 0
		case m == nil || m.left:
			return kerr.UnknownMemberID.Code
		case who.generation != m.epoch:
			return kerr.IllegalGeneration.Code
		}
		return 0
	}
	if who.generation < 0 && g.isEmptyLocked() {
		return 0 // an admin tool or a producer outside group management
	}
	if who.generation >= 0 || who.memberID != "" || who.instanceID != nil {
		if who.instanceID != nil {
			switch id := g.static[*who.instanceID]; {
			case id == "":
				return kerr.UnknownMemberID.Code
			case id != who.memberID:
				return kerr.FencedInstanceID.Code
			}
		} else if g.members[who.memberID] == nil {
			return kerr.UnknownMemberID.Code
		}
		if who.generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
	}
	if g.state == stateCompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// CompleteTransaction is called once a transaction marker of producerID
// (WriteTxnMarkers) is committed in __consumer_offsets partition
// offsetsPartition: with commit the producer's pending offsets there become
// their groups' committed offsets, except where a plain commit written
// later in the log is committed already (the later record wins, as a
// replay of the log would decide); without, they are dropped. A marker of
// an epoch older than the pending offsets' is ignored (the log refuses
// those), and so is one finding nothing pending: markers are retried, and
// a retry is a no-op. While the partition loads, the marker waits for the
// load to finish. It does not block on the log.
func (c *Coordinator) CompleteTransaction(offsetsPartition int32, producerID int64, producerEpoch int16, commit bool) {
	c.mu.RLock()
	sh := c.shards[offsetsPartition]
	c.mu.RUnlock()
	if sh == nil || sh.ctx.Err() != nil {
		return // not led here: the next leader replays the marker from the log
	}
	sh.txnMu.Lock()
	if !sh.txn.loaded {
		sh.txn.early = append(sh.txn.early, completion{producerID, producerEpoch, commit})
		sh.txnMu.Unlock()
		return
	}
	t := sh.txn.takeLocked(producerID, producerEpoch)
	sh.txnMu.Unlock()
	if t == nil {
		return
	}
	n := 0
	for _, offs := range t.groups {
		n += len(offs)
	}
	c.log.Debug("transaction completed", "partition", sh.p.String(), "producer_id", producerID,
		"producer_epoch", producerEpoch, "commit", commit, "offsets", n)
	if !commit {
		return
	}
	for id, offs := range t.groups {
		g := sh.group(id, true)
		if g == nil {
			return // the shard is going away
		}
		g.mu.Lock()
		if g.state != stateDead { // dead: deleted meanwhile, with its pending offsets
			g.materializeLocked(offs)
		}
		g.mu.Unlock()
	}
}

// materializeLocked makes a committed transaction's offsets the group's,
// where no commit later in the log is there already.
func (g *group) materializeLocked(offs map[topicPartition]offset) {
	for tp, o := range offs {
		if cur, ok := g.offsets[tp]; !ok || cur.logOffset < o.logOffset {
			g.offsets[tp] = o
		}
	}
}

// completion is a transaction marker waiting for its shard to load.
type completion struct {
	producerID int64
	epoch      int16
	commit     bool
}

// openTxn is a producer's transaction with offsets pending on a shard.
type openTxn struct {
	epoch  int16 // of its latest offsets
	groups map[string]map[topicPartition]offset
}

// producerSeq is the sequence a producer's next batch on the shard's
// partition carries.
type producerSeq struct {
	epoch int16
	next  int32
}

// txnState is a shard's transactional offsets. Guarded by shard.txnMu,
// which comes after group.mu in the lock order and is held for no I/O but
// one append.
type txnState struct {
	open map[int64]*openTxn // by producer id
	// seqs continues each producer's sequence in this term. Kafka writes
	// these batches without a sequence and skips its sequence checks for
	// the coordinator's appends; the log here checks every producer batch
	// (a second batch of the same epoch without a sequence would look like
	// a duplicate of the first), so the coordinator writes the sequence the
	// log expects, learnt from the log's producer state on first use.
	seqs map[int64]producerSeq
	// loaded is false until the shard's load installed what it replayed;
	// markers completed meanwhile wait in early.
	loaded bool
	early  []completion
}

func newTxnState() txnState {
	return txnState{open: map[int64]*openTxn{}, seqs: map[int64]producerSeq{}}
}

// addLocked makes o pending in producerID's transaction.
func (ts *txnState) addLocked(producerID int64, epoch int16, groupID string, tp topicPartition, o offset) {
	t := ts.open[producerID]
	if t == nil {
		t = &openTxn{epoch: epoch, groups: map[string]map[topicPartition]offset{}}
		ts.open[producerID] = t
	}
	t.epoch = max(t.epoch, epoch)
	offs := t.groups[groupID]
	if offs == nil {
		offs = map[topicPartition]offset{}
		t.groups[groupID] = offs
	}
	offs[tp] = o
}

// takeLocked removes and returns the transaction a marker of epoch ends,
// nil when none is open (or the marker is older than it).
func (ts *txnState) takeLocked(producerID int64, epoch int16) *openTxn {
	t := ts.open[producerID]
	if t == nil || epoch < t.epoch {
		return nil
	}
	delete(ts.open, producerID)
	return t
}

// dropLocked removes the pending offsets of a group's partitions, or of
// all of them when tps is nil: their tombstone was written (Kafka's replay
// of a tombstone clears them from every open transaction).
func (ts *txnState) dropLocked(groupID string, tps []topicPartition) {
	for _, t := range ts.open {
		offs := t.groups[groupID]
		if offs == nil {
			continue
		}
		if tps == nil {
			delete(t.groups, groupID)
			continue
		}
		for _, tp := range tps {
			delete(offs, tp)
		}
		if len(offs) == 0 {
			delete(t.groups, groupID)
		}
	}
}

// pendingLocked returns the partitions of a group with offsets pending in
// some open transaction.
func (ts *txnState) pendingLocked(groupID string) map[topicPartition]bool {
	var out map[topicPartition]bool
	for _, t := range ts.open {
		for tp := range t.groups[groupID] {
			if out == nil {
				out = map[topicPartition]bool{}
			}
			out[tp] = true
		}
	}
	return out
}

// nextSequenceLocked is the sequence for the producer's next batch: the
// continuation of its last in this epoch, 0 in a new epoch (which is what
// the log demands after an epoch bump, a marker's included).
func (ts *txnState) nextSequenceLocked(sh *shard, producerID int64, epoch int16) int32 {
	s, ok := ts.seqs[producerID]
	if !ok {
		ps := sh.p.Log().Producers()
		i := sort.Search(len(ps), func(i int) bool { return ps[i].ProducerID >= producerID })
		if i == len(ps) || ps[i].ProducerID != producerID {
			return 0 // unknown to the log: any sequence starts it
		}
		s = producerSeq{epoch: ps[i].ProducerEpoch, next: addSequence(ps[i].LastSequence, 1)}
		if ps[i].LastSequence < 0 {
			s.next = 0
		}
	}
	if s.epoch != epoch {
		return 0
	}
	return s.next
}

// addSequence is seq advanced by n records; sequences wrap from MaxInt32 to
// 0.
func addSequence(seq int32, n int) int32 {
	return int32((int64(seq) + int64(n)) % (math.MaxInt32 + 1))
}

// pendingOf returns the partitions of a group with offsets pending in some
// open transaction; it takes txnMu.
func (sh *shard) pendingOf(groupID string) map[topicPartition]bool {
	sh.txnMu.Lock()
	defer sh.txnMu.Unlock()
	return sh.txn.pendingLocked(groupID)
}

// resolveEarlyLocked applies the markers that completed while the shard
// loaded to what the load replayed: groups are the loader's, not yet
// published.
func (ts *txnState) resolveEarlyLocked(get func(string) *group) {
	for _, e := range ts.early {
		t := ts.takeLocked(e.producerID, e.epoch)
		if t == nil || !e.commit {
			continue
		}
		for id, offs := range t.groups {
			get(id).materializeLocked(offs)
		}
	}
	ts.early = nil
}
