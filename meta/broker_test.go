package meta

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBrokerRegistration(t *testing.T) {
	ctx := testCtx(t)
	n := startSingle(t, "")
	s := openStore(t, n.Client())
	other := openStore(t, newClient(t, n)) // a second broker process
	c := startCache(t, s)

	info := BrokerInfo{NodeID: 1, Host: "127.0.0.1", Port: 9092, Rack: "a",
		Listeners: map[string]string{"PLAINTEXT": "127.0.0.1:9092"}}
	reg, err := s.RegisterBroker(ctx, info, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, 5*time.Second, "broker 1 registered", func() bool { return len(c.Brokers()) == 1 })
	if got := c.Brokers()[0]; got.Host != "127.0.0.1" || got.Port != 9092 || got.Rack != "a" || got.Listeners["PLAINTEXT"] != "127.0.0.1:9092" {
		t.Fatalf("Brokers()[0] = %+v", got)
	}

	// The id is taken while the first lease lives, from any client.
	if _, err := other.RegisterBroker(ctx, BrokerInfo{NodeID: 1, Host: "h2", Port: 1}, 2*time.Second); !errors.Is(err, ErrBrokerIDInUse) {
		t.Fatalf("duplicate RegisterBroker = %v, want ErrBrokerIDInUse", err)
	}
	// Keep-alives hold the registration past its TTL.
	select {
	case <-reg.Done():
		t.Fatal("registration lost while kept alive")
	case <-time.After(3 * time.Second):
	}
	if len(c.Brokers()) != 1 {
		t.Fatal("broker vanished while its lease was kept alive")
	}

	// Update rewrites the info on the same lease.
	info.Port = 9093
	if err := reg.Update(ctx, info); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, 5*time.Second, "updated port", func() bool { b := c.Brokers(); return len(b) == 1 && b[0].Port == 9093 })

	// Close revokes: the entry goes at once and the id is free again.
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := reg.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if resp, err := s.Client().Get(ctx, s.brokerKey(1)); err != nil || resp.Count != 0 {
		t.Fatalf("brokers/1 after Close: %v, %v", resp, err)
	}
	if err := reg.Update(ctx, info); !errors.Is(err, ErrConflict) {
		t.Fatalf("Update after Close = %v, want ErrConflict", err)
	}
	reg2, err := other.RegisterBroker(ctx, BrokerInfo{NodeID: 1, Host: "h2", Port: 1}, 2*time.Second)
	if err != nil {
		t.Fatalf("RegisterBroker after Close: %v", err)
	}
	reg2.Close()
}

func TestBrokerLeaseExpires(t *testing.T) {
	n := startSingle(t, "")
	s := openStore(t, n.Client())
	c := startCache(t, s)

	// The context ends the keep-alives, as a crashed or partitioned broker would stop
	// them; the lease then expires after its TTL and etcd deletes brokers/2.
	rctx, cancel := context.WithCancel(testCtx(t))
	reg, err := s.RegisterBroker(rctx, BrokerInfo{NodeID: 2, Host: "h", Port: 9092}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, 5*time.Second, "broker 2 registered", func() bool { return len(c.Brokers()) == 1 })
	cancel()
	<-reg.Done()
	start := time.Now()
	waitFor(t, c, 15*time.Second, "lease expiry", func() bool { return len(c.Brokers()) == 0 })
	t.Logf("brokers/2 expired %v after keep-alives stopped", time.Since(start).Round(100*time.Millisecond))

	// The id is free again.
	reg2, err := s.RegisterBroker(testCtx(t), BrokerInfo{NodeID: 2, Host: "h", Port: 9092}, time.Second)
	if err != nil {
		t.Fatalf("RegisterBroker after expiry: %v", err)
	}
	if err := reg2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := reg.Close(); err != nil { // the expired lease is already gone: not an error
		t.Fatal(err)
	}
}
