package segment

import (
	"math/rand/v2"
	"testing"
)

// TestTailRingModel checks the tail ring against a plain slice of the last
// ringSize batches over random pushes and truncations, across the point where
// its storage stops growing and starts wrapping, and that a ring of a few
// batches holds little memory.
func TestTailRingModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		var r tailRing
		var model []batchLoc
		var pos, off int64
		for step := range 3 * ringSize {
			if rng.IntN(10) == 0 && len(model) > 0 {
				// Truncate to the end of a random remembered batch, or inside one.
				l := model[rng.IntN(len(model))]
				size := l.pos + l.size
				if rng.IntN(2) == 0 {
					size = l.pos + 1
				}
				r.truncate(size)
				for len(model) > 0 && model[len(model)-1].pos+model[len(model)-1].size > size {
					model = model[:len(model)-1]
				}
				if len(model) > 0 {
					last := model[len(model)-1]
					pos, off = last.pos+last.size, last.last+1
				} else {
					pos, off = size, off+1
				}
			} else {
				n := int64(1 + rng.IntN(5))
				l := batchLoc{base: off, last: off + n - 1, pos: pos, size: 100 + n}
				r.push(l)
				model = append(model, l)
				if len(model) > ringSize {
					model = model[1:]
				}
				pos, off = pos+l.size, off+n
			}
			if r.n != len(model) {
				t.Fatalf("round %d step %d: ring holds %d batches, want %d", round, step, r.n, len(model))
			}
			for i, want := range model {
				if got := *r.at(i); got != want {
					t.Fatalf("round %d step %d: batch %d = %+v, want %+v", round, step, i, got, want)
				}
			}
			if len(model) > 0 {
				mid := model[len(model)/2]
				if loc, covered, found := r.find(mid.last); !covered || !found || loc != mid {
					t.Fatalf("round %d step %d: find(%d) = %+v %v %v, want %+v", round, step, mid.last, loc, covered, found, mid)
				}
			}
		}
		if len(r.locs) > ringSize {
			t.Fatalf("round %d: ring storage grew to %d entries, more than %d", round, len(r.locs), ringSize)
		}
	}

	var r tailRing
	for i := range 3 {
		r.push(batchLoc{base: int64(i), last: int64(i), pos: int64(i) * 10, size: 10})
	}
	if c := cap(r.locs); c >= ringSize/4 {
		t.Errorf("a ring of 3 batches holds room for %d, want far fewer than %d", c, ringSize)
	}
}
