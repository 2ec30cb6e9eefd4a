package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sedimentio/sediment/broker"
	"github.com/sedimentio/sediment/broker/txn"
)

// TestServeTxnFlags: the transaction coordinator's flags reach
// broker.Config, their defaults are Kafka's, and bad values are refused
// naming the flag or the Kafka config.
func TestServeTxnFlags(t *testing.T) {
	var f serveFlags
	if err := parseFlags(serveFlagSet(&f), []string{"--transaction-state-log-num-partitions", "7", "--transaction-state-log-replication-factor", "2",
		"--transaction-state-log-min-isr", "1", "--transaction-state-log-segment-bytes", "1048576", "--transaction-max-timeout", "1m",
		"--transactional-id-expiration", "2h", "--transaction-abort-timed-out-transaction-cleanup-interval", "3s",
		"--transaction-remove-expired-transaction-cleanup-interval", "4m"}, nil); err != nil {
		t.Fatal(err)
	}
	b := broker.DefaultConfig()
	if err := f.txn.apply(&b); err != nil {
		t.Fatal(err)
	}
	want := txn.Config{NumPartitions: 7, ReplicationFactor: 2, MinISR: 1, SegmentBytes: 1 << 20, MaxTimeout: time.Minute,
		IDExpiration: 2 * time.Hour, AbortTimedOutInterval: 3 * time.Second, RemoveExpiredInterval: 4 * time.Minute,
		WriteTimeout: txn.DefaultConfig().WriteTimeout}
	if b.Txn != want {
		t.Fatalf("config %+v, want %+v", b.Txn, want)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	f = serveFlags{}
	if err := parseFlags(serveFlagSet(&f), nil, nil); err != nil {
		t.Fatal(err)
	}
	b = broker.DefaultConfig()
	if err := f.txn.apply(&b); err != nil || b.Txn != txn.DefaultConfig() {
		t.Fatalf("defaults: %+v %v, want %+v", b.Txn, err, txn.DefaultConfig())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--transaction-state-log-num-partitions", "0"}, "--transaction-state-log-num-partitions"},
		{[]string{"--transaction-state-log-replication-factor", "0"}, "--transaction-state-log-replication-factor"},
		{[]string{"--transaction-state-log-min-isr", "0"}, "--transaction-state-log-min-isr"},
		{[]string{"--transaction-max-timeout", "0s"}, "transaction.max.timeout.ms"},
		{[]string{"--transaction-abort-timed-out-transaction-cleanup-interval", "0s"}, "transaction.abort.timed.out.transaction.cleanup.interval.ms"},
	} {
		err := serve(append(tc.args, "--data-dir", t.TempDir(), "--http", ""))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v: %v; want an error naming %s", tc.args, err, tc.want)
		}
	}
}
