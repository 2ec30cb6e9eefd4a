package repl

import (
	"slices"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func isr(l *Leader) []int32              { s := l.ISR(); slices.Sort(s); return s }
func proposed(l *Leader, hw int64) ([]int32, bool) {
	next, changed := l.ProposeISR(hw, func(int32) bool { return true })
	slices.Sort(next)
	return next, changed
}

func TestHighWatermarkIsISRMinimum(t *testing.T) {
	c := newClock()
	l := NewLeader(1, 5, []int32{1, 2, 3}, []int32{1, 2, 3}, 30*time.Second, c.now)
	if hw := l.HighWatermark(100); hw != -1 {
		t.Fatalf("hw before followers fetched = %d, want -1 (unknown)", hw)
	}
	l.UpdateFollower(2, 80, 100)
	l.UpdateFollower(3, 60, 100)
	if hw := l.HighWatermark(100); hw != 60 {
		t.Fatalf("hw = %d, want 60", hw)
	}
	if hw := l.HighWatermark(50); hw != 50 {
		t.Fatalf("hw limited by local durable end = %d, want 50", hw)
	}
	// Out of the ISR, a follower no longer holds the high watermark back.
	l.SetMembership([]int32{1, 2, 3}, []int32{1, 2})
	if hw := l.HighWatermark(100); hw != 80 {
		t.Fatalf("hw after 3 left the ISR = %d, want 80", hw)
	}
	// A non-replica's fetch changes nothing.
	if l.UpdateFollower(9, 1000, 1000) {
		t.Fatal("non-replica follower recorded")
	}
}

func TestISRShrinkAndExpand(t *testing.T) {
	c := newClock()
	l := NewLeader(1, 1, []int32{1, 2, 3}, []int32{1, 2, 3}, 10*time.Second, c.now)
	l.UpdateFollower(2, 100, 100)
	l.UpdateFollower(3, 100, 100)
	if _, changed := proposed(l, 100); changed {
		t.Fatal("caught-up followers proposed out")
	}
	// 3 stops fetching; 2 keeps catching up.
	for i := 0; i < 12; i++ {
		c.add(time.Second)
		l.UpdateFollower(2, int64(101+i), int64(101+i))
	}
	next, changed := proposed(l, 100)
	if !changed || !slices.Equal(next, []int32{1, 2}) {
		t.Fatalf("after 12s without 3: %v %v, want [1 2] changed", next, changed)
	}
	l.SetMembership([]int32{1, 2, 3}, next)
	// 3 returns behind the high watermark: not yet.
	l.UpdateFollower(3, 50, 112)
	if next, changed := proposed(l, 110); changed {
		t.Fatalf("lagging follower re-admitted: %v", next)
	}
	// It reaches the high watermark: back in.
	l.UpdateFollower(3, 112, 112)
	next, changed = proposed(l, 110)
	if !changed || !slices.Equal(next, []int32{1, 2, 3}) {
		t.Fatalf("caught-up follower not re-admitted: %v %v", next, changed)
	}
	if got := isr(l); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("ProposeISR changed state: %v", got)
	}
}

func TestSlowButProgressingFollowerStays(t *testing.T) {
	c := newClock()
	l := NewLeader(1, 1, []int32{1, 2}, []int32{1, 2}, 10*time.Second, c.now)
	// The leader keeps growing; the follower always fetches what the leader
	// had at its previous fetch: it is caught up as of that fetch.
	leo := int64(100)
	l.UpdateFollower(2, 90, leo)
	for i := 0; i < 30; i++ {
		c.add(time.Second)
		prev := leo
		leo += 10
		l.UpdateFollower(2, prev, leo)
	}
	if _, changed := proposed(l, 0); changed {
		t.Fatal("follower that keeps up with the previous fetch was dropped")
	}
}
