package broker

import (
	"bytes"
	"crypto/rand"
	"crypto/x509/pkix"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/security"
)

// countingConn records what is written to it and in how many writes.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	out    bytes.Buffer
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.out.Write(p)
}

// TestBatchConn: before start a batchConn writes through (a TLS handshake
// cannot wait for a flush); afterwards it gathers writes until Flush or
// batchMax, writes a large one at once, and keeps the bytes in order.
func TestBatchConn(t *testing.T) {
	cc := &countingConn{}
	b := &batchConn{Conn: cc}
	var want bytes.Buffer
	write := func(n int) {
		t.Helper()
		p := make([]byte, n)
		rand.Read(p)
		want.Write(p)
		if k, err := b.Write(p); err != nil || k != n {
			t.Fatalf("Write(%d) = %d, %v", n, k, err)
		}
	}
	write(100)
	if cc.writes != 1 {
		t.Fatalf("%d writes before start, want it written through", cc.writes)
	}
	b.start()
	for range 10 {
		write(16 << 10)
	}
	if cc.writes != 1 {
		t.Fatalf("%d writes: 160 KiB after start were not held", cc.writes)
	}
	write(200 << 10) // over batchMax with what is pending: the pending bytes go first
	if cc.writes != 2 {
		t.Fatalf("%d writes after passing batchMax, want 2", cc.writes)
	}
	write(batchMax + 1) // larger than a batch: written at once, after the pending
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil { // nothing pending
		t.Fatal(err)
	}
	if !bytes.Equal(cc.out.Bytes(), want.Bytes()) {
		t.Fatal("the bytes written differ from the bytes given")
	}
	if cc.writes > 5 {
		t.Fatalf("%d writes for %d bytes", cc.writes, want.Len())
	}
}

// TestFetchOverTLSSameBytes: a Fetch over SSL (file ranges read, sealed and
// batched under crypto/tls instead of sendfile) returns byte for byte what
// the same Fetch returns over PLAINTEXT, over several segments and
// partitions.
func TestFetchOverTLSSameBytes(t *testing.T) {
	t.Parallel()
	b := startSecureBroker(t, security.ClientAuthRequired, 0)
	segBytes := strconv.Itoa(512 << 10)
	b.createTopic("bulk", 2, map[string]*string{"segment.bytes": &segBytes})
	pl := b.clientOn(t, "PLAINTEXT", kgo.ProducerBatchMaxBytes(64<<10), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxT(t, 60*time.Second)
	for i := range 600 {
		v := make([]byte, 3000+i)
		rand.Read(v)
		pl.Produce(ctx, &kgo.Record{Topic: "bulk", Partition: int32(i % 2), Value: v}, nil)
	}
	if err := pl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	subject := pkix.Name{CommonName: "client"}
	ssl := b.clientOn(t, "SSL", kgo.DialTLSConfig(b.ca.ClientConfig(t, &subject)))
	id := topicID(t, b.testBroker, "bulk")
	fetch := func(cl *kgo.Client) [][]byte {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = -1, 100, 64<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "bulk", id
		for p := range int32(2) {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes = p, 32<<20
			rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, p := range resp.(*kmsg.FetchResponse).Topics[0].Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("partition %d: error %d", p.Partition, p.ErrorCode)
			}
			out = append(out, p.RecordBatches)
		}
		return out
	}
	plain, overTLS := fetch(pl), fetch(ssl)
	total := 0
	for i := range plain {
		total += len(plain[i])
		if !bytes.Equal(plain[i], overTLS[i]) {
			t.Fatalf("partition %d: %d bytes over PLAINTEXT, %d over SSL, not the same", i, len(plain[i]), len(overTLS[i]))
		}
	}
	if total < 512<<10 || len(plain[0]) == 0 || len(plain[1]) == 0 {
		t.Fatalf("fetched only %d bytes", total)
	}
}
