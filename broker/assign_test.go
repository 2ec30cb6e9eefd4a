package broker

import (
	"slices"
	"testing"

	"github.com/sedimentio/sediment/meta"
)

func TestRackAlternating(t *testing.T) {
	bs := []meta.BrokerInfo{
		{NodeID: 5, Rack: "c"}, {NodeID: 1, Rack: "a"}, {NodeID: 3, Rack: "b"},
		{NodeID: 2, Rack: "a"}, {NodeID: 4, Rack: "c"},
	}
	if got, want := rackAlternating(bs), []int32{1, 3, 4, 2, 5}; !slices.Equal(got, want) {
		t.Fatalf("rackAlternating = %v, want %v", got, want)
	}
}

// TestAssignReplicasRackAware: with three racks and RF=3, every partition
// has one replica per rack; leaders spread evenly over brokers.
func TestAssignReplicasRackAware(t *testing.T) {
	var bs []meta.BrokerInfo
	rack := map[int32]string{}
	for id := int32(1); id <= 6; id++ {
		r := string(rune('a' + id%3))
		bs = append(bs, meta.BrokerInfo{NodeID: id, Rack: r})
		rack[id] = r
	}
	assign, err := assignReplicas(bs, 0, 12, 3)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int{}
	for p, rs := range assign {
		seen := map[string]bool{}
		for _, id := range rs {
			if seen[rack[id]] {
				t.Fatalf("partition %d: replicas %v share rack %s", p, rs, rack[id])
			}
			seen[rack[id]] = true
		}
		leaders[rs[0]]++
	}
	for id := int32(1); id <= 6; id++ {
		if leaders[id] != 2 {
			t.Fatalf("leaders per broker %v, want 2 each", leaders)
		}
	}
	if _, err := assignReplicas(bs[:2], 0, 1, 3); err == nil {
		t.Fatal("RF 3 on 2 brokers accepted")
	}
}
