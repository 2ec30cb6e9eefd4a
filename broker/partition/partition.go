package partition

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/repl"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/tier"
)

// Partition is one local replica: its log, its role (leader, follower or
// offline, as the partition state in etcd says), the high watermark, the
// waiters of long polls and acks=all, and what the tier holds of it.
//
// Safe for concurrent use. The log is safe for concurrent use on its own;
// role changes are made by the Manager's reconcile passes alone, and
// published through atomics, so produce and fetch never block on them.
type Partition struct {
	m     *Manager
	topic string
	id    meta.TopicID
	index int32
	log   *segment.Log

	leaderEpoch atomic.Int32
	leaderID    atomic.Int32 // -1: offline
	// epochStart is the log end when this broker last became leader: until
	// the high watermark reaches it, the offsets it would report may be stale
	// (KIP-207).
	epochStart atomic.Int64
	minISR     atomic.Int32 // min.insync.replicas
	// isrEpoch is the partition epoch of the newest ISR applied to this
	// broker's leader; the ISR metrics ignore older states (metrics.go).
	isrEpoch atomic.Int32
	hw       atomic.Int64

	// term is set while this broker leads the partition.
	term atomic.Pointer[term]

	configRev int64 // topic revision whose configs the log has; under the Manager's reconcileMu

	mu         sync.Mutex
	hwCh       chan struct{}              // closed and replaced when hw advances or the role changes
	hwWaiters  map[chan struct{}]struct{} // consumer fetches parked on this partition
	leoWaiters map[chan struct{}]struct{} // follower fetches, woken by appends

	// remoteStart and remoteEnd bound the offsets held in the tier (the
	// offset after the last finished copy); -1 while unknown or none.
	remoteStart, remoteEnd atomic.Int64
	remoteSegs             atomic.Pointer[[]tier.RemoteSegment] // finished copies
	// remoteLoaded is set once the fields above were read from etcd in the
	// current role; a new leader reads them before answering from them.
	remoteLoaded atomic.Bool
	remoteMu     sync.Mutex  // serialises refreshes, so the newest read is stored last
	stalled      atomic.Bool // this partition's last upload attempt failed

	// Periodic work queued on the Manager's pool runs once at a time per
	// partition: a slow partition is skipped, not queued twice.
	isrBusy, retentionBusy, rollBusy atomic.Bool

	flushReq chan struct{} // appends ask the flusher to sync
	flushing atomic.Bool   // a flusher runs or is starting (flusher.go)
	syncErr  atomic.Pointer[error]
	done     chan struct{} // closed when the partition is removed or closed
}

// term is one leadership term of this broker over a partition. Its context
// is cancelled when the term ends; work done for the leader (uploads, ISR
// writes) runs under it.
type term struct {
	leader *repl.Leader
	ctx    context.Context
	cancel context.CancelFunc
	// upload is the term's uploader while the topic is tiered; started and
	// stopped by reconcile passes only.
	upload *uploaderRun
}

// uploaderRun is a running uploader: cancel stops it, done is closed once it
// has.
type uploaderRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *Partition) String() string { return p.topic + "-" + strconv.Itoa(int(p.index)) }

// Topic, TopicID and Index name the partition.
func (p *Partition) Topic() string         { return p.topic }
func (p *Partition) TopicID() meta.TopicID { return p.id }
func (p *Partition) Index() int32          { return p.index }

// Log is the local log, for reads that need it whole (tests, compaction).
func (p *Partition) Log() *segment.Log { return p.log }

// Size is the bytes of the local log.
func (p *Partition) Size() int64 { return p.log.Size() }

// HighWatermark is the offset below which records are committed.
func (p *Partition) HighWatermark() int64 { return p.hw.Load() }

// LastStable is the last stable offset (KIP-98): the high watermark, or the
// first offset of the oldest transaction still undecided if that is lower.
// read_committed consumers read below it.
func (p *Partition) LastStable() int64 { return min(p.log.FirstUnstableOffset(), p.hw.Load()) }

// LeaderEpoch is the epoch of the partition's current leader as this broker
// knows it.
func (p *Partition) LeaderEpoch() int32 { return p.leaderEpoch.Load() }

// IsLeader reports whether this broker leads the partition.
func (p *Partition) IsLeader() bool { return p.term.Load() != nil }

// LocalLogStart is the first offset of the local log.
func (p *Partition) LocalLogStart() int64 { return p.log.LogStartOffset() }

// LogEnd is the offset the next append gets.
func (p *Partition) LogEnd() int64 { return p.log.LogEndOffset() }

// RemoteStart and RemoteEnd bound the offsets held in the tier (RemoteEnd
// is the offset after the last finished copy); -1 while unknown or none.
func (p *Partition) RemoteStart() int64 { return p.remoteStart.Load() }
func (p *Partition) RemoteEnd() int64   { return p.remoteEnd.Load() }

// LogStart is the partition's log start offset as clients see it: the
// oldest offset in the tier when there is one, else the local log start.
func (p *Partition) LogStart() int64 {
	if rs := p.remoteStart.Load(); rs >= 0 && rs < p.log.LogStartOffset() {
		return rs
	}
	return p.log.LogStartOffset()
}

// leader returns the replication state of this broker's term, nil unless it
// leads.
func (p *Partition) leader() *repl.Leader {
	if t := p.term.Load(); t != nil {
		return t.leader
	}
	return nil
}

// LeaderIn reports whether this broker still leads p in epoch (-1: any), the
// case in which Leader would return p: a caller holding p from an earlier
// Leader call may keep using it without the lookup.
func (p *Partition) LeaderIn(epoch int32) bool {
	l := p.leader()
	return l != nil && (epoch < 0 || epoch == l.Epoch())
}

// Watch registers ch to be signalled (without blocking) when a fetch parked
// on this partition may have something new: the high watermark advanced or
// the role changed, and for a replica also every append. Unwatch removes it.
func (p *Partition) Watch(ch chan struct{}, replica bool) {
	p.mu.Lock()
	if replica {
		p.leoWaiters[ch] = struct{}{}
	} else {
		p.hwWaiters[ch] = struct{}{}
	}
	p.mu.Unlock()
}

// Watching counts the channels registered by Watch (fetches parked on the
// partition and fetch sessions that name it).
func (p *Partition) Watching() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.hwWaiters) + len(p.leoWaiters)
}

// Unwatch undoes Watch.
func (p *Partition) Unwatch(ch chan struct{}) {
	p.mu.Lock()
	delete(p.hwWaiters, ch)
	delete(p.leoWaiters, ch)
	p.mu.Unlock()
}

// advanceHW raises the high watermark to off and wakes waiters.
func (p *Partition) advanceHW(off int64) {
	for {
		cur := p.hw.Load()
		if off <= cur {
			return
		}
		if p.hw.CompareAndSwap(cur, off) {
			break
		}
	}
	p.mu.Lock()
	p.broadcastLocked()
	wake(p.hwWaiters)
	p.mu.Unlock()
}

// appended wakes follower fetches parked on the log end.
func (p *Partition) appended() {
	p.mu.Lock()
	wake(p.leoWaiters)
	p.mu.Unlock()
}

// roleChanged wakes everyone who waits on the high watermark, so acks=all
// waiters notice a lost leadership or a shrunken ISR.
func (p *Partition) roleChanged() {
	p.mu.Lock()
	p.broadcastLocked()
	wake(p.hwWaiters)
	wake(p.leoWaiters)
	p.mu.Unlock()
}

// broadcastLocked wakes every WaitCommitted.
func (p *Partition) broadcastLocked() {
	close(p.hwCh)
	p.hwCh = make(chan struct{})
}

func wake(ws map[chan struct{}]struct{}) {
	for w := range ws {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// updateHW recomputes the high watermark: as leader from the ISR's
// positions and the local durable end; it only ever moves forward.
func (p *Partition) updateHW() {
	if l := p.leader(); l != nil {
		if hw := l.HighWatermark(p.log.DurableOffset()); hw >= 0 {
			p.advanceHW(hw)
		}
	}
}

// markClosed fails the partition's waiters and stops its flusher; the
// Manager calls it once, when it removes or closes the partition.
func (p *Partition) markClosed() { close(p.done) }
