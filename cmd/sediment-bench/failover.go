package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The failover phase: on a fresh cluster, an acks=all idempotent producer
// writes steadily to a one-partition topic replicated on every broker; the
// bench kills the partition's leader with SIGKILL, as a crash would, and
// measures the time from the kill to the first acknowledgement of a record
// produced after it. The brokers run with their default session timeout
// (--broker-session-timeout 9s), which bounds how soon the cluster can
// notice a silent broker, so the figure is what a user would see. Then
// every record acknowledged must be in the log exactly once.

const (
	failoverTopic = "sediment-failover"
	// failoverEvery paces the producer: about 500 records a second, so that
	// records are produced right after the kill whatever the window holds.
	failoverEvery = 2 * time.Millisecond
	// failoverWarmup is how long the producer runs before the kill, so that
	// it has its producer id and connections, and the followers are in sync.
	failoverWarmup = 2 * time.Second
	// failoverMetadataMinAge is how often the producer may refresh its
	// metadata while the leader is unreachable (kgo's default, 5s, would
	// add up to 5s of client-side waiting to the broker's failover).
	failoverMetadataMinAge = 250 * time.Millisecond
	// failoverTarget is the project's goal.
	failoverTarget = 10 * time.Second
)

type failoverResult struct {
	elapsed    time.Duration // from the kill to the first ack of a record produced after it
	victim     int32         // node id killed: the partition's leader
	controller int32         // controller before the kill
	newLeader  int32         // leader after the failover (-1: unknown)
	acked      int64         // records acknowledged in the whole phase
}

func (r failoverResult) String() string {
	role := fmt.Sprintf("; the controller was %d", r.controller)
	if r.victim == r.controller {
		role = ", and the controller"
	}
	leader := "?"
	if r.newLeader >= 0 {
		leader = fmt.Sprint(r.newLeader)
	}
	return fmt.Sprintf("failover: %.1fs (target < %s %s): killed broker %d (leader of %s/0%s), new leader %s; %d records acknowledged, every one read back exactly once",
		r.elapsed.Seconds(), failoverTarget, verdict(r.elapsed < failoverTarget), r.victim, failoverTopic, role, leader, r.acked)
}

// runFailover starts the cluster t in dir, measures one failover on it and
// stops it. limit bounds the wait from the kill to the first acknowledgement.
func runFailover(ctx context.Context, t *clusterTarget, dir string, limit time.Duration, pool *valuePool, p *progress) (res failoverResult, err error) {
	name := t.name() + " failover"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	p.set(name, "starting")
	in, err := t.start(ctx, dir)
	if err != nil {
		return res, fmt.Errorf("%s: start: %w", name, err)
	}
	defer func() {
		p.note(name, "stopping")
		if stopErr := in.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("%s: stop: %w", name, stopErr)
		}
	}()
	res, err = failover(ctx, in, limit, pool, func(phase string) { p.set(name, phase) })
	if err != nil {
		// In a cluster the broker that explains a failure is rarely the
		// one the client saw fail: show every broker's log.
		return res, fmt.Errorf("%s: %w\n%v", name, err, in.logTails())
	}
	return res, nil
}

func failover(ctx context.Context, in *instance, limit time.Duration, pool *valuePool, phase func(string)) (failoverResult, error) {
	res := failoverResult{newLeader: -1}
	w := workloadConfig{topic: failoverTopic, partitions: 1, replication: int16(len(in.procs))}
	phase(fmt.Sprintf("creating topic %s (1 partition, replication factor %d)", w.topic, w.replication))
	if err := createTopic(ctx, in.bootstrap, w); err != nil {
		return res, fmt.Errorf("creating topic: %w", err)
	}

	adm, closeAdm, err := newAdmin(in.bootstrap)
	if err != nil {
		return res, err
	}
	defer closeAdm()
	phase("waiting for every replica to be in sync")
	if _, err := waitPartition(ctx, adm, 30*time.Second, func(pd kadm.PartitionDetail) error {
		if len(pd.ISR) < len(in.procs) {
			return fmt.Errorf("ISR %v of replicas %v", pd.ISR, pd.Replicas)
		}
		return nil
	}); err != nil {
		return res, err
	}

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(in.bootstrap...),
		kgo.DefaultProduceTopic(w.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the idempotent producer is kgo's default
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MetadataMinAge(failoverMetadataMinAge),
		// Records pile up while there is no leader: at failoverEvery, the
		// whole limit's worth must fit so that Produce never blocks.
		kgo.MaxBufferedRecords(int(limit/failoverEvery)+int(failoverWarmup/failoverEvery)+10000),
	)
	if err != nil {
		return res, err
	}
	defer closeClient(cl)

	var (
		mu          sync.Mutex
		killedAt    time.Time // zero until the kill
		firstAfter  = make(chan time.Duration, 1)
		acked       = make([]bool, 0, 1<<16) // by record index; guarded by mu
		nAcked      atomic.Int64
		nFailed     atomic.Int64
		lastFailure atomic.Value // error
		wg          sync.WaitGroup
	)
	pctx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	produced := 0
	produceLoop := func() {
		tick := time.NewTicker(failoverEvery)
		defer tick.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
			}
			i := produced
			produced++
			mu.Lock()
			acked = append(acked, false)
			kill := killedAt
			mu.Unlock()
			afterKill := !kill.IsZero()
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Value: pool.value(i)}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					nFailed.Add(1)
					lastFailure.Store(fmt.Errorf("record %d: %w", i, err))
					return
				}
				now := time.Now()
				mu.Lock()
				acked[i] = true
				mu.Unlock()
				nAcked.Add(1)
				if afterKill {
					select {
					case firstAfter <- now.Sub(kill):
					default: // not the first
					}
				}
			})
		}
	}
	var loopDone sync.WaitGroup
	loopDone.Go(produceLoop)
	defer loopDone.Wait()
	defer stopProducing()

	phase(fmt.Sprintf("producing to %s for %s before the kill", w.topic, failoverWarmup))
	if err := sleepCtx(ctx, failoverWarmup); err != nil {
		return res, err
	}
	if n := nAcked.Load(); n == 0 {
		return res, fmt.Errorf("no record acknowledged in %s before the kill (%d failed; last: %v)", failoverWarmup, nFailed.Load(), lastFailure.Load())
	}
	if err := in.alive(); err != nil {
		return res, err
	}

	md, err := adm.Metadata(ctx, w.topic)
	if err != nil {
		return res, fmt.Errorf("Metadata before the kill: %w", err)
	}
	pd, ok := md.Topics[w.topic].Partitions[0]
	if !ok || pd.Leader < 1 || int(pd.Leader) > len(in.procs) {
		return res, fmt.Errorf("no leader of %s/0 to kill in Metadata (partition %+v)", w.topic, pd)
	}
	res.victim, res.controller = pd.Leader, md.Controller
	victim := in.procs[pd.Leader-1] // procs are node ids 1..n in order

	phase(fmt.Sprintf("killing broker %d (pid %d, leader of %s/0; controller is %d) with SIGKILL", res.victim, victim.PID(), w.topic, res.controller))
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	if err := victim.Kill(); err != nil {
		return res, fmt.Errorf("killing broker %d: %w", res.victim, err)
	}

	phase(fmt.Sprintf("waiting (<= %s) for an acknowledgement of a record produced after the kill", limit))
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	report := time.NewTicker(5 * time.Second)
	defer report.Stop()
	waitErr := func(why string) error {
		return fmt.Errorf("%s: no record produced after killing broker %d (leader of %s/0) was acknowledged; %d records acknowledged in all, %d failed (last: %v)",
			why, res.victim, w.topic, nAcked.Load(), nFailed.Load(), lastFailure.Load())
	}
wait:
	for {
		select {
		case res.elapsed = <-firstAfter:
			break wait
		case <-deadline.C:
			return res, waitErr(fmt.Sprintf("failover not complete after %s", limit))
		case <-ctx.Done():
			return res, waitErr(ctx.Err().Error())
		case <-check.C:
			if err := in.alive(); err != nil {
				return res, fmt.Errorf("after the kill: %w", err)
			}
		case <-report.C:
			phase(fmt.Sprintf("%.0fs since the kill: %d records acknowledged, %d failed", time.Since(killedAt).Seconds(), nAcked.Load(), nFailed.Load()))
		}
	}
	phase(fmt.Sprintf("first acknowledgement after the kill %.2fs after it; stopping the producer", res.elapsed.Seconds()))

	// Stop producing, wait for every outstanding record, then check that
	// what was acknowledged is in the log exactly once.
	stopProducing()
	loopDone.Wait()
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cl.Flush(fctx); err != nil {
		return res, fmt.Errorf("flushing the producer after the failover: %w (%d records acknowledged, %d failed)", err, nAcked.Load(), nFailed.Load())
	}
	wg.Wait()
	res.acked = nAcked.Load()
	if n := nFailed.Load(); n > 0 {
		return res, fmt.Errorf("%d of %d records failed (last: %v)", n, produced, lastFailure.Load())
	}
	if md, err := adm.Metadata(ctx, w.topic); err == nil {
		if pd, ok := md.Topics[w.topic].Partitions[0]; ok {
			res.newLeader = pd.Leader
		}
	}

	phase("checking that every acknowledged record is in the log exactly once")
	ends, err := endOffsets(ctx, in.bootstrap, w, []int64{res.acked})
	if err != nil {
		return res, err
	}
	if err := readBackOnce(ctx, in.bootstrap, w, pool, ends[0], acked); err != nil {
		return res, err
	}
	return res, nil
}

// readBackOnce reads partition 0 of w.topic up to end and checks that the
// records are exactly the acknowledged ones, each once and intact.
func readBackOnce(ctx context.Context, seeds []string, w workloadConfig, pool *valuePool, end int64, acked []bool) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(w.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return err
	}
	defer closeClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	seen := make([]bool, len(acked))
	var next int64
	for next < end {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading back: %d/%d read: %w", next, end, err)
		}
		for _, fe := range fetches.Errors() {
			return fmt.Errorf("reading back at offset %d: %w", next, fe.Err)
		}
		var bad error
		fetches.EachRecord(func(r *kgo.Record) {
			if bad != nil {
				return
			}
			if r.Offset != next {
				bad = fmt.Errorf("got offset %d, want %d (a gap or a repeat)", r.Offset, next)
				return
			}
			next++
			idx, err := pool.check(r.Value, len(acked))
			switch {
			case err != nil:
				bad = fmt.Errorf("offset %d: %w", r.Offset, err)
			case seen[idx]:
				bad = fmt.Errorf("offset %d: record %d is in the log twice (a duplicate the idempotent producer must prevent)", r.Offset, idx)
			case !acked[idx]:
				bad = fmt.Errorf("offset %d: record %d is in the log but was never acknowledged", r.Offset, idx)
			}
			if bad == nil {
				seen[idx] = true
			}
		})
		if bad != nil {
			return fmt.Errorf("reading back: %w", bad)
		}
	}
	for i, a := range acked {
		if a && !seen[i] {
			return fmt.Errorf("record %d was acknowledged but is not in the log (lost in the failover)", i)
		}
	}
	return nil
}

// newAdmin is a kadm client on seeds and its close.
func newAdmin(seeds []string) (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(failoverMetadataMinAge))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), func() { closeClient(cl) }, nil
}

// waitPartition retries Metadata until partition 0 of failoverTopic
// satisfies ok, or limit passes.
func waitPartition(ctx context.Context, adm *kadm.Client, limit time.Duration, ok func(kadm.PartitionDetail) error) (kadm.PartitionDetail, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	retry := time.NewTimer(0)
	defer retry.Stop()
	last := errors.New("no Metadata yet")
	for {
		select {
		case <-ctx.Done():
			return kadm.PartitionDetail{}, fmt.Errorf("%s/0 not ready after %s: %w", failoverTopic, limit, last)
		case <-retry.C:
		}
		md, err := adm.Metadata(ctx, failoverTopic)
		if err == nil {
			pd, found := md.Topics[failoverTopic].Partitions[0]
			switch {
			case !found:
				err = errors.New("partition missing from Metadata")
			case pd.Err != nil:
				err = pd.Err
			default:
				if err = ok(pd); err == nil {
					return pd, nil
				}
			}
		}
		last = err
		retry.Reset(100 * time.Millisecond)
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
