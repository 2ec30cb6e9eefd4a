package repl

import (
	"testing"
	"time"
)

// TestSetMembershipReportsISRChanges: SetMembership says whether the ISR
// lost a member and whether it gained one (what the broker counts as
// Kafka's IsrShrinks and IsrExpands); applying the same ISR twice reports
// nothing the second time, and Sizes follows.
func TestSetMembershipReportsISRChanges(t *testing.T) {
	l := NewLeader(1, 1, []int32{1, 2, 3}, []int32{1, 2, 3}, time.Second, nil)
	for _, tc := range []struct {
		replicas, isr    []int32
		shrank, expanded bool
	}{
		{[]int32{1, 2, 3}, []int32{1, 2, 3}, false, false},
		{[]int32{1, 2, 3}, []int32{1, 2}, true, false},
		{[]int32{1, 2, 3}, []int32{1, 2}, false, false}, // the controller's copy of the leader's change
		{[]int32{1, 2, 3}, []int32{1}, true, false},
		{[]int32{1, 2, 3}, []int32{1, 3}, false, true},
		{[]int32{1, 2, 3}, []int32{1, 2}, true, true}, // 3 out, 2 in at once
		{[]int32{1, 2, 3, 4}, []int32{1, 2, 3, 4}, false, true},
		{[]int32{2, 3}, []int32{2, 3}, true, false}, // reassigned: 1 and 4 leave
	} {
		shrank, expanded := l.SetMembership(tc.replicas, tc.isr)
		if shrank != tc.shrank || expanded != tc.expanded {
			t.Errorf("ISR -> %v: shrank %v expanded %v, want %v %v", tc.isr, shrank, expanded, tc.shrank, tc.expanded)
		}
		if r, i := l.Sizes(); r != len(tc.replicas) || i != len(tc.isr) {
			t.Errorf("ISR -> %v: Sizes %d %d", tc.isr, r, i)
		}
	}
}

// TestHighWatermarkCountsJoiningFollowers: while an ISR write adding a
// follower is under way (ExpandingISR), the high watermark goes by the
// maximal ISR, so it cannot pass the joining follower's end: once the write
// lands, that follower may be elected and must hold everything committed.
// Applying etcd's ISR with the follower (SetMembership) or settling without
// it (SettleISR) ends that.
func TestHighWatermarkCountsJoiningFollowers(t *testing.T) {
	l := NewLeader(1, 1, []int32{1, 2, 3}, []int32{1, 2}, time.Minute, nil)
	l.UpdateFollower(2, 100, 100)
	l.UpdateFollower(3, 60, 100) // caught up with the high watermark of an earlier moment
	if hw := l.HighWatermark(100); hw != 100 {
		t.Fatalf("ISR [1 2]: high watermark %d, want 100", hw)
	}
	l.ExpandingISR([]int32{1, 2, 3})
	if !l.Expanding() {
		t.Fatal("Expanding false after ExpandingISR")
	}
	if hw := l.HighWatermark(120); hw != 60 {
		t.Fatalf("adding 3 (at 60): high watermark %d, want 60", hw)
	}
	l.UpdateFollower(3, 90, 120)
	if hw := l.HighWatermark(120); hw != 90 {
		t.Fatalf("adding 3 (at 90): high watermark %d, want 90", hw)
	}
	// An older ISR applied meanwhile keeps 3 counting: the write is still out.
	l.SetMembership([]int32{1, 2, 3}, []int32{1, 2})
	if hw := l.HighWatermark(120); hw != 90 {
		t.Fatalf("after re-applying [1 2]: high watermark %d, want 90", hw)
	}
	// The write landed: 3 is in the ISR, nothing is pending.
	l.SetMembership([]int32{1, 2, 3}, []int32{1, 2, 3})
	if l.Expanding() {
		t.Fatal("Expanding true after the ISR took the follower")
	}
	if hw := l.HighWatermark(120); hw != 90 {
		t.Fatalf("ISR [1 2 3]: high watermark %d, want 90", hw)
	}

	// A write that did not happen: SettleISR drops the follower again.
	l.SetMembership([]int32{1, 2, 3}, []int32{1, 2})
	l.ExpandingISR([]int32{1, 2, 3})
	if hw := l.HighWatermark(120); hw != 90 {
		t.Fatalf("adding 3 again: high watermark %d, want 90", hw)
	}
	l.SettleISR()
	if hw := l.HighWatermark(120); hw != 100 {
		t.Fatalf("settled without 3: high watermark %d, want 100 (follower 2's end)", hw)
	}
	// A follower reassigned away stops counting even with a write out.
	l.ExpandingISR([]int32{1, 2, 3})
	l.SetMembership([]int32{1, 2}, []int32{1, 2})
	if l.Expanding() {
		t.Fatal("Expanding true for a follower that is no replica any more")
	}
}
