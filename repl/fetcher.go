package repl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch versions used: 12 adds LastFetchedEpoch and DivergingEpoch (KIP-595's truncation
// on fetch), 13 names topics by id, 15 carries the replica id in ReplicaState (KIP-903).
// Versions above 16 add fields a follower does not need.
const (
	fetchKey         = 1
	fetchMinVersion  = 12
	fetchMaxVersion  = 16
	epochKey         = 23 // OffsetForLeaderEpoch
	epochMinVersion  = 3  // the first with ReplicaID
	epochMaxVersion  = 4
	batchHeaderBytes = 12 // baseOffset int64, batchLength int32
	batchMinBytes    = 61 // a v2 batch header with no records
)

var (
	errUnknownLeader = errors.New("repl: leader address unknown")
	errPartialBatch  = errors.New("repl: leader returned no whole record batch")
	errStraddle      = errors.New("repl: leader's first batch starts below the log end")
)

type partState uint8

const (
	stateTruncating partState = iota // needs OffsetForLeaderEpoch before fetching
	stateFetching
	stateStopped // the leader refused us at this epoch: wait for a new Follow
)

// fpart is one partition of a fetcher. Follow replaces it (new generation) rather than
// changing it; its mutable fields belong to the fetcher goroutine and are guarded by
// fetcher.mu.
type fpart struct {
	key  PartitionKey
	slot *slot
	gen  uint64
	r    Replica

	state      partState
	delayUntil time.Time
	failures   int
}

// fetcher replicates every partition led by one broker over one connection (Kafka's
// ReplicaFetcherThread). Its goroutine is owned by the Manager.
type fetcher struct {
	m      *Manager
	leader int32
	logger *slog.Logger
	cancel context.CancelFunc
	wake   chan struct{} // cap 1: partitions were added
	// truncated is set when a log was truncated or restarted: its high watermark may
	// now be below the leader's, which a fetch session tells only when it changes, so
	// the next fetch is full. Fetcher goroutine only.
	truncated bool

	mu    sync.Mutex
	parts map[PartitionKey]*fpart
}

func (f *fetcher) add(fp *fpart) {
	f.mu.Lock()
	f.parts[fp.key] = fp
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// remove drops key and returns how many partitions are left.
func (f *fetcher) remove(key PartitionKey) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.parts, key)
	return len(f.parts)
}

// ready lists the partitions to truncate and to fetch now, and the earliest time a delayed
// partition becomes ready (zero when none is delayed).
func (f *fetcher) ready(now time.Time) (truncate, fetch []*fpart, next time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fp := range f.parts {
		switch {
		case fp.state == stateStopped:
		case fp.delayUntil.After(now):
			if next.IsZero() || fp.delayUntil.Before(next) {
				next = fp.delayUntil
			}
		case fp.state == stateTruncating:
			truncate = append(truncate, fp)
		default:
			fetch = append(fetch, fp)
		}
	}
	return truncate, fetch, next
}

func (f *fetcher) run(ctx context.Context) {
	defer f.m.wg.Done()
	var c *conn
	defer func() {
		if c != nil {
			c.close()
			f.m.metrics.connections.Dec()
		}
	}()
	cfg := &f.m.cfg
	failures := 0
	var sess *fetchSession
	for ctx.Err() == nil {
		truncate, fetch, next := f.ready(time.Now())
		if len(truncate) == 0 && len(fetch) == 0 {
			f.idle(ctx, next)
			continue
		}
		var err error
		if c == nil {
			c, err = f.connect(ctx)
			sess = newFetchSession() // sessions live on one connection
		}
		if err == nil {
			if len(truncate) > 0 {
				err = f.truncateRound(ctx, c, truncate)
			} else {
				err = f.fetchRound(ctx, c, sess, fetch)
			}
		}
		if err == nil {
			failures = 0
			continue
		}
		if c != nil {
			c.close()
			c = nil
			f.m.metrics.connections.Dec()
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		d := backoff(cfg.Backoff, failures)
		f.m.metrics.errors.WithLabelValues("connection").Inc()
		f.logger.Warn("repl: fetching from leader failed", "err", err, "retry_in", d, "failures", failures)
		sleep(ctx, d)
	}
}

// idle waits for a partition to be added, the next delayed partition, or cancellation.
func (f *fetcher) idle(ctx context.Context, next time.Time) {
	var tc <-chan time.Time
	if !next.IsZero() {
		t := time.NewTimer(time.Until(next))
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-ctx.Done():
	case <-f.wake:
	case <-tc:
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// backoff is base doubled for each failure after the first, capped at backoffCap×base,
// with ±20% jitter so followers of a restarted leader do not reconnect in lockstep.
func backoff(base time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < backoffCap*base; i++ {
		d *= 2
	}
	d = min(d, backoffCap*base)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (f *fetcher) connect(ctx context.Context) (*conn, error) {
	addr, ok := f.m.resolve(f.leader)
	if !ok {
		return nil, fmt.Errorf("%w: broker %d", errUnknownLeader, f.leader)
	}
	c, err := dial(ctx, addr, &f.m.cfg)
	if err != nil {
		return nil, err
	}
	if _, ok := c.version(fetchKey, fetchMinVersion, fetchMaxVersion); !ok {
		c.close()
		return nil, fmt.Errorf("%w: Fetch v%d-%d at %s", errUnsupported, fetchMinVersion, fetchMaxVersion, addr)
	}
	f.m.metrics.connections.Inc()
	f.logger.Debug("repl: connected to leader", "addr", addr)
	return c, nil
}

// Partition outcomes are recorded under fetcher.mu. Recording one on an fp that Follow or
// Unfollow replaced meanwhile is harmless: it is no longer in parts.

func (f *fetcher) setState(fp *fpart, s partState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp.state = s
	fp.failures = 0
	fp.delayUntil = time.Time{}
}

// fail delays fp after an error, by the partition's own exponential backoff.
func (f *fetcher) fail(fp *fpart, label string, err error) {
	if fp.slot.gen.Load() != fp.gen {
		return // Follow or Unfollow replaced it meanwhile
	}
	f.m.metrics.errors.WithLabelValues(label).Inc()
	f.mu.Lock()
	fp.failures++
	d := backoff(f.m.cfg.Backoff, fp.failures)
	fp.delayUntil = time.Now().Add(d)
	n := fp.failures
	f.mu.Unlock()
	level := slog.LevelDebug
	if label == "local" || n >= 3 {
		level = slog.LevelWarn
	}
	f.logger.Log(context.Background(), level, "repl: partition fetch failed", "topic", fp.r.Topic, "partition", fp.r.Partition,
		"leader_epoch", fp.r.LeaderEpoch, "err", err, "retry_in", d)
}

// stop parks fp until a new Follow: the leader says our epoch is stale
// (FENCED_LEADER_EPOCH), so a newer leadership exists.
func (f *fetcher) stop(fp *fpart, err error) {
	if fp.slot.gen.Load() != fp.gen {
		return
	}
	f.m.metrics.errors.WithLabelValues(errLabel(err)).Inc()
	f.mu.Lock()
	fp.state = stateStopped
	f.mu.Unlock()
	fp.slot.stopped.Store(true)
	f.logger.Info("repl: leader refused partition, waiting for new leadership", "topic", fp.r.Topic, "partition", fp.r.Partition,
		"leader_epoch", fp.r.LeaderEpoch, "err", err)
}

func errLabel(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return "local"
}

// handleError routes a partition-level Kafka error from a Fetch or OffsetForLeaderEpoch
// response (OFFSET_OUT_OF_RANGE aside).
func (f *fetcher) handleError(fp *fpart, err error) {
	switch {
	case errors.Is(err, kerr.FencedLeaderEpoch):
		// Our epoch is stale: a newer leadership exists and its Follow is on the way.
		f.stop(fp, err)
	default:
		// NOT_LEADER_FOR_PARTITION: as Kafka's fetcher, retry after a backoff. The leader
		// we were told to follow may not have applied its new leadership from etcd yet
		// (the follower's watch fired first); parking until the next Follow would park
		// for good, since that leadership does not change again, and the replica would
		// never rejoin the ISR. If it is really not the leader, a new Follow replaces us.
		// UNKNOWN_LEADER_EPOCH: the leader has not caught up with the new epoch yet.
		// UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID: the leader has not created the
		// partition yet (a new topic), as Kafka's follower, retry. KAFKA_STORAGE_ERROR and
		// anything else: retry later.
		f.fail(fp, errLabel(err), err)
	}
}

// withLog runs fn with fp's log held, if fp is still the current generation.
func withLog(fp *fpart, fn func(l Log)) bool {
	fp.slot.mu.Lock()
	defer fp.slot.mu.Unlock()
	if fp.slot.gen.Load() != fp.gen {
		return false
	}
	fn(fp.r.Log)
	return true
}

// truncateRound sends one OffsetForLeaderEpoch request for every partition that needs the
// KIP-101/279 check and truncates divergent tails. A partition whose epoch cache is empty
// has nothing to check. A leader that does not serve OffsetForLeaderEpoch v3+ leaves the
// job to the DivergingEpoch of fetch responses.
func (f *fetcher) truncateRound(ctx context.Context, c *conn, parts []*fpart) error {
	ver, ok := c.version(epochKey, epochMinVersion, epochMaxVersion)
	if !ok {
		for _, fp := range parts {
			f.setState(fp, stateFetching)
		}
		return nil
	}
	type tp struct {
		topic string
		part  int32
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = ver
	req.ReplicaID = f.m.cfg.NodeID
	pending := make(map[tp]*fpart, len(parts))
	topicAt := make(map[string]int)
	for _, fp := range parts {
		epoch := int32(-1)
		if !withLog(fp, func(l Log) { epoch = l.LatestEpoch() }) {
			continue
		}
		if epoch < 0 {
			f.setState(fp, stateFetching)
			continue
		}
		ti, ok := topicAt[fp.r.Topic]
		if !ok {
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = fp.r.Topic
			req.Topics = append(req.Topics, t)
			ti = len(req.Topics) - 1
			topicAt[fp.r.Topic] = ti
		}
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.Partition = fp.r.Partition
		p.CurrentLeaderEpoch = fp.r.LeaderEpoch
		p.LeaderEpoch = epoch
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, p)
		pending[tp{fp.r.Topic, fp.r.Partition}] = fp
	}
	if len(pending) == 0 {
		return nil
	}
	f.m.metrics.requests.WithLabelValues("OffsetForLeaderEpoch").Inc()
	kresp, err := c.request(ctx, req, f.m.cfg.SocketTimeout)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.OffsetForLeaderEpochResponse)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			k := tp{t.Topic, p.Partition}
			fp := pending[k]
			if fp == nil {
				continue
			}
			delete(pending, k)
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				f.handleError(fp, err)
				continue
			}
			var done bool
			var terr error
			withLog(fp, func(l Log) { done, terr = f.truncateLocked(fp, l, p.LeaderEpoch, p.EndOffset) })
			switch {
			case terr != nil:
				f.fail(fp, "local", terr)
			case done:
				f.setState(fp, stateFetching)
			default:
				f.setState(fp, stateTruncating) // another round with the new latest epoch (KIP-279)
			}
		}
	}
	for _, fp := range pending {
		f.fail(fp, "missing", errors.New("repl: leader left the partition out of its OffsetForLeaderEpoch response"))
	}
	return nil
}

// truncationOffset is Kafka's AbstractFetcherThread.getOffsetTruncationState: where to
// truncate l given the leader's (epoch, end offset) for our latest epoch (or the diverging
// epoch of a fetch response), and whether truncation is complete. When the leader does
// not know the epoch that we have (it answered an older one), we truncate to the end of
// the latest epoch we share with it and ask again (KIP-279).
func truncationOffset(l Log, leaderEpoch int32, leaderEnd int64) (offset int64, done bool) {
	leo := l.LogEndOffset()
	if leaderEnd < 0 {
		return leo, true // the leader knows nothing of the epoch: keep everything
	}
	if leaderEpoch < 0 {
		return min(leaderEnd, leo), true
	}
	fe, fo := l.EndOffsetForEpoch(leaderEpoch)
	switch {
	case fo < 0:
		// We track no epoch at or below the leader's: trust its end offset.
		return min(leaderEnd, leo), true
	case fe != leaderEpoch:
		return min(fo, leo), false
	default:
		return min(fo, leaderEnd, leo), true
	}
}

// truncateLocked applies truncationOffset. fp's slot is held.
func (f *fetcher) truncateLocked(fp *fpart, l Log, leaderEpoch int32, leaderEnd int64) (done bool, err error) {
	leo := l.LogEndOffset()
	to, done := truncationOffset(l, leaderEpoch, leaderEnd)
	if to >= leo {
		// No record to cut. TruncateTo at the end still drops an epoch that starts
		// there with no batch (ours, as a leader deposed before appending). A round
		// that cannot make progress is complete.
		if err := l.TruncateTo(leo); err != nil {
			return false, fmt.Errorf("repl: truncate to %d: %w", leo, err)
		}
		return true, nil
	}
	if err := l.TruncateTo(to); err != nil {
		return false, fmt.Errorf("repl: truncate to %d: %w", to, err)
	}
	f.m.metrics.truncations.WithLabelValues("divergence").Inc()
	f.truncated = true
	f.clampHighWatermarkLocked(fp, l)
	f.logger.Info("repl: truncated divergent log tail", "topic", fp.r.Topic, "partition", fp.r.Partition,
		"leader_epoch", fp.r.LeaderEpoch, "leader_answer_epoch", leaderEpoch, "leader_answer_end", leaderEnd,
		"from", leo, "to", l.LogEndOffset(), "complete", done)
	return done, nil
}

// respKey names a partition in a fetch response: by topic id from v13, by name before.
type respKey struct {
	id    [16]byte
	topic string
	part  int32
}

type sentPart struct {
	fp     *fpart
	offset int64 // the FetchOffset the leader holds
}

// fetchRound sends one Fetch for parts in the connection's fetch session (session.go) and
// applies the response: a full fetch names every partition, an incremental one only those
// whose position changed since the session last heard of them.
func (f *fetcher) fetchRound(ctx context.Context, c *conn, sess *fetchSession, parts []*fpart) error {
	cfg := &f.m.cfg
	ver, _ := c.version(fetchKey, fetchMinVersion, fetchMaxVersion) // checked by connect
	byID := ver >= 13
	keyOf := func(fp *fpart) respKey {
		if byID {
			return respKey{id: fp.r.TopicID, part: fp.r.Partition}
		}
		return respKey{topic: fp.r.Topic, part: fp.r.Partition}
	}
	if f.truncated && !sess.full {
		sess.restart(true)
	}
	f.truncated = false
	if !sess.full {
		for _, fp := range parts {
			if sp := sess.parts[keyOf(fp)]; sp != nil && sp.fp != fp {
				// A new Follow replaced the partition (a new leader epoch): start over
				// with a full fetch, so that everything the leader tells it is fresh.
				sess.restart(true)
				break
			}
		}
	}
	if sess.full {
		clear(sess.parts)
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = ver
	if ver >= 15 {
		req.ReplicaID = -1
		req.ReplicaState.ID = cfg.NodeID
		req.ReplicaState.Epoch = -1
	} else {
		req.ReplicaID = cfg.NodeID
	}
	req.MaxWaitMillis = int32(cfg.MaxWait.Milliseconds())
	req.MinBytes = cfg.MinBytes
	req.MaxBytes = cfg.MaxBytes
	req.IsolationLevel = 0
	req.SessionID = sess.id
	req.SessionEpoch = sess.requestEpoch()
	full := sess.full
	sess.round++
	topicAt := make(map[respKey]int)
	for _, fp := range parts {
		var off, start int64
		var last int32
		if !withLog(fp, func(l Log) { off, start, last = l.LogEndOffset(), l.LogStartOffset(), l.LatestEpoch() }) {
			continue
		}
		k := keyOf(fp)
		if sp := sess.parts[k]; sp != nil && sp.offset == off && sp.logStart == start && sp.lastEpoch == last {
			sp.round = sess.round // the leader's session holds it as it is
			continue
		}
		sess.parts[k] = &sessionPart{fp: fp, offset: off, logStart: start, lastEpoch: last, round: sess.round}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = fp.r.Partition
		p.CurrentLeaderEpoch = fp.r.LeaderEpoch
		p.FetchOffset, p.LogStartOffset, p.LastFetchedEpoch = off, start, last
		p.PartitionMaxBytes = cfg.PartitionMaxBytes
		tk := respKey{topic: k.topic, id: k.id}
		ti, ok := topicAt[tk]
		if !ok {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = tk.topic, tk.id
			req.Topics = append(req.Topics, t)
			ti = len(req.Topics) - 1
			topicAt[tk] = ti
		}
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, p)
	}
	sess.forget(req, byID)
	if len(sess.parts) == 0 && len(req.ForgottenTopics) == 0 {
		return nil
	}
	f.m.metrics.requests.WithLabelValues("Fetch").Inc()
	kresp, err := c.request(ctx, req, cfg.MaxWait+cfg.SocketTimeout)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		if errors.Is(err, kerr.FetchSessionIDNotFound) || errors.Is(err, kerr.InvalidFetchSessionEpoch) {
			// The leader lost our session (evicted it) or we are out of step with it:
			// a full fetch opens a new one (replacing this id, if the leader still
			// has it), as Kafka's fetcher does.
			f.m.metrics.errors.WithLabelValues(errLabel(err)).Inc()
			f.logger.Debug("repl: fetch session lost, opening a new one", "session", sess.id, "err", err)
			sess.restart(true)
			return nil
		}
		return fmt.Errorf("repl: fetch from broker %d: %w", f.leader, err)
	}
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			rp := &t.Partitions[pi]
			k := respKey{topic: t.Topic, part: rp.Partition}
			if byID {
				k = respKey{id: t.TopicID, part: rp.Partition}
			}
			sp := sess.parts[k]
			if sp == nil || sp.answered == sess.round {
				continue
			}
			sp.answered = sess.round
			f.handlePartition(sentPart{fp: sp.fp, offset: sp.offset}, rp)
		}
	}
	if full {
		for _, sp := range sess.parts {
			if sp.answered != sess.round {
				// A full fetch answers every partition; do not spin on one that is
				// left out. (An incremental one leaves out those with no news.)
				f.fail(sp.fp, "missing", errors.New("repl: leader left the partition out of its fetch response"))
			}
		}
	}
	sess.answered(resp.SessionID, req.SessionEpoch) // last: without a session it forgets the partitions
	return nil
}

func (f *fetcher) handlePartition(sp sentPart, rp *kmsg.FetchResponseTopicPartition) {
	fp := sp.fp
	err := kerr.ErrorForCode(rp.ErrorCode)
	switch {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange), errors.Is(err, kerr.OffsetMovedToTieredStorage):
		// OFFSET_MOVED_TO_TIERED_STORAGE (KIP-405): the leader's local log
		// starts above our end and what lies below is in the tier, which
		// followers do not copy; LogStartOffset is the leader's local start.
		var oerr error
		withLog(fp, func(l Log) { oerr = f.outOfRangeLocked(fp, l, sp.offset, rp) })
		if oerr != nil {
			f.fail(fp, errLabel(err), oerr)
		}
		return
	default:
		f.handleError(fp, err)
		return
	}
	var aerr error
	applied := withLog(fp, func(l Log) { aerr = f.applyLocked(fp, l, sp.offset, rp) })
	switch {
	case !applied:
	case aerr != nil:
		f.fail(fp, "local", aerr)
	default:
		f.mu.Lock()
		fp.failures = 0
		f.mu.Unlock()
	}
}

// applyLocked applies a successful fetch response to l: a truncation when the leader
// reports a diverging epoch, else the whole batches, the log start offset and the high
// watermark. fp's slot is held.
func (f *fetcher) applyLocked(fp *fpart, l Log, fetchOffset int64, rp *kmsg.FetchResponseTopicPartition) error {
	leo := l.LogEndOffset()
	if leo != fetchOffset {
		return nil // the log moved since the request (cannot happen while we own it): refetch
	}
	if de := rp.DivergingEpoch; de.Epoch >= 0 {
		// KIP-595 truncation on fetch: the leader's log differs from ours after de.
		before, beforeEpoch := leo, l.LatestEpoch()
		if _, err := f.truncateLocked(fp, l, de.Epoch, de.EndOffset); err != nil {
			return err
		}
		if l.LogEndOffset() == before && l.LatestEpoch() == beforeEpoch {
			return fmt.Errorf("repl: leader reports diverging epoch %d ending at %d, but the log [..%d) has nothing to truncate", de.Epoch, de.EndOffset, before)
		}
		return nil
	}
	if recs := rp.RecordBatches; len(recs) > 0 {
		whole, base := wholeBatches(recs)
		if len(whole) == 0 {
			return fmt.Errorf("%w (%d bytes at offset %d)", errPartialBatch, len(recs), fetchOffset)
		}
		if base < leo {
			var err error
			if whole, err = f.alignLocked(fp, l, whole, base); err != nil {
				return err
			}
		}
		if len(whole) > 0 {
			if err := l.AppendFollower(whole); err != nil {
				return fmt.Errorf("repl: append at %d: %w", l.LogEndOffset(), err)
			}
			f.m.metrics.bytes.Add(float64(len(whole)))
		}
	}
	leo = l.LogEndOffset()
	if rp.HighWatermark >= 0 {
		hw := min(rp.HighWatermark, leo)
		// Follow the leader's log start (DeleteRecords, retention), never past what is
		// committed here, as Kafka's follower does.
		if r, ok := l.(logStartRaiser); ok && rp.LogStartOffset > l.LogStartOffset() && rp.LogStartOffset <= hw {
			if _, err := r.DeleteRecordsBefore(rp.LogStartOffset); err != nil {
				return fmt.Errorf("repl: raise log start to %d: %w", rp.LogStartOffset, err)
			}
		}
		f.setHighWatermarkLocked(fp, hw)
		fp.slot.lag.Store(max(rp.HighWatermark-leo, 0))
	}
	return nil
}

// setHighWatermarkLocked hands hw to the replica. fp's slot is held.
func (f *fetcher) setHighWatermarkLocked(fp *fpart, hw int64) {
	fp.slot.hw.Store(hw)
	if fp.r.SetHighWatermark != nil {
		fp.r.SetHighWatermark(hw)
	}
}

// clampHighWatermarkLocked lowers the high watermark given last to the log end after a
// truncation, as Kafka's UnifiedLog.truncateTo does. fp's slot is held.
func (f *fetcher) clampHighWatermarkLocked(fp *fpart, l Log) {
	if leo := l.LogEndOffset(); fp.slot.hw.Load() > leo {
		f.setHighWatermarkLocked(fp, leo)
	}
}

// alignLocked handles a response whose first batch starts below our log end: batches we
// already hold are dropped; if the log is empty and the batch straddles its end (we reset
// to a leader log start inside a batch), the log restarts at the batch's base
// (KAFKA-6977). fp's slot is held.
func (f *fetcher) alignLocked(fp *fpart, l Log, whole []byte, base int64) ([]byte, error) {
	leo := l.LogEndOffset()
	for len(whole) > 0 {
		next := nextOffset(whole)
		if next < 0 || next > leo {
			break
		}
		whole = whole[batchHeaderBytes+int(binary.BigEndian.Uint32(whole[8:])):]
	}
	if len(whole) == 0 {
		return nil, nil
	}
	base = int64(binary.BigEndian.Uint64(whole))
	if base >= leo {
		return whole, nil
	}
	if l.LogStartOffset() != leo {
		return nil, fmt.Errorf("%w: batch at %d, log end %d", errStraddle, base, leo)
	}
	if err := l.TruncateFullyAndStartAt(base); err != nil {
		return nil, fmt.Errorf("repl: restart log at %d: %w", base, err)
	}
	f.m.metrics.truncations.WithLabelValues("reset").Inc()
	f.truncated = true
	f.setHighWatermarkLocked(fp, base) // an empty log's high watermark is its end, as in Kafka
	f.logger.Info("repl: leader's first batch starts below the empty log's end, restarted the log at it",
		"topic", fp.r.Topic, "partition", fp.r.Partition, "from", leo, "to", base)
	return whole, nil
}

// wholeBatches returns the prefix of recs made of whole record batches (a byte-limited
// fetch may end with a partial one) and the base offset of the first.
func wholeBatches(recs []byte) (whole []byte, base int64) {
	n := 0
	for len(recs)-n >= batchHeaderBytes {
		size := int64(binary.BigEndian.Uint32(recs[n+8:]))
		if int32(size) < batchMinBytes-batchHeaderBytes || int64(len(recs)-n) < batchHeaderBytes+size {
			break
		}
		n += batchHeaderBytes + int(size)
	}
	if n == 0 {
		return nil, -1
	}
	return recs[:n], int64(binary.BigEndian.Uint64(recs))
}

// nextOffset is the offset after the first batch of b (which holds at least one whole
// batch): base offset plus last offset delta plus one; -1 if b is too short for a v2 header.
func nextOffset(b []byte) int64 {
	if len(b) < batchMinBytes {
		return -1
	}
	return int64(binary.BigEndian.Uint64(b)) + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
}

// outOfRangeLocked handles OFFSET_OUT_OF_RANGE and OFFSET_MOVED_TO_TIERED_STORAGE: below
// the leader's (local) log start the log restarts there (the leader no longer has what we lack); above the leader's end (an
// unclean election made a shorter leader) we truncate to its high watermark. fp's slot is
// held.
func (f *fetcher) outOfRangeLocked(fp *fpart, l Log, fetchOffset int64, rp *kmsg.FetchResponseTopicPartition) error {
	leo := l.LogEndOffset()
	if leo != fetchOffset {
		return nil
	}
	start, hw := rp.LogStartOffset, rp.HighWatermark
	switch {
	case start >= 0 && leo < start:
		if err := l.TruncateFullyAndStartAt(start); err != nil {
			return fmt.Errorf("repl: restart log at leader's log start %d: %w", start, err)
		}
		f.m.metrics.truncations.WithLabelValues("reset").Inc()
		f.truncated = true
		f.setHighWatermarkLocked(fp, start)
		f.logger.Info("repl: log end below leader's log start, restarted the log there", "topic", fp.r.Topic,
			"partition", fp.r.Partition, "from", leo, "to", start)
		return nil
	case hw >= 0 && leo > hw:
		if err := l.TruncateTo(hw); err != nil {
			return fmt.Errorf("repl: truncate to leader's high watermark %d: %w", hw, err)
		}
		f.m.metrics.truncations.WithLabelValues("out_of_range").Inc()
		f.truncated = true
		f.clampHighWatermarkLocked(fp, l)
		f.logger.Warn("repl: log end above leader's, truncated to its high watermark", "topic", fp.r.Topic,
			"partition", fp.r.Partition, "from", leo, "to", l.LogEndOffset())
		return nil
	}
	return fmt.Errorf("%w: fetch offset %d, leader log start %d, high watermark %d", kerr.OffsetOutOfRange, fetchOffset, start, hw)
}
