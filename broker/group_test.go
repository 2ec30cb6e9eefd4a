package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupConfig makes group tests quick: a few offsets partitions, no
// initial rebalance delay.
func groupConfig(c *Config) {
	c.OffsetsTopicPartitions = 3
	c.Group.InitialRebalanceDelay = 0
}

func produceKeyed(t *testing.T, b *testBroker, topic string, n int) {
	t.Helper()
	cl := b.client(kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%06d", i))})
	}
	if err := cl.ProduceSync(ctxT(t, 30*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// Two franz-go members consume a topic in one group: every record once,
// committed offsets equal the end offsets, and they survive a restart.
func TestGroupConsumeAndCommit(t *testing.T) {
	dir := t.TempDir()
	b := startBrokerIn(t, dir, groupConfig)
	b.createTopic("gt", 4, nil)
	const n = 2000
	produceKeyed(t, b, "gt", n)

	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	ctx, done := context.WithTimeout(context.Background(), 60*time.Second)
	defer done()
	var wg sync.WaitGroup
	for i := range 2 {
		cl := b.client(kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("gt"), kgo.ClientID(fmt.Sprint("member-", i)),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AutoCommitInterval(100*time.Millisecond))
		wg.Go(func() {
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)]++
					mu.Unlock()
				})
				mu.Lock()
				all := len(seen) == n
				mu.Unlock()
				if all {
					done() // the other member is done too
				}
			}
			if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
				t.Errorf("commit: %v", err)
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("consumed %d distinct records of %d", len(seen), n)
	}
	adm := b.admin()
	checkCommitted := func(adm *kadm.Client) {
		t.Helper()
		ends, err := adm.ListEndOffsets(ctxT(t, 10*time.Second), "gt")
		if err != nil {
			t.Fatal(err)
		}
		var committed kadm.OffsetResponses
		deadline := time.Now().Add(15 * time.Second)
		for {
			committed, err = adm.FetchOffsets(ctxT(t, 10*time.Second), "g1")
			if err == nil {
				ok := true
				ends.Each(func(e kadm.ListedOffset) {
					if o, found := committed.Lookup("gt", e.Partition); !found || o.At != e.Offset {
						ok = false
					}
				})
				if ok {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("committed %v, end offsets %v, err %v", committed, ends, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	checkCommitted(adm)
	groups, err := adm.ListGroups(ctxT(t, 10*time.Second))
	if err != nil || len(groups.Groups()) != 1 {
		t.Fatalf("list groups: %v %v", groups, err)
	}

	// The offsets are in __consumer_offsets: a restarted broker loads them.
	b.stop()
	b = startBrokerIn(t, dir, groupConfig)
	checkCommitted(b.admin())
}

// __consumer_offsets is compacted: after many commits of one partition the
// cleaner keeps the last, and a restarted broker loads exactly that.
func TestOffsetsTopicCompacted(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *Config) {
		groupConfig(c)
		c.OffsetsTopicPartitions = 1
		c.OffsetsTopicSegmentBytes = 4096
		c.LogCleaner.Backoff = 50 * time.Millisecond
	}
	b := startBrokerIn(t, dir, mod)
	b.createTopic("ct", 1, nil)
	w := newGroupWire(t, b)
	const commits = 1500
	for i := range commits {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = "compacting", -1
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "ct", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: int64(i), LeaderEpoch: -1}}}}
		if code := w.req(req).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("commit %d: error %d", i, code)
		}
	}
	p := b.srv.parts.Get("__consumer_offsets", 0)
	appended := int64(commits * 61) // at least a batch header per commit
	waitFor(t, "the cleaner to compact __consumer_offsets", 30*time.Second, func() bool { return p.Size() < appended/10 })
	b.stop()
	b = startBrokerIn(t, dir, mod)
	w = newGroupWire(t, b)
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = "compacting"
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "ct", Partitions: []int32{0}}}
	resp := w.req(req).(*kmsg.OffsetFetchResponse)
	if got := resp.Topics[0].Partitions[0].Offset; got != commits-1 {
		t.Fatalf("committed offset after compaction and restart: %d, want %d", got, commits-1)
	}
}
