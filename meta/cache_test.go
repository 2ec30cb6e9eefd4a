package meta

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestCacheFollowsOtherWriters(t *testing.T) {
	ctx := testCtx(t)
	n := startSingle(t, "")
	s := openStore(t, n.Client())
	writer := openStore(t, newClient(t, n)) // another broker's client

	// Initial load sees what exists before the cache starts.
	pre, preParts := testTopic("pre", 2)
	if _, err := writer.CreateTopic(ctx, pre, preParts); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.PutClusterConfig(ctx, "log.retention.ms", "1000"); err != nil {
		t.Fatal(err)
	}
	c := startCache(t, s)
	if got, ok := c.Topic("pre"); !ok || got.ID != pre.ID || got.Revision == 0 {
		t.Fatalf("initial load: Topic(pre) = %+v, %v", got, ok)
	}
	if _, ok := c.Partition(pre.ID, 1); !ok {
		t.Fatal("initial load: partition pre/1 missing")
	}
	if c.ClusterConfigs()["log.retention.ms"] != "1000" {
		t.Fatalf("initial load: configs %v", c.ClusterConfigs())
	}

	sub, unsubscribe := c.Subscribe()
	defer unsubscribe()

	// A write through another client shows up after WaitRevision, and subscribers hear of it.
	topic, parts := testTopic("orders", 3)
	rev, err := writer.CreateTopic(ctx, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if c.Revision() < rev {
		t.Fatalf("Revision %d < %d after WaitRevision", c.Revision(), rev)
	}
	got, ok := c.Topic("orders")
	if !ok || got.ID != topic.ID || got.Revision != rev || len(got.Partitions) != 3 {
		t.Fatalf("Topic(orders) = %+v, %v", got, ok)
	}
	if byID, ok := c.TopicByID(topic.ID); !ok || byID.Name != "orders" {
		t.Fatalf("TopicByID = %+v, %v", byID, ok)
	}
	if n, ok := c.PartitionCount("orders"); !ok || n != 3 {
		t.Fatalf("PartitionCount(orders) = %d, %v", n, ok)
	}
	if n, ok := c.PartitionCount("nope"); ok || n != 0 {
		t.Fatalf("PartitionCount(nope) = %d, %v", n, ok)
	}
	if name, ok := c.TopicName(topic.ID); !ok || name != "orders" {
		t.Fatalf("TopicName = %q, %v", name, ok)
	}
	if name, ok := c.TopicName(NewTopicID()); ok || name != "" {
		t.Fatalf("TopicName(unknown id) = %q, %v", name, ok)
	}
	if id, ok := c.TopicID("orders"); !ok || id != topic.ID {
		t.Fatalf("TopicID(orders) = %v, %v", id, ok)
	}
	if id, ok := c.TopicID("nope"); ok || !id.IsZero() {
		t.Fatalf("TopicID(nope) = %v, %v", id, ok)
	}
	if tc, ok := c.TopicConfigsByID(topic.ID); !ok || tc.Name != "orders" || tc.ID != topic.ID || tc.Revision != rev || tc.Partitions != nil {
		t.Fatalf("TopicConfigsByID = %+v, %v", tc, ok)
	}
	if r, ok := c.Replicas(topic.ID, 2); !ok || !slices.Equal(r, topic.Partitions[2]) {
		t.Fatalf("Replicas(orders, 2) = %v, %v; want %v", r, ok, topic.Partitions[2])
	}
	if r, ok := c.Replicas(topic.ID, 3); ok || r != nil {
		t.Fatalf("Replicas(orders, 3) = %v, %v", r, ok)
	}
	if ps, ok := c.Partition(topic.ID, 2); !ok || ps.Leader != 1 || ps.Revision != rev {
		t.Fatalf("Partition(orders, 2) = %+v, %v", ps, ok)
	}
	select {
	case <-sub:
	case <-time.After(5 * time.Second):
		t.Fatal("no Subscribe signal after a change")
	}
	names := func() []string {
		var out []string
		for _, tp := range c.Topics() {
			out = append(out, tp.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"orders", "pre"}) {
		t.Fatalf("Topics() = %v, want sorted [orders pre]", got)
	}

	// Snapshots are copies.
	snap, _ := c.Topic("orders")
	snap.Partitions[0][0] = 99
	snap.Configs["retention.ms"] = "x"
	if again, _ := c.Topic("orders"); again.Partitions[0][0] != 1 || again.Configs["retention.ms"] != "1000" {
		t.Fatalf("mutating a snapshot changed the cache: %+v", again)
	}

	// Partition CAS from the other client.
	ps, _ := c.Partition(topic.ID, 0)
	ps.Leader, ps.LeaderEpoch = 2, 1
	rev, err = writer.UpdatePartition(ctx, topic.ID, 0, ps)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if ps, _ := c.Partition(topic.ID, 0); ps.Leader != 2 || ps.LeaderEpoch != 1 || ps.Revision != rev {
		t.Fatalf("partition after CAS = %+v", ps)
	}

	// Delete removes the topic and its partitions.
	rev, err = writer.DeleteTopic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Topic("orders"); ok {
		t.Fatal("deleted topic still cached")
	}
	if _, ok := c.TopicByID(topic.ID); ok {
		t.Fatal("deleted topic still cached by id")
	}
	if _, ok := c.Partition(topic.ID, 1); ok {
		t.Fatal("deleted topic's partition still cached")
	}

	// A write outside the mirrored keys still completes WaitRevision (progress notification).
	resp, err := writer.Client().Put(ctx, "/elsewhere/key", "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRevision(ctx, resp.Header.Revision); err != nil {
		t.Fatalf("WaitRevision for a write outside the prefix: %v", err)
	}

	// Close ends waits and subscriptions.
	c.Close()
	if err := c.WaitRevision(ctx, c.Revision()+100); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitRevision after Close = %v, want ErrClosed", err)
	}
	for range sub { // drains a pending signal, then sees the close
	}
	if ch, _ := c.Subscribe(); ch != nil {
		if _, open := <-ch; open {
			t.Fatal("Subscribe after Close returned an open channel")
		}
	}
	if _, ok := c.Topic("pre"); !ok {
		t.Fatal("readers lost the last state after Close")
	}
}

// TestCacheRelistsAfterCompaction starts a cache's watch from a revision etcd has compacted
// away, as after a long disconnection: the cache must re-list and keep following.
func TestCacheRelistsAfterCompaction(t *testing.T) {
	ctx := testCtx(t)
	n := startSingle(t, "")
	s := openStore(t, n.Client())
	a, aParts := testTopic("a", 1)
	if _, err := s.CreateTopic(ctx, a, aParts); err != nil {
		t.Fatal(err)
	}
	b, bParts := testTopic("b", 1)
	rev, err := s.CreateTopic(ctx, b, bParts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}

	c := s.newCache(ctx) // empty, at revision 0: its watch starts at a compacted revision
	c.start()
	t.Cleanup(c.Close)
	if err := c.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Topic("a"); !ok {
		t.Fatal("re-list did not load topic a")
	}
	if _, ok := c.Topic("b"); !ok {
		t.Fatal("re-list did not load topic b")
	}
	// And it follows new changes after the re-list.
	d, dParts := testTopic("d", 1)
	rev, err = s.CreateTopic(ctx, d, dParts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Topic("d"); !ok {
		t.Fatal("cache stopped following after re-list")
	}
}

func TestCacheStopsWithContext(t *testing.T) {
	n := startSingle(t, "")
	s := openStore(t, n.Client())
	ctx, cancel := testCtxCancel(t)
	c, err := s.StartCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := c.Subscribe()
	cancel()
	select {
	case _, open := <-sub:
		if open {
			<-sub
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription not closed after the cache's context ended")
	}
	c.Close() // still fine
}
