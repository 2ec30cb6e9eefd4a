package repl

import (
	"slices"
	"sync"
	"time"
)

// Leader tracks, for one partition this broker leads, where each follower
// stands: the offset it fetches from (so everything below it is on that
// replica), and when it was last caught up. From that it derives the high
// watermark (the lowest end offset in the ISR) and the ISR changes to propose
// (Kafka's rules: a follower that has not caught up within
// replica.lag.time.max.ms leaves; one that reaches the high watermark joins).
//
// Safe for concurrent use: follower fetches update it while produce and the
// ISR checker read it.
type Leader struct {
	self   int32
	epoch  int32
	lagMax time.Duration
	now    func() time.Time

	mu        sync.Mutex
	replicas  []int32
	isr       []int32
	followers map[int32]*follower
	// adding are followers an ISR write in flight (or one whose outcome is
	// not yet known) adds: until etcd's ISR is applied they count for the
	// high watermark as if they were in the ISR already, Kafka's "maximal
	// ISR" (KIP-497). Otherwise the high watermark could pass a joining
	// follower's end while the write is under way, and that follower, once
	// in the ISR, could be elected without records below it.
	adding []int32
}

type follower struct {
	leo             int64     // the offset it fetched from: it holds everything below
	lastFetch       time.Time // time of its last fetch
	leoAtLastFetch  int64     // the leader's end offset at that fetch
	lastCaughtUp    time.Time // last time it had everything the leader had
	fetchedThisTerm bool
}

// NewLeader starts tracking at a leadership term. Followers start unknown
// (offset -1) and, if in the ISR, are treated as caught up now, so they are
// given replica.lag.time.max.ms to show up before they are dropped.
func NewLeader(self, epoch int32, replicas, isr []int32, lagMax time.Duration, now func() time.Time) *Leader {
	if now == nil {
		now = time.Now
	}
	l := &Leader{self: self, epoch: epoch, lagMax: lagMax, now: now, followers: map[int32]*follower{}}
	l.setReplicasLocked(replicas, isr)
	return l
}

// Epoch is the leader epoch of this term.
func (l *Leader) Epoch() int32 { return l.epoch }

func (l *Leader) setReplicasLocked(replicas, isr []int32) {
	l.replicas = slices.Clone(replicas)
	l.isr = slices.Clone(isr)
	t := l.now()
	for _, r := range replicas {
		if r == l.self {
			continue
		}
		if _, ok := l.followers[r]; !ok {
			l.followers[r] = &follower{leo: -1, lastCaughtUp: t}
		}
	}
	for id := range l.followers {
		if !slices.Contains(replicas, id) {
			delete(l.followers, id)
		}
	}
}

// SetMembership applies replicas and ISR as they now stand in etcd. It
// reports whether the ISR lost a member (shrank) and whether it gained one
// (expanded), compared under the lock, so concurrent callers applying the
// same change count it once (Kafka's IsrShrinksPerSec, IsrExpandsPerSec).
func (l *Leader) SetMembership(replicas, isr []int32) (shrank, expanded bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range l.isr {
		shrank = shrank || !slices.Contains(isr, id)
	}
	for _, id := range isr {
		expanded = expanded || !slices.Contains(l.isr, id)
	}
	l.setReplicasLocked(replicas, isr)
	l.adding = slices.DeleteFunc(l.adding, func(id int32) bool {
		return slices.Contains(isr, id) || !slices.Contains(replicas, id)
	})
	return shrank, expanded
}

// ExpandingISR notes that an ISR write proposing next is about to be made:
// the followers next adds count for the high watermark from now until
// SetMembership applies an ISR holding them or SettleISR drops them.
func (l *Leader) ExpandingISR(next []int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range next {
		if id != l.self && !slices.Contains(l.isr, id) && !slices.Contains(l.adding, id) {
			l.adding = append(l.adding, id)
		}
	}
}

// SettleISR drops the followers of ExpandingISR that the ISR did not take:
// the caller applied etcd's current ISR (SetMembership) and knows no write
// adding them can still take effect.
func (l *Leader) SettleISR() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.adding = nil
}

// Expanding reports whether followers of ExpandingISR still count for the
// high watermark without being in the applied ISR.
func (l *Leader) Expanding() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.adding) > 0
}

// Sizes returns the number of assigned replicas and of in-sync replicas,
// without copying either list (the metrics read it for every led partition).
func (l *Leader) Sizes() (replicas, isr int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.replicas), len(l.isr)
}

// ISR is the current in-sync replica set.
func (l *Leader) ISR() []int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.isr)
}

// IsReplica reports whether id is an assigned replica of the partition.
func (l *Leader) IsReplica(id int32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.replicas, id)
}

// UpdateFollower records a fetch by follower id from fetchOffset while the
// leader's end offset was leaderLEO. It reports whether the follower's
// position moved (the high watermark may have advanced).
func (l *Leader) UpdateFollower(id int32, fetchOffset, leaderLEO int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.followers[id]
	if !ok {
		return false
	}
	t := l.now()
	switch {
	case fetchOffset >= leaderLEO:
		f.lastCaughtUp = t
	case f.fetchedThisTerm && fetchOffset >= f.leoAtLastFetch:
		// It has everything the leader had at its previous fetch.
		f.lastCaughtUp = f.lastFetch
	}
	moved := f.leo != fetchOffset
	f.leo = fetchOffset
	f.lastFetch = t
	f.leoAtLastFetch = leaderLEO
	f.fetchedThisTerm = true
	return moved
}

// HighWatermark is the lowest end offset among the ISR and the followers an
// ISR write is adding (ExpandingISR), counting this broker's own durable end
// offset.
func (l *Leader) HighWatermark(localDurable int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	hw := localDurable
	for _, set := range [2][]int32{l.isr, l.adding} {
		for _, id := range set {
			if id == l.self {
				continue
			}
			f, ok := l.followers[id]
			if !ok || f.leo < 0 {
				return -1 // an ISR member not heard from this term: no advance yet
			}
			hw = min(hw, f.leo)
		}
	}
	return hw
}

// ProposeISR returns the ISR Kafka's rules call for now, and whether it
// differs from the current one: followers not caught up within lagMax leave,
// eligible followers that reached hw join (a broker in controlled shutdown is
// not eligible). The leader never leaves its own ISR.
func (l *Leader) ProposeISR(hw int64, eligible func(id int32) bool) ([]int32, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	var next []int32
	for _, id := range l.replicas {
		if id == l.self {
			next = append(next, id)
			continue
		}
		f := l.followers[id]
		in := slices.Contains(l.isr, id)
		switch {
		case in && t.Sub(f.lastCaughtUp) <= l.lagMax:
			next = append(next, id)
		case !in && f.fetchedThisTerm && f.leo >= hw && hw >= 0 && t.Sub(f.lastCaughtUp) <= l.lagMax && eligible(id):
			next = append(next, id)
		}
	}
	if !slices.Contains(next, l.self) {
		next = append([]int32{l.self}, next...)
	}
	cur := slices.Clone(l.isr)
	slices.Sort(cur)
	sorted := slices.Clone(next)
	slices.Sort(sorted)
	return next, !slices.Equal(cur, sorted)
}
