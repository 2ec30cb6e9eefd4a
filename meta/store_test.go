package meta

import (
	"errors"
	"slices"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestClusterIDCreatedOnce(t *testing.T) {
	n := startSingle(t, "")
	// Brokers race to create the id; all must read back the same one.
	const racers = 8
	ids := make([]string, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			s, err := OpenStore(testCtx(t), newClient(t, n), testLogger())
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = s.ClusterID()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("cluster ids differ: %q", ids)
		}
	}
	if _, err := ParseTopicID(ids[0]); err != nil {
		t.Fatalf("cluster id %q is not a Kafka uuid: %v", ids[0], err)
	}
}

func TestTopicLifecycle(t *testing.T) {
	ctx := testCtx(t)
	n := startSingle(t, "")
	s := openStore(t, n.Client())

	topic, parts := testTopic("orders", 2)
	rev, err := s.CreateTopic(ctx, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	again, againParts := testTopic("orders", 5)
	if _, err := s.CreateTopic(ctx, again, againParts); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second CreateTopic = %v, want ErrTopicExists", err)
	}

	got, err := s.Topic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != rev || got.ID != topic.ID || len(got.Partitions) != 2 {
		t.Fatalf("Topic = %+v, want id %s, 2 partitions, revision %d", got, topic.ID, rev)
	}
	ps, err := s.Partition(ctx, topic.ID, 1)
	if err != nil || ps.Leader != 1 || !slices.Equal(ps.ISR, []int32{1}) || ps.Revision != rev {
		t.Fatalf("Partition = %+v, %v", ps, err)
	}
	if _, err := s.Partition(ctx, topic.ID, 2); !errors.Is(err, ErrPartitionNotFound) {
		t.Fatalf("Partition 2 = %v, want ErrPartitionNotFound", err)
	}

	// Add a partition and change a config in one CAS.
	upd := got
	upd.Configs = map[string]string{"retention.ms": "5000", "cleanup.policy": "compact"}
	upd.Partitions = append(upd.Partitions, []int32{1})
	rev2, err := s.UpdateTopic(ctx, upd, map[int32]PartitionState{2: {Leader: 1, ISR: []int32{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if rev2 <= rev {
		t.Fatalf("update revision %d not after create revision %d", rev2, rev)
	}
	if ps, err := s.Partition(ctx, topic.ID, 2); err != nil || ps.Revision != rev2 {
		t.Fatalf("new partition = %+v, %v", ps, err)
	}
	// The stale read loses.
	stale := got
	stale.Configs = map[string]string{"retention.ms": "1"}
	if _, err := s.UpdateTopic(ctx, stale, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale UpdateTopic = %v, want ErrConflict", err)
	}
	if _, err := s.UpdateTopic(ctx, upd, map[int32]PartitionState{7: {}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("UpdateTopic with partition outside the topic = %v, want ErrInvalid", err)
	}
	cur, _ := s.Topic(ctx, "orders")
	if cur.Configs["retention.ms"] != "5000" || cur.Configs["cleanup.policy"] != "compact" || len(cur.Partitions) != 3 {
		t.Fatalf("topic after update = %+v", cur)
	}

	if _, err := s.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTopic(ctx, "orders"); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("second DeleteTopic = %v, want ErrTopicNotFound", err)
	}
	if _, err := s.Topic(ctx, "orders"); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("Topic after delete = %v, want ErrTopicNotFound", err)
	}
	resp, err := n.Client().Get(ctx, s.partitionsPrefix(topic.ID), clientv3.WithPrefix())
	if err != nil || resp.Count != 0 {
		t.Fatalf("partition keys after delete: %d, %v", resp.Count, err)
	}
	if _, err := s.UpdateTopic(ctx, cur, nil); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("UpdateTopic after delete = %v, want ErrTopicNotFound", err)
	}
	// The name can be reused; the new topic gets a new id.
	re, reParts := testTopic("orders", 1)
	if _, err := s.CreateTopic(ctx, re, reParts); err != nil {
		t.Fatalf("re-create after delete: %v", err)
	}
}

func TestCreateTopicValidation(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, startSingle(t, "").Client())
	bad := []struct {
		name string
		t    Topic
		n    int
	}{
		{"slash", Topic{Name: "a/b", ID: NewTopicID(), Partitions: [][]int32{{1}}}, 1},
		{"dotdot", Topic{Name: "..", ID: NewTopicID(), Partitions: [][]int32{{1}}}, 1},
		{"zero id", Topic{Name: "ok", Partitions: [][]int32{{1}}}, 1},
		{"state count", Topic{Name: "ok", ID: NewTopicID(), Partitions: [][]int32{{1}, {1}}}, 1},
	}
	for _, b := range bad {
		if _, err := s.CreateTopic(ctx, b.t, make([]PartitionState, b.n)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: CreateTopic = %v, want ErrInvalid", b.name, err)
		}
	}
}

func TestPartitionCAS(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, startSingle(t, "").Client())
	topic, parts := testTopic("payments", 1)
	if _, err := s.CreateTopic(ctx, topic, parts); err != nil {
		t.Fatal(err)
	}
	read, err := s.Partition(ctx, topic.ID, 0)
	if err != nil {
		t.Fatal(err)
	}

	// Two controllers read the same state; only the first write wins.
	a, b := read, read
	a.Leader, a.LeaderEpoch, a.ISR, a.PartitionEpoch = 2, 1, []int32{2}, 1
	b.Leader, b.LeaderEpoch, b.ISR, b.PartitionEpoch = 3, 1, []int32{3}, 1
	rev, err := s.UpdatePartition(ctx, topic.ID, 0, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdatePartition(ctx, topic.ID, 0, b); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale UpdatePartition = %v, want ErrConflict", err)
	}
	got, _ := s.Partition(ctx, topic.ID, 0)
	if got.Leader != 2 || got.LeaderEpoch != 1 || got.Revision != rev {
		t.Fatalf("partition = %+v, want leader 2 epoch 1 at revision %d", got, rev)
	}
	// Re-read, then the change applies.
	got.ISR = []int32{2, 3}
	got.PartitionEpoch++
	if _, err := s.UpdatePartition(ctx, topic.ID, 0, got); err != nil {
		t.Fatal(err)
	}
	// A partition that does not exist cannot be "updated" into existence.
	ghost := PartitionState{Leader: 1, Revision: rev}
	if _, err := s.UpdatePartition(ctx, topic.ID, 9, ghost); !errors.Is(err, ErrConflict) {
		t.Fatalf("UpdatePartition of a missing partition = %v, want ErrConflict", err)
	}
	if _, err := s.UpdatePartition(ctx, topic.ID, 0, PartitionState{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("UpdatePartition without revision = %v, want ErrInvalid", err)
	}
}

func TestClusterConfigs(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, startSingle(t, "").Client())
	if _, err := s.PutClusterConfig(ctx, "log.retention.ms", "60000"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutClusterConfig(ctx, "num.partitions", "3"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutClusterConfig(ctx, "num.partitions", ""); err != nil {
		t.Fatal(err)
	}
	got, rev, err := s.ClusterConfigs(ctx)
	if err != nil || rev == 0 || len(got) != 1 || got["log.retention.ms"] != "60000" {
		t.Fatalf("ClusterConfigs = %v, %d, %v", got, rev, err)
	}
	if _, err := s.PutClusterConfig(ctx, "a/b", "1"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutClusterConfig with a bad name = %v, want ErrInvalid", err)
	}
}

func TestValueVersionChecked(t *testing.T) {
	ctx := testCtx(t)
	n := startSingle(t, "")
	s := openStore(t, n.Client())
	if _, err := n.Client().Put(ctx, s.topicKey("future"), `{"v":2,"name":"future"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Topic(ctx, "future"); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("Topic with a v2 value = %v, want ErrUnsupportedVersion", err)
	}
	// The cache skips what it cannot read instead of failing.
	c := startCache(t, s)
	if _, ok := c.Topic("future"); ok {
		t.Fatal("cache holds a topic it cannot decode")
	}
}

func TestAllocateProducerIDsDisjoint(t *testing.T) {
	n := startSingle(t, "")
	const brokers, blocks, size = 4, 5, 10
	starts := make(chan int64, brokers*blocks)
	var wg sync.WaitGroup
	for range brokers {
		s := openStore(t, newClient(t, n))
		wg.Go(func() {
			for range blocks {
				first, err := s.AllocateProducerIDs(testCtx(t), size)
				if err != nil {
					t.Error(err)
					return
				}
				starts <- first
			}
		})
	}
	wg.Wait()
	close(starts)
	var got []int64
	for s := range starts {
		got = append(got, s)
	}
	slices.Sort(got)
	for i, s := range got {
		if s != int64(i*size) {
			t.Fatalf("block starts %v: blocks overlap or leave gaps", got)
		}
	}
}
