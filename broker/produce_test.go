package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceManyPartitions sends Produce requests of many partitions: every
// partition's entry in the response is its own (offsets, a corrupt batch's
// CORRUPT_MESSAGE, an unknown partition's error with its leader hint), the
// logs hold exactly what was acknowledged, and a partition named three times
// in one request is appended in the request's order.
func TestProduceManyPartitions(t *testing.T) {
	b := startBroker(t, nil)
	b.createTopic("many", 8, nil)
	cl := b.client()
	ctx := ctxT(t, 60*time.Second)
	const n = 5000 // records per batch: ~40 KB
	batch := buildBatch(-1, -1, -1, n)
	corrupt := append([]byte(nil), batch...)
	corrupt[len(corrupt)-1] ^= 0xff // the CRC covers it

	produce := func(parts []int32) []kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "many"
		for _, p := range parts {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rp.Records = append([]byte(nil), batch...)
			if p == 3 {
				rp.Records = append([]byte(nil), corrupt...)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != len(parts) {
			t.Fatalf("response %+v for %d partitions", resp.Topics, len(parts))
		}
		return resp.Topics[0].Partitions
	}

	parts := []int32{0, 1, 2, 3, 4, 5, 6, 7, 99}
	for round := range 2 {
		for i, sp := range produce(parts) {
			p := parts[i]
			switch {
			case sp.Partition != p:
				t.Fatalf("round %d: entry %d names partition %d, want %d", round, i, sp.Partition, p)
			case p == 3:
				if sp.ErrorCode != kerr.CorruptMessage.Code {
					t.Errorf("round %d: corrupt batch: error %d, want CORRUPT_MESSAGE", round, sp.ErrorCode)
				}
			case p == 99:
				if sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
					t.Errorf("round %d: unknown partition: error %d, want UNKNOWN_TOPIC_OR_PARTITION", round, sp.ErrorCode)
				}
			case sp.ErrorCode != 0 || sp.BaseOffset != int64(round*n):
				t.Errorf("round %d: partition %d: error %d, base offset %d, want 0 and %d", round, p, sp.ErrorCode, sp.BaseOffset, round*n)
			}
		}
	}

	// Partition 0 three times: appended one after the other, in the request's order.
	dup := []int32{0, 0, 1, 2, 4, 0, 5, 6}
	var bases []int64
	for i, sp := range produce(dup) {
		if sp.ErrorCode != 0 {
			t.Fatalf("entry %d (partition %d): error %d", i, dup[i], sp.ErrorCode)
		}
		if dup[i] == 0 {
			bases = append(bases, sp.BaseOffset)
		}
	}
	if len(bases) != 3 || bases[0] != 2*n || bases[1] != 3*n || bases[2] != 4*n {
		t.Errorf("partition 0 named three times: base offsets %v, want %d, %d, %d", bases, 2*n, 3*n, 4*n)
	}

	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "many")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{0: 5 * n, 1: 3 * n, 2: 3 * n, 3: 0, 4: 3 * n, 5: 3 * n, 6: 3 * n, 7: 2 * n}
	for p, w := range want {
		if o, _ := ends.Lookup("many", p); o.Offset != w {
			t.Errorf("partition %d: end offset %d, want %d", p, o.Offset, w)
		}
	}
}
