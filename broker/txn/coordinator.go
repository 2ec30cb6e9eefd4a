package txn

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sedimentio/sediment/broker/group"
	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/segment"
)

// Coordinator is the transaction coordinator of one broker: it serves the
// transactional ids whose __transaction_state partition this broker leads,
// loads a partition's ids when it becomes the leader (answering
// COORDINATOR_LOAD_IN_PROGRESS meanwhile, and completing the transactions
// it finds prepared) and drops them when it stops leading.
//
// Lock order: txn.mu → shard.mu (a txn removes itself from its shard);
// Coordinator.mu is taken alone. None is held while waiting for a write or
// for markers.
//
// Safe for concurrent use.
type Coordinator struct {
	cfg     Config
	d       Deps
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	// settleWait bounds how long AddPartitionsToTxn and AddOffsetsToTxn
	// wait for their producer's previous transaction to complete (add).
	settleWait time.Duration

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // loads, writes, marker senders, reapers

	mu     sync.RWMutex
	shards map[int32]*shard // by __transaction_state partition led here
}

// New returns a coordinator with no partitions; the partition layer tells it
// of leaderships through Elected and Resigned. Its reapers run until Close.
func New(cfg Config, d Deps) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := d.fill(); err != nil {
		return nil, err
	}
	c := &Coordinator{cfg: cfg, d: d, log: d.Logger, now: d.Now, settleWait: 5 * time.Second, shards: map[int32]*shard{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	m, err := newMetrics(c, d.Registerer)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	c.wg.Go(func() { c.every(cfg.AbortTimedOutInterval, c.abortTimedOut) })
	c.wg.Go(func() { c.every(cfg.RemoveExpiredInterval, c.expireIDs) })
	return c, nil
}

// Close unloads every partition and waits for the coordinator's goroutines.
func (c *Coordinator) Close() {
	c.cancel()
	c.mu.Lock()
	shards := c.shards
	c.shards = map[int32]*shard{}
	c.mu.Unlock()
	for _, sh := range shards {
		sh.unload()
	}
	c.wg.Wait()
}

// Elected is called by the partition layer when this broker becomes the
// leader of p in epoch: for a __transaction_state partition, the
// coordinator loads its transactional ids. It does not block.
func (c *Coordinator) Elected(p *partition.Partition, epoch int32) {
	if p.Topic() != StateTopic {
		return
	}
	c.elect(p.Index(), partitionLog{p: p, epoch: epoch}, epoch)
}

// Resigned is called by the partition layer when this broker stops leading
// p (or p is removed): its transactional ids are dropped.
func (c *Coordinator) Resigned(p *partition.Partition) {
	if p.Topic() != StateTopic {
		return
	}
	c.resign(p.Index())
}

// elect starts serving partition index of __transaction_state through l,
// the coordinator epoch being the partition's leader epoch.
func (c *Coordinator) elect(index int32, l Log, epoch int32) {
	if c.ctx.Err() != nil {
		return
	}
	sh := &shard{c: c, index: index, log: l, epoch: epoch, txns: map[string]*txn{}}
	sh.ctx, sh.cancel = context.WithCancel(c.ctx)
	c.mu.Lock()
	old := c.shards[index]
	c.shards[index] = sh
	c.mu.Unlock()
	if old != nil {
		old.unload()
	}
	c.wg.Go(sh.load)
}

func (c *Coordinator) resign(index int32) {
	c.mu.Lock()
	sh := c.shards[index]
	delete(c.shards, index)
	c.mu.Unlock()
	if sh != nil {
		sh.unload()
	}
}

// PartitionFor is the __transaction_state partition of a transactional id
// among n: Kafka's hash, the same as for groups.
func PartitionFor(transactionalID string, n int32) int32 {
	return group.PartitionFor(transactionalID, n)
}

// shardFor finds the loaded shard coordinating a transactional id, or the
// error code saying why there is none here.
func (c *Coordinator) shardFor(id string) (*shard, int16) {
	n := c.d.Partitions()
	if n <= 0 {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	c.mu.RLock()
	sh := c.shards[PartitionFor(id, n)]
	c.mu.RUnlock()
	switch {
	case sh == nil:
		return nil, kerr.NotCoordinator.Code
	case !sh.loaded.Load():
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	return sh, 0
}

// change runs a producer's request against its transactional id: decide
// runs under the id's lock and either answers at once (a nil channel and a
// code) or starts a write whose outcome is awaited here, with no lock held.
// An id unknown here is INVALID_PRODUCER_ID_MAPPING, as in Kafka.
func (c *Coordinator) change(ctx context.Context, id string, decide func(*shard, *txn) (<-chan int16, int16)) int16 {
	if id == "" {
		return kerr.InvalidRequest.Code
	}
	sh, code := c.shardFor(id)
	if code != 0 {
		return code
	}
	t := sh.get(id)
	if t == nil {
		return kerr.InvalidProducerIDMapping.Code
	}
	t.mu.Lock()
	ch, code := decide(sh, t)
	t.mu.Unlock()
	if ch == nil {
		return code
	}
	return sh.await(ctx, ch)
}

// allShards returns the loaded shards, and whether some are still loading.
func (c *Coordinator) allShards() ([]*shard, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*shard
	loading := false
	for _, sh := range c.shards {
		if sh.loaded.Load() {
			out = append(out, sh)
		} else {
			loading = true
		}
	}
	return out, loading
}

// every runs f each interval until Close.
func (c *Coordinator) every(interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// shard is one __transaction_state partition this broker leads, with the
// transactional ids it holds.
type shard struct {
	c      *Coordinator
	index  int32
	log    Log
	epoch  int32           // the coordinator epoch: the partition's leader epoch
	ctx    context.Context // cancelled when the partition is unloaded
	cancel context.CancelFunc
	loaded atomic.Bool

	mu   sync.Mutex
	txns map[string]*txn
}

func (sh *shard) get(id string) *txn {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.txns[id]
}

// getOrCreate returns the txn of id, putting t there if there is none.
func (sh *shard) getOrCreate(id string, t *txn) *txn {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.txns[id]; old != nil {
		return old
	}
	sh.txns[id] = t
	return t
}

func (sh *shard) remove(t *txn) {
	sh.mu.Lock()
	if sh.txns[t.id] == t {
		delete(sh.txns, t.id)
	}
	sh.mu.Unlock()
}

func (sh *shard) snapshot() []*txn {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := make([]*txn, 0, len(sh.txns))
	for _, t := range sh.txns {
		out = append(out, t)
	}
	return out
}

// unload drops every transactional id; writes and marker senders in
// flight stop (the next coordinator completes what was prepared).
func (sh *shard) unload() {
	sh.cancel()
	sh.loaded.Store(false)
	sh.mu.Lock()
	n := len(sh.txns)
	sh.txns = map[string]*txn{}
	sh.mu.Unlock()
	if n > 0 {
		sh.c.log.Info("unloaded transactional ids", "partition", sh.log.String(), "transactional_ids", n)
	}
}

// append writes next as the state of id (a Dead state is a tombstone).
func (sh *shard) append(id string, next meta) (int64, error) {
	if sh.ctx.Err() != nil {
		return 0, partition.ErrNotLeader
	}
	var value []byte
	if next.state != Dead {
		value = encodeValue(next)
	}
	b, err := batchOf(encodeKey(id), value, sh.c.now().UnixMilli())
	if err != nil {
		return 0, err
	}
	return sh.log.Append(b)
}

// committed waits, in the shard's term, for an append to be committed and
// returns the code of the outcome.
func (sh *shard) committed(next int64, err error) int16 {
	if err == nil {
		err = sh.log.WaitCommitted(sh.ctx, next)
	}
	return writeErrorCode(err)
}

// writeLocked starts writing next as t's state; t.mu is held and no write
// of t is in flight. While it is, requests for t get
// CONCURRENT_TRANSACTIONS. Once its outcome is known, next becomes t's
// state if it was committed, and done (if any) runs under t.mu with the
// code; the channel yields the code too. The outcome is awaited in the
// shard's term, not the requester's, so that memory follows the log even
// when the requester gives up.
func (sh *shard) writeLocked(t *txn, next meta, done func(code int16)) <-chan int16 {
	ch := make(chan int16, 1)
	if !canTransition(t.cur.state, next.state) {
		// A bug, not a request's fault: Kafka throws IllegalStateException.
		sh.c.log.Error("refusing an invalid transition", "transactional_id", t.id, "from", t.cur.state, "to", next.state)
		if done != nil {
			done(kerr.UnknownServerError.Code)
		}
		ch <- kerr.UnknownServerError.Code
		return ch
	}
	t.startWriting()
	off, err := sh.append(t.id, next)
	sh.c.wg.Go(func() {
		code := sh.committed(off, err)
		t.mu.Lock()
		t.stopWriting()
		if code == 0 {
			t.cur, t.loaded = next, true
		}
		if done != nil {
			done(code)
		}
		t.mu.Unlock()
		ch <- code
	})
	return ch
}

// await is the outcome of a write for a requester: it waits at most the
// write timeout (then COORDINATOR_NOT_AVAILABLE, retriable) and no longer
// than ctx.
func (sh *shard) await(ctx context.Context, ch <-chan int16) int16 {
	t := time.NewTimer(sh.c.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case code := <-ch:
		return code
	case <-t.C:
		return kerr.CoordinatorNotAvailable.Code
	case <-ctx.Done():
		return kerr.CoordinatorNotAvailable.Code
	}
}

// writeErrorCode maps a failed write to __transaction_state to the code a
// transaction request gets, as Kafka's TransactionStateManager does.
func writeErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, partition.ErrNotEnoughReplicas), errors.Is(err, partition.ErrNotEnoughReplicasAfterAppend),
		errors.Is(err, partition.ErrUnknownTopicOrPartition), errors.Is(err, context.DeadlineExceeded):
		return kerr.CoordinatorNotAvailable.Code
	case errors.Is(err, segment.ErrRecordTooLarge), errors.Is(err, segment.ErrAppendTooLarge):
		return kerr.UnknownServerError.Code
	default: // not the leader any more, closed, storage errors
		return kerr.NotCoordinator.Code
	}
}
