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
