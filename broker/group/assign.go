package group

// Server-side assignors of KIP-848 consumer groups: "uniform" (the default:
// balanced and sticky, for any mix of subscriptions) and "range" (per topic,
// contiguous ranges to the members sorted by id, so that co-partitioned
// topics line up).

import (
	"cmp"
	"maps"
	"slices"
)

// topicInfo is a topic as the assignors see it.
type topicInfo struct {
	name       string
	id         [16]byte
	partitions int32
}

// assignment maps topic ids to sorted partitions.
type assignment map[[16]byte][]int32

func (a assignment) clone() assignment {
	out := make(assignment, len(a))
	for t, ps := range a {
		out[t] = slices.Clone(ps)
	}
	return out
}

func (a assignment) has(t [16]byte, p int32) bool {
	_, ok := slices.BinarySearch(a[t], p)
	return ok
}

func (a assignment) add(t [16]byte, p int32) {
	ps := a[t]
	if i, ok := slices.BinarySearch(ps, p); !ok {
		a[t] = slices.Insert(ps, i, p)
	}
}

func (a assignment) remove(t [16]byte, p int32) {
	ps := a[t]
	if i, ok := slices.BinarySearch(ps, p); ok {
		ps = slices.Delete(ps, i, i+1)
		if len(ps) == 0 {
			delete(a, t)
		} else {
			a[t] = ps
		}
	}
}

func (a assignment) size() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

// minus returns the partitions of a not in b.
func (a assignment) minus(b assignment) assignment {
	out := assignment{}
	for t, ps := range a {
		for _, p := range ps {
			if !b.has(t, p) {
				out.add(t, p)
			}
		}
	}
	return out
}

func (a assignment) equal(b assignment) bool {
	if a.size() != b.size() {
		return false
	}
	for t, ps := range a {
		if !slices.Equal(ps, b[t]) {
			return false
		}
	}
	return true
}

// tp is one partition of a topic, by id.
type tp struct {
	topic [16]byte
	p     int32
}

// assign computes the target assignment: every partition of a subscribed
// topic goes to exactly one member subscribed to it. subs maps member ids
// to their subscribed topics; prev is the previous target (for stickiness).
func assign(assignor string, subs map[string][]topicInfo, prev map[string]assignment) map[string]assignment {
	if assignor == "range" {
		return assignRange(subs)
	}
	return assignUniform(subs, prev)
}

func assignRange(subs map[string][]topicInfo) map[string]assignment {
	out := map[string]assignment{}
	byTopic := map[[16]byte][]string{}
	infos := map[[16]byte]topicInfo{}
	for m, ts := range subs {
		out[m] = assignment{}
		for _, t := range ts {
			byTopic[t.id] = append(byTopic[t.id], m)
			infos[t.id] = t
		}
	}
	for id, members := range byTopic {
		slices.Sort(members)
		n, k := infos[id].partitions, int32(len(members))
		q, r := n/k, n%k
		for i, m := range members {
			i := int32(i)
			start := i*q + min(i, r)
			count := q
			if i < r {
				count++
			}
			for p := start; p < start+count; p++ {
				out[m].add(id, p)
			}
		}
	}
	return out
}

// assignUniform balances partitions over the members that may take them,
// keeping each partition with its previous owner where balance allows.
func assignUniform(subs map[string][]topicInfo, prev map[string]assignment) map[string]assignment {
	members := slices.Sorted(maps.Keys(subs))
	out := make(map[string]assignment, len(members))
	candidates := map[[16]byte][]string{}
	var all []tp
	for _, m := range members {
		out[m] = assignment{}
		for _, t := range subs[m] {
			if _, seen := candidates[t.id]; !seen {
				for p := range t.partitions {
					all = append(all, tp{t.id, p})
				}
			}
			candidates[t.id] = append(candidates[t.id], m)
		}
	}
	slices.SortFunc(all, func(a, b tp) int {
		return cmp.Or(slices.Compare(a.topic[:], b.topic[:]), cmp.Compare(a.p, b.p))
	})
	// A member's fair share: each partition split evenly among those who
	// may take it.
	share := map[string]float64{}
	for _, x := range all {
		for _, m := range candidates[x.topic] {
			share[m] += 1 / float64(len(candidates[x.topic]))
		}
	}
	quota := func(m string) int { return int(share[m] + 0.999999) }
	owners := map[tp]string{}
	for m, a := range prev {
		for t, ps := range a {
			for _, p := range ps {
				owners[tp{t, p}] = m
			}
		}
	}
	count := map[string]int{}
	var rest []tp
	for _, x := range all {
		owner := owners[x]
		if owner != "" && slices.Contains(candidates[x.topic], owner) && count[owner] < quota(owner) {
			out[owner].add(x.topic, x.p)
			count[owner]++
			continue
		}
		rest = append(rest, x)
	}
	for _, x := range rest {
		best := ""
		for _, m := range candidates[x.topic] {
			if best == "" || count[m] < count[best] {
				best = m
			}
		}
		out[best].add(x.topic, x.p)
		count[best]++
	}
	// Even out what stickiness left uneven: move partitions from the
	// fullest member to the emptiest that may take them.
	for range len(all) {
		moved := false
		for _, from := range members {
			for _, to := range members {
				if count[from]-count[to] < 2 {
					continue
				}
				for t, ps := range out[from] {
					if !slices.Contains(candidates[t], to) {
						continue
					}
					p := ps[len(ps)-1]
					out[from].remove(t, p)
					out[to].add(t, p)
					count[from]--
					count[to]++
					moved = true
					break
				}
				if moved {
					break
				}
			}
			if moved {
				break
			}
		}
		if !moved {
			break
		}
	}
	return out
}
