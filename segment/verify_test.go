package segment

import (
	"errors"
	"testing"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

// TestTxnVerificationGuard: a transaction's first batch is taken only under
// the guard the log gave its producer, and a marker written between the
// guard and the batch (the transaction ended meanwhile) makes the batch
// refused, with nothing written; batches of an ongoing transaction need no
// guard.
func TestTxnVerificationGuard(t *testing.T) {
	l := openTest(t, t.TempDir(), smallConfig(), Options{})
	const pid = 7

	g := l.StartTxnVerification(pid)
	if g == 0 {
		t.Fatal("a producer without a transaction needs no verification")
	}
	if again := l.StartTxnVerification(pid); again != g {
		t.Fatalf("a second verification got guard %d, the first %d", again, g)
	}
	if _, err := l.AppendLeaderGuarded(segmenttest.Transactional(pid, 0, 0, "a"), 0, g); err != nil {
		t.Fatal(err)
	}
	if g := l.StartTxnVerification(pid); g != 0 {
		t.Fatalf("an ongoing transaction got guard %d", g)
	}
	if _, err := l.AppendLeaderGuarded(segmenttest.Transactional(pid, 0, 1, "b"), 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendMarker(pid, 0, true, 0, 0); err != nil {
		t.Fatal(err)
	}

	// Verified, then ended by a marker (an abort by timeout) before the
	// batch arrives: refused, the log unchanged, no transaction open.
	g = l.StartTxnVerification(pid)
	if _, err := l.AppendMarker(pid, 0, false, 0, 0); err != nil {
		t.Fatal(err)
	}
	leo := l.LogEndOffset()
	_, err := l.AppendLeaderGuarded(segmenttest.Transactional(pid, 0, 2, "late"), 0, g)
	if !errors.Is(err, ErrTxnNotVerified) {
		t.Fatalf("a batch under a guard a marker dropped: %v", err)
	}
	if l.LogEndOffset() != leo || l.FirstUnstableOffset() != leo {
		t.Fatalf("log end %d, first unstable %d after a refused batch; want both %d", l.LogEndOffset(), l.FirstUnstableOffset(), leo)
	}

	// A guard the log never gave, and one whose verification failed.
	if _, err := l.AppendLeaderGuarded(segmenttest.Transactional(pid, 0, 2, "x"), 0, 12345); !errors.Is(err, ErrTxnNotVerified) {
		t.Fatalf("an unknown guard: %v", err)
	}
	g = l.StartTxnVerification(pid)
	l.EndTxnVerification(pid, g)
	if _, err := l.AppendLeaderGuarded(segmenttest.Transactional(pid, 0, 2, "y"), 0, g); !errors.Is(err, ErrTxnNotVerified) {
		t.Fatalf("a guard whose verification failed: %v", err)
	}

	// Non-transactional data never needs a guard; a fresh guard works.
	if _, err := l.AppendLeaderGuarded(segmenttest.Idempotent(9, 0, 0, "i"), 0, 99); err != nil {
		t.Fatal(err)
	}
	g = l.StartTxnVerification(pid)
	if _, err := l.AppendLeaderGuarded(segmenttest.Transactional(pid, 0, 2, "z"), 0, g); err != nil {
		t.Fatal(err)
	}
	if len(l.verifying.m) != 0 {
		t.Fatalf("guards left: %v", l.verifying.m)
	}
}
