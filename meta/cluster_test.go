package meta

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startCluster starts three members in this process on distinct 127.0.0.1 ports. Founding
// members must start concurrently: none is ready before a quorum is.
func startCluster(t *testing.T) []*Node {
	t.Helper()
	for attempt := 0; ; attempt++ {
		nodes, err := tryStartCluster(t, 3)
		if err == nil {
			return nodes
		}
		if !isAddrInUse(err) || attempt == 3 {
			t.Fatalf("starting a 3-member cluster: %v", err)
		}
		t.Logf("port taken, retrying: %v", err)
	}
}

func tryStartCluster(t *testing.T, size int) ([]*Node, error) {
	ports := freePorts(t, 2*size)
	var members []string
	for i := range size {
		members = append(members, fmt.Sprintf("%d=http://%s", i+1, ports[2*i+1]))
	}
	base := t.TempDir()
	nodes := make([]*Node, size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i := range size {
		cfg := DefaultConfig()
		cfg.NodeID = int32(i + 1)
		cfg.Dir = filepath.Join(base, fmt.Sprint(i+1), "meta")
		cfg.ClientListen = ports[2*i]
		cfg.PeerListen = ports[2*i+1]
		cfg.InitialCluster = strings.Join(members, ",")
		cfg.StartTimeout = 20 * time.Second
		wg.Go(func() { nodes[i], errs[i] = Start(testCtx(t), cfg, testLogger()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, n := range nodes {
				if n != nil {
					n.Close()
				}
			}
			return nil, fmt.Errorf("member %d: %w", i+1, err)
		}
	}
	for _, n := range nodes {
		t.Cleanup(func() { n.Close() })
	}
	return nodes, nil
}

func TestThreeMemberCluster(t *testing.T) {
	ctx := testCtx(t)
	nodes := startCluster(t)
	seen := map[uint64]bool{}
	for i, n := range nodes {
		if !n.IsMember() || seen[n.MemberID()] {
			t.Fatalf("node %d: IsMember=%v MemberID=%x", i+1, n.IsMember(), n.MemberID())
		}
		seen[n.MemberID()] = true
	}
	stores := make([]*Store, len(nodes))
	for i, n := range nodes {
		stores[i] = openStore(t, n.Client())
		if stores[i].ClusterID() != stores[0].ClusterID() {
			t.Fatalf("member %d sees cluster id %q, member 1 %q", i+1, stores[i].ClusterID(), stores[0].ClusterID())
		}
	}

	// A broker that runs no member joins as a client of all three.
	cfg := DefaultConfig()
	cfg.NodeID = 4
	cfg.Dir = ""
	for _, n := range nodes {
		cfg.Endpoints = append(cfg.Endpoints, n.ClientURL())
	}
	client, err := Start(ctx, cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if client.IsMember() {
		t.Fatal("client-only node claims to be a member")
	}
	cs := openStore(t, client.Client())
	if cs.ClusterID() != stores[0].ClusterID() {
		t.Fatalf("client sees cluster id %q, members %q", cs.ClusterID(), stores[0].ClusterID())
	}

	c3 := startCache(t, stores[2])
	topic, parts := testTopic("replicated", 3)
	rev, err := stores[0].CreateTopic(ctx, topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c3.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, ok := c3.Topic("replicated"); !ok {
		t.Fatal("member 3's cache missed a topic created through member 1")
	}
	reg, err := cs.RegisterBroker(ctx, BrokerInfo{NodeID: 4, Host: "h4", Port: 9092}, cfg.SessionTTL)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	waitFor(t, c3, 10*time.Second, "broker 4 via member 3", func() bool { return len(c3.Brokers()) == 1 })

	// Losing one member of three keeps the quorum: writes and watches go on.
	if err := nodes[0].Close(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	more, moreParts := testTopic("after-loss", 1)
	rev, err = stores[1].CreateTopic(wctx, more, moreParts)
	if err != nil {
		t.Fatalf("write with 2 of 3 members: %v", err)
	}
	if err := c3.WaitRevision(wctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, ok := c3.Topic("after-loss"); !ok {
		t.Fatal("cache missed a write made after losing a member")
	}
	if len(c3.Brokers()) != 1 {
		t.Fatal("broker 4's registration lost with member 1")
	}
}
