package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func fast848(c *Config) {
	groupConfig(c)
	c.Group.ConsumerHeartbeatInterval = 200 * time.Millisecond
	c.Group.ConsumerSessionTimeout = 3 * time.Second
}

// consumed collects record values across group members.
type consumed struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *consumed) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// member polls for a group until stop ends.
func (c *consumed) member(cl *kgo.Client, stop context.Context, wg *sync.WaitGroup) {
	wg.Go(func() {
		for stop.Err() == nil {
			fs := cl.PollFetches(stop)
			fs.EachRecord(func(r *kgo.Record) {
				c.mu.Lock()
				c.seen[string(r.Value)]++
				c.mu.Unlock()
			})
		}
	})
}

func produceRange(t *testing.T, b *testBroker, topic string, from, to int) {
	t.Helper()
	cl := b.client(kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%06d", i))})
	}
	if err := cl.ProduceSync(ctxT(t, 30*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// KIP-848 consumer groups with franz-go's ServerSideBalancer: the broker
// splits the partitions between members, a member leaving hands its
// partitions to the other, every record is consumed, and the commits
// (fenced by member epoch) land at the end offsets.
func TestConsumerGroup848(t *testing.T) {
	b := startBroker(t, fast848)
	b.createTopic("g848", 6, nil)
	adm := kadm.NewClient(b.client())
	c := &consumed{seen: map[string]int{}}
	stop, stopAll := context.WithCancel(context.Background())
	defer stopAll()
	var wg sync.WaitGroup
	newMember := func(i int) *kgo.Client {
		return b.client(kgo.ConsumerGroup("g848"), kgo.ConsumeTopics("g848"), kgo.ServerSideBalancer(),
			kgo.ClientID(fmt.Sprint("m", i)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AutoCommitInterval(100*time.Millisecond))
	}
	owners := func() map[string]int {
		described, err := adm.DescribeConsumerGroups(context.Background(), "g848")
		if err != nil {
			return nil
		}
		g := described["g848"]
		if g.State != "Stable" {
			return nil
		}
		out := map[string]int{}
		for _, m := range g.Members {
			for _, ps := range m.Assignment {
				out[m.ClientID] += len(ps)
			}
		}
		return out
	}

	produceRange(t, b, "g848", 0, 1000)
	a := newMember(0)
	aStop, stopA := context.WithCancel(stop)
	c.member(a, aStop, &wg)
	waitFor(t, "the first member to read the first 1000", 20*time.Second, func() bool { return c.count() == 1000 })

	second := newMember(1)
	c.member(second, stop, &wg)
	waitFor(t, "the partitions split 3/3", 20*time.Second, func() bool {
		o := owners()
		return o["m0"] == 3 && o["m1"] == 3
	})
	produceRange(t, b, "g848", 1000, 2000)
	waitFor(t, "both members to read the next 1000", 20*time.Second, func() bool { return c.count() == 2000 })

	stopA()
	a.LeaveGroup()
	waitFor(t, "the remaining member to own all 6", 20*time.Second, func() bool { return owners()["m1"] == 6 })
	produceRange(t, b, "g848", 2000, 3000)
	waitFor(t, "the remaining member to read the last 1000", 20*time.Second, func() bool { return c.count() == 3000 })

	if err := second.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(context.Background(), "g848")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "committed offsets at the end offsets", 20*time.Second, func() bool {
		committed, err := adm.FetchOffsets(context.Background(), "g848")
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(e kadm.ListedOffset) {
			if o, found := committed.Lookup("g848", e.Partition); !found || o.At != e.Offset {
				ok = false
			}
		})
		return ok
	})
	listed, err := adm.ListGroups(context.Background())
	if err != nil || len(listed) != 1 || listed["g848"].ProtocolType != "consumer" {
		t.Fatalf("list groups: %+v %v", listed, err)
	}
	stopAll()
	wg.Wait()
}
