package group

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

func topics(specs ...any) []topicInfo {
	var out []topicInfo
	for i := 0; i < len(specs); i += 2 {
		name := specs[i].(string)
		var id [16]byte
		copy(id[:], name)
		out = append(out, topicInfo{name: name, id: id, partitions: int32(specs[i+1].(int))})
	}
	return out
}

// checkComplete asserts every partition of every subscribed topic has
// exactly one owner, subscribed to it.
func checkComplete(t *testing.T, subs map[string][]topicInfo, got map[string]assignment) {
	t.Helper()
	owners := map[tp]string{}
	for m, a := range got {
		for id, ps := range a {
			if !slices.ContainsFunc(subs[m], func(ti topicInfo) bool { return ti.id == id }) {
				t.Fatalf("member %s got a topic it does not subscribe to", m)
			}
			for _, p := range ps {
				if o, dup := owners[tp{id, p}]; dup {
					t.Fatalf("partition %d owned by %s and %s", p, o, m)
				}
				owners[tp{id, p}] = m
			}
		}
	}
	for _, ts := range subs {
		for _, ti := range ts {
			for p := range ti.partitions {
				if _, ok := owners[tp{ti.id, p}]; !ok {
					t.Fatalf("partition %s-%d unassigned", ti.name, p)
				}
			}
		}
	}
}

func TestUniformBalancedAndSticky(t *testing.T) {
	all := topics("a", 7, "b", 5)
	subs := map[string][]topicInfo{"m1": all, "m2": all, "m3": all}
	first := assign("uniform", subs, nil)
	checkComplete(t, subs, first)
	for m, a := range first {
		if n := a.size(); n != 4 {
			t.Fatalf("%s got %d of 12 partitions, want 4", m, n)
		}
	}
	// A fourth member: balanced again (3 each), and nobody loses a
	// partition it had unless it must.
	subs["m4"] = all
	second := assign("uniform", subs, first)
	checkComplete(t, subs, second)
	moved := 0
	for m, a := range second {
		if n := a.size(); n != 3 {
			t.Fatalf("%s got %d of 12 partitions, want 3", m, n)
		}
		moved += a.minus(first[m]).size()
	}
	if moved != 3 {
		t.Fatalf("%d partitions moved to make room for one member, want 3", moved)
	}
	// Heterogeneous subscriptions: b only for m1; a for all three.
	subs = map[string][]topicInfo{"m1": all, "m2": all[:1], "m3": all[:1]}
	het := assign("uniform", subs, nil)
	checkComplete(t, subs, het)
	if n := het["m1"].size(); n < 5 {
		t.Fatalf("the only subscriber of b got %d partitions", n)
	}
}

func TestRangeContiguous(t *testing.T) {
	all := topics("x", 8, "y", 8)
	subs := map[string][]topicInfo{"a": all, "b": all, "c": all}
	got := assign("range", subs, nil)
	checkComplete(t, subs, got)
	// Sorted members get contiguous ranges, the first ones one more:
	// a [0 1 2], b [3 4 5], c [6 7], the same for both topics.
	for m, want := range map[string][]int32{"a": {0, 1, 2}, "b": {3, 4, 5}, "c": {6, 7}} {
		for _, ti := range all {
			if ps := got[m][ti.id]; !slices.Equal(ps, want) {
				t.Fatalf("%s of %s: %v, want %v", m, ti.name, ps, want)
			}
		}
	}
}

func TestUniformManyMembersFewPartitions(t *testing.T) {
	all := topics("z", 2)
	subs := map[string][]topicInfo{}
	for i := range 5 {
		subs[fmt.Sprint("m", i)] = all
	}
	got := assign("uniform", subs, nil)
	checkComplete(t, subs, got)
	n := 0
	for _, m := range slices.Sorted(maps.Keys(got)) {
		if s := got[m].size(); s > 1 {
			t.Fatalf("%s got %d partitions while others got none", m, s)
		} else {
			n += s
		}
	}
	if n != 2 {
		t.Fatalf("%d partitions assigned", n)
	}
}

func TestPartitionForMatchesKafka(t *testing.T) {
	// Java: Math.abs("my-group".hashCode()) % 50 == 12; "" hashes to 0.
	for _, tc := range []struct {
		group string
		want  int32
	}{{"my-group", javaMod("my-group", 50)}, {"", 0}} {
		if got := PartitionFor(tc.group, 50); got != tc.want {
			t.Fatalf("PartitionFor(%q) = %d, want %d", tc.group, got, tc.want)
		}
	}
	// Known value: "test".hashCode() is 3556498.
	if got := PartitionFor("test", 1000000); got != 3556498%1000000 {
		t.Fatalf("PartitionFor(test) = %d", got)
	}
}

// javaMod computes Java's String.hashCode independently of PartitionFor.
func javaMod(s string, n int32) int32 {
	var h int32
	for _, c := range s { // ASCII only here
		h = h*31 + int32(c)
	}
	if h < 0 {
		h = -h
	}
	return h % n
}
