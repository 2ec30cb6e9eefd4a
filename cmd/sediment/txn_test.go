package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTxnCommands: `txn list` and `txn describe` show a transactional id
// with its transaction open (Ongoing, its partitions, a start time), then
// committed (CompleteCommit, no partitions); the filters narrow the list; an
// unknown id is TRANSACTIONAL_ID_NOT_FOUND with exit 1, and bad flags exit 2.
func TestTxnCommands(t *testing.T) {
	addr := startBroker(t, "--log-level", "warn")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, txnID = "payments", "tx-1"

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int32{0, 2} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d: %v", p, err)
		}
	}

	run := func(want int, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := cli(t, append(args, "--bootstrap-server", addr)...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, stdout, stderr)
		}
		return stdout, stderr
	}
	type listJSON struct{ Transactions []listedTxnJSON }
	type describeJSON struct {
		Transactions []struct {
			TransactionalID string `json:"transactional_id"`
			State           string
			ProducerID      *int64 `json:"producer_id"`
			StartTime       string `json:"start_time"`
			Partitions      []topicPartitionsJSON
			Error           string
		}
	}
	decode := func(stdout string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(stdout), v); err != nil {
			t.Fatalf("%v in %s", err, stdout)
		}
	}

	var l listJSON
	decode(first(run(0, "txn", "list", "--output", "json")), &l)
	if len(l.Transactions) != 1 || l.Transactions[0].TransactionalID != txnID || l.Transactions[0].State != "Ongoing" {
		t.Fatalf("list while open: %+v", l)
	}
	pid := l.Transactions[0].ProducerID
	l = listJSON{}
	decode(first(run(0, "txn", "list", "--state", "completecommit", "--output", "json")), &l)
	if len(l.Transactions) != 0 {
		t.Fatalf("list --state CompleteCommit while open: %+v", l)
	}
	var d describeJSON
	decode(first(run(0, "txn", "describe", txnID, "--output", "json")), &d)
	if len(d.Transactions) != 1 || d.Transactions[0].State != "Ongoing" || d.Transactions[0].StartTime == "" ||
		len(d.Transactions[0].Partitions) != 1 || d.Transactions[0].Partitions[0].Topic != topic ||
		len(d.Transactions[0].Partitions[0].Partitions) != 2 || *d.Transactions[0].ProducerID != pid {
		t.Fatalf("describe while open: %+v", d)
	}
	table := first(run(0, "txn", "describe", txnID))
	if !strings.Contains(table, "Ongoing") || !strings.Contains(table, topic+":0,2") {
		t.Fatalf("describe table:\n%s", table)
	}

	// The partitions' leaders know the producer, with the open
	// transaction's first offset on the two it wrote to.
	type producersJSON struct{ Partitions []producerPartitionJSON }
	openOn := func(ps producersJSON) map[int32]int64 {
		t.Helper()
		open := map[int32]int64{}
		for _, p := range ps.Partitions {
			if p.Topic != topic || p.Error != "" {
				t.Fatalf("producers describe: %+v", ps)
			}
			for _, d := range p.Producers {
				if d.ProducerID == pid && d.TxnStartOffset != nil {
					open[p.Partition] = *d.TxnStartOffset
				}
			}
		}
		return open
	}
	var ps producersJSON
	decode(first(run(0, "producers", "describe", topic, "--output", "json")), &ps)
	if open := openOn(ps); len(ps.Partitions) != 3 || len(open) != 2 || open[0] != 0 || open[2] != 0 {
		t.Fatalf("producers describe while open: open transactions %v in %+v", open, ps)
	}
	ps = producersJSON{}
	decode(first(run(0, "producers", "describe", topic+":2", "--output", "json")), &ps)
	if len(ps.Partitions) != 1 || ps.Partitions[0].Partition != 2 {
		t.Fatalf("producers describe %s:2: %+v", topic, ps)
	}
	if table := first(run(0, "producers", "describe", topic)); !strings.Contains(table, "TXN-START-OFFSET") || !strings.Contains(table, strconv.FormatInt(pid, 10)) {
		t.Fatalf("producers table:\n%s", table)
	}

	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// EndTxn answers once PrepareCommit is written; the markers, then
	// CompleteCommit, follow.
	for deadline := time.Now().Add(20 * time.Second); ; {
		l = listJSON{}
		decode(first(run(0, "txn", "list", "--producer-id", "1,2,"+strconv.FormatInt(pid, 10), "--state", "CompleteCommit,Empty", "--output", "json")), &l)
		if len(l.Transactions) == 1 && l.Transactions[0].State == "CompleteCommit" {
			break
		}
		if len(l.Transactions) > 1 || time.Now().After(deadline) {
			t.Fatalf("list after the commit: %+v", l)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d = describeJSON{}
	stdout, stderr := run(1, "txn", "describe", txnID, "nope", "--output", "json")
	decode(stdout, &d)
	if len(d.Transactions) != 2 || d.Transactions[0].State != "CompleteCommit" || len(d.Transactions[0].Partitions) != 0 ||
		d.Transactions[1].TransactionalID != "nope" || d.Transactions[1].Error != "TRANSACTIONAL_ID_NOT_FOUND" ||
		!strings.Contains(stderr, "1 of 2") {
		t.Fatalf("describe after the commit: %+v\n%s", d, stderr)
	}
	ps = producersJSON{}
	decode(first(run(0, "producers", "describe", topic, "--output", "json")), &ps)
	if open := openOn(ps); len(open) != 0 {
		t.Fatalf("producers describe after the commit: open transactions %v", open)
	}
	run(1, "producers", "describe", "no-such-topic")
	for _, args := range [][]string{{"producers", "describe"}, {"producers", "describe", "t:x"}, {"txn", "list", "--state", "Bogus"}, {"txn", "list", "--producer-id", "x"}, {"txn", "describe"}, {"txn", "list", "extra"}} {
		run(2, args...)
	}
}
