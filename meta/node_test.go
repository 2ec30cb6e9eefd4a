package meta

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"negative node id", func(c *Config) { c.NodeID = -1 }, "negative"},
		{"no dir", func(c *Config) { c.Dir = "" }, "data dir"},
		{"client only needs no dir", func(c *Config) { c.Dir = ""; c.Endpoints = []string{"http://127.0.0.1:2379"} }, ""},
		{"empty endpoint", func(c *Config) { c.Endpoints = []string{" "} }, "empty etcd endpoint"},
		{"bad client listen", func(c *Config) { c.ClientListen = "nohost" }, "client listen"},
		{"bad peer port", func(c *Config) { c.PeerListen = "127.0.0.1:99999" }, "peer listen"},
		{"short ttl", func(c *Config) { c.SessionTTL = 100 * time.Millisecond }, "session ttl"},
		{"three members", func(c *Config) {
			c.InitialCluster = "1=http://h1:2380,2=http://h2:2380,3=http://h3:2380"
		}, ""},
		{"not in initial cluster", func(c *Config) { c.InitialCluster = "2=http://h2:2380" }, "no member named \"1\""},
		{"member name not an id", func(c *Config) { c.InitialCluster = "one=http://h1:2380" }, "not a node id"},
		{"bad scheme", func(c *Config) { c.InitialCluster = "1=tcp://h1:2380" }, "scheme"},
		{"not name=url", func(c *Config) { c.InitialCluster = "1" }, "not name=url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestRestartKeepsData restarts a member on the same dir: the cluster id, topics and
// partition states survive, and the restart does not bootstrap a new cluster.
func TestRestartKeepsData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	ctx := testCtx(t)

	n, err := Start(ctx, singleConfig(dir), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if !n.IsMember() || n.MemberID() == 0 {
		t.Fatalf("IsMember=%v MemberID=%x, want a member", n.IsMember(), n.MemberID())
	}
	memberID := n.MemberID()
	s, err := OpenStore(ctx, n.Client(), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	id := s.ClusterID()
	if len(id) != 22 {
		t.Fatalf("cluster id %q is not 22 characters", id)
	}
	if want := "/sediment/" + id + "/v1/"; s.Prefix() != want {
		t.Fatalf("Prefix = %q, want %q", s.Prefix(), want)
	}
	topic, parts := testTopic("orders", 3)
	if _, err := s.CreateTopic(ctx, topic, parts); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil { // idempotent
		t.Fatal(err)
	}

	n2 := startSingle(t, dir)
	if n2.MemberID() != memberID {
		t.Fatalf("member id changed across restart: %x -> %x", memberID, n2.MemberID())
	}
	s2 := openStore(t, n2.Client())
	if s2.ClusterID() != id {
		t.Fatalf("cluster id changed across restart: %q -> %q", id, s2.ClusterID())
	}
	got, err := s2.Topic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != topic.ID || len(got.Partitions) != 3 || got.Configs["retention.ms"] != "1000" {
		t.Fatalf("topic after restart = %+v, want %+v", got, topic)
	}
	c := startCache(t, s2)
	if ps, ok := c.Partition(topic.ID, 2); !ok || ps.Leader != 1 {
		t.Fatalf("partition 2 after restart = %+v, %v", ps, ok)
	}
}

func TestStartFailsClearly(t *testing.T) {
	t.Run("ctx done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		cfg := singleConfig(filepath.Join(t.TempDir(), "meta"))
		_, err := Start(ctx, cfg, testLogger())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Start with a cancelled ctx = %v, want context.Canceled", err)
		}
	})
	t.Run("no quorum", func(t *testing.T) {
		// Member 1 of a three-member cluster whose other members never start.
		ports := freePorts(t, 4)
		cfg := DefaultConfig()
		cfg.Dir = filepath.Join(t.TempDir(), "meta")
		cfg.ClientListen = ports[0]
		cfg.PeerListen = ports[1]
		cfg.InitialCluster = "1=http://" + ports[1] + ",2=http://" + ports[2] + ",3=http://" + ports[3]
		cfg.StartTimeout = 2 * time.Second
		_, err := Start(context.Background(), cfg, testLogger())
		if err == nil || !strings.Contains(err.Error(), "not ready") {
			t.Fatalf("Start without quorum = %v, want a not-ready error", err)
		}
	})
	t.Run("client only, nothing listening", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Endpoints = []string{"http://" + freePorts(t, 1)[0]}
		cfg.DialTimeout = 500 * time.Millisecond
		cfg.StartTimeout = 500 * time.Millisecond
		if _, err := Start(context.Background(), cfg, testLogger()); err == nil {
			t.Fatal("Start against a dead endpoint succeeded")
		}
	})
}
