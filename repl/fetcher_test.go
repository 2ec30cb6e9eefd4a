package repl

import (
	"bytes"
	"testing"
	"time"
)

// epochLog is a Log that only answers epoch questions, for truncationOffset.
type epochLog struct {
	Log    // nil: other methods panic
	end    int64
	epochs []fakeEpoch
}

func (l *epochLog) LogEndOffset() int64 { return l.end }

func (l *epochLog) EndOffsetForEpoch(epoch int32) (int32, int64) {
	p := fakePart{end: l.end, epochs: l.epochs}
	return p.endOffsetFor(epoch)
}

func TestTruncationOffset(t *testing.T) {
	// The follower: epoch 0 from 0, epoch 1 from 10, epoch 3 from 15, log end 20.
	follower := &epochLog{end: 20, epochs: []fakeEpoch{{0, 0}, {1, 10}, {3, 15}}}
	for _, tc := range []struct {
		name        string
		leaderEpoch int32
		leaderEnd   int64
		to          int64
		done        bool
	}{
		{"leader knows nothing", -1, -1, 20, true},
		{"pre-epoch leader: its end", -1, 12, 12, true},
		{"same latest epoch, leader longer", 3, 30, 20, true},
		{"same latest epoch, leader shorter", 3, 17, 17, true},
		{"KIP-101: leader ended epoch 1 early", 1, 12, 12, true},
		{"KIP-279: leader's epoch 2 unknown here", 2, 20, 15, false},
		{"leader's epoch below all of ours", 0, 5, 5, true},
		{"epoch above all of ours: trust the leader", 9, 18, 18, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to, done := truncationOffset(follower, tc.leaderEpoch, tc.leaderEnd)
			if to != tc.to || done != tc.done {
				t.Fatalf("truncationOffset(%d, %d) = %d, %v; want %d, %v", tc.leaderEpoch, tc.leaderEnd, to, done, tc.to, tc.done)
			}
		})
	}
}

func TestWholeBatches(t *testing.T) {
	a, b, c := batch(5, 1, 3, "a"), batch(8, 1, 2, "b"), batch(10, 2, 4, "c")
	all := bytes.Join([][]byte{a, b, c}, nil)
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
		base int64
	}{
		{"empty", nil, nil, -1},
		{"whole", all, all, 5},
		{"partial tail", all[:len(all)-1], all[:len(a)+len(b)], 5},
		{"partial header", all[:len(a)+len(b)+7], all[:len(a)+len(b)], 5},
		{"only a partial batch", a[:len(a)-1], nil, -1},
		{"garbage length", append(append([]byte{}, a...), 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1), a, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, base := wholeBatches(tc.in)
			if !bytes.Equal(got, tc.want) || base != tc.base {
				t.Fatalf("got %d bytes at %d, want %d bytes at %d", len(got), base, len(tc.want), tc.base)
			}
		})
	}
	if n := nextOffset(c); n != 14 {
		t.Fatalf("nextOffset %d, want 14", n)
	}
}

// FuzzWholeBatches: never panics; the result is a prefix of the input, and parsing it again
// returns all of it.
func FuzzWholeBatches(f *testing.F) {
	f.Add(bytes.Join([][]byte{batch(0, 0, 1, "x"), batch(1, 0, 2, "y")}, nil))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 49})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, _ := wholeBatches(in)
		if !bytes.HasPrefix(in, got) {
			t.Fatal("not a prefix")
		}
		again, _ := wholeBatches(got)
		if len(again) != len(got) {
			t.Fatalf("re-parse kept %d of %d bytes", len(again), len(got))
		}
	})
}

func TestBackoff(t *testing.T) {
	base := 100 * time.Millisecond
	prev := time.Duration(0)
	for i := 1; i <= 12; i++ {
		d := backoff(base, i)
		if d < base*8/10 || d > backoffCap*base*12/10 {
			t.Fatalf("backoff(%d) = %v out of bounds", i, d)
		}
		if i <= 3 && d < prev/2 {
			t.Fatalf("backoff(%d) = %v shrank from %v", i, d, prev)
		}
		prev = d
	}
	if d := backoff(base, 1000); d > backoffCap*base*12/10 {
		t.Fatalf("capped backoff %v", d)
	}
}
