package it

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn is a Kafka connection driven by hand: requests are encoded with kmsg
// (or not at all) and responses read frame by frame.
type rawConn struct {
	t    testing.TB
	nc   net.Conn
	fmt  *kmsg.RequestFormatter
	corr int32
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("it-raw"))}
}

func (c *rawConn) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		// The broker may close the connection before it has read
		// everything a bad request sent; expectClosed judges that.
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			c.t.Logf("write: %v", err)
			return
		}
		c.t.Fatalf("write: %v", err)
	}
}

// roundTrip sends req and decodes its response into resp (of the same version).
func (c *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	c.corr++
	c.write(c.fmt.AppendRequest(nil, req, c.corr))
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	c.readResponse(resp, c.corr)
	return resp
}

// readResponse reads one response frame into resp and checks its correlation id.
func (c *rawConn) readResponse(resp kmsg.Response, corr int32) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		c.t.Fatalf("reading %s response: %v", kmsg.NameForKey(resp.Key()), err)
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 64<<20 {
		c.t.Fatalf("%s response frame of %d bytes", kmsg.NameForKey(resp.Key()), n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.nc, body); err != nil {
		c.t.Fatalf("reading %s response: %v", kmsg.NameForKey(resp.Key()), err)
	}
	rd := kbin.Reader{Src: body}
	if got := rd.Int32(); got != corr {
		c.t.Fatalf("%s response: correlation id %d, want %d", kmsg.NameForKey(resp.Key()), got, corr)
	}
	// ApiVersions responses keep header v0 even when flexible (KIP-511).
	if resp.IsFlexible() && resp.Key() != 18 {
		kmsg.SkipTags(&rd)
	}
	if err := resp.ReadFrom(rd.Src); err != nil {
		c.t.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
}

// expectClosed requires the broker to close the connection within timeout
// without sending anything.
func (c *rawConn) expectClosed(timeout time.Duration) {
	c.t.Helper()
	start := time.Now()
	c.nc.SetReadDeadline(start.Add(timeout))
	var buf [256]byte
	n, err := c.nc.Read(buf[:])
	var ne net.Error
	switch {
	case n > 0:
		c.t.Fatalf("broker answered %d bytes (%q) instead of closing the connection", n, buf[:n])
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		c.t.Logf("connection closed by the broker after %v", time.Since(start).Round(time.Millisecond))
	case errors.As(err, &ne) && ne.Timeout():
		c.t.Fatalf("connection still open %v after the bad request", timeout)
	default:
		c.t.Fatalf("reading from the connection: %v", err)
	}
}

// header encodes a request header v1 (key, version, correlation id, client id).
func header(key, version int16, corr int32, clientID string) []byte {
	b := kbin.AppendInt16(nil, key)
	b = kbin.AppendInt16(b, version)
	b = kbin.AppendInt32(b, corr)
	return kbin.AppendNullableString(b, &clientID)
}

// frame prefixes b with its length.
func frame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordBatch builds a v2 record batch of uncompressed records with a correct
// length and CRC-32C; mutate may change the batch before the CRC is computed.
func recordBatch(values []string, mutate func(*kmsg.RecordBatch)) []byte {
	var records []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the zero length varint is one byte
		records = r.AppendTo(records)
	}
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(values)),
		Records:              records,
	}
	if mutate != nil {
		mutate(&rb)
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func produceRequest(version int16, topic string, p int32, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = p
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// producePartitionResult is the single partition result of a produce response.
func producePartitionResult(t testing.TB, resp kmsg.Response) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response: %d topics, want 1 with 1 partition: %+v", len(pr.Topics), pr)
	}
	return pr.Topics[0].Partitions[0]
}

// healthyClient checks, after each bad input, that an ordinary client still
// produces and consumes.
type healthyClient struct {
	b    *Broker
	cl   *kgo.Client
	next int
}

const healthyTopic = "healthy"

func (h *healthyClient) check(t testing.TB) {
	t.Helper()
	produceSync(t, h.cl, healthyTopic, 0, h.next, 3, int64(h.next))
	checkValues(t, healthyTopic, 0, int64(h.next), h.next, consumePartition(t, h.b, healthyTopic, 0, int64(h.next), 3))
	h.next += 3
}

// TestBadInput sends malformed, oversized and unsupported requests over raw
// TCP to a live broker. Each must get the documented error or a prompt close
// (logged), never a crash, a hang or a large allocation; an ordinary client
// keeps working throughout.
func TestBadInput(t *testing.T) {
	b := StartBroker(t, "--auto-create-topics=false", "--log-level", "debug")
	adm := b.Admin(t)
	createTopic(t, adm, healthyTopic, 1, nil)
	createTopic(t, adm, "raw", 2, nil)
	h := &healthyClient{b: b, cl: b.Client(t, manualPartitions)}
	h.check(t)

	// closes runs a case that must make the broker close the connection and
	// log why, in a line matching detail.
	closes := func(name string, send func(c *rawConn), detail string) {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, b.Addr)
			send(c)
			c.expectClosed(5 * time.Second)
			re := regexp.MustCompile(`(?i)clos.*` + detail + `|` + detail + `.*clos`)
			if line, ok := b.WaitLog(re, 5*time.Second); !ok {
				t.Errorf("no log line matching %q about the closed connection", re)
			} else {
				t.Logf("broker: %s", line)
			}
			h.check(t)
		})
	}

	closes("garbage", func(c *rawConn) {
		c.write([]byte("GET / HTTP/1.1\r\nHost: sediment\r\n\r\n"))
	}, fmt.Sprint(int32(binary.BigEndian.Uint32([]byte("GET ")))))

	closes("random bytes after a plausible length", func(c *rawConn) {
		junk := []byte{0, 0, 0, 40}
		for i := range 40 {
			junk = append(junk, byte(i*37+11))
		}
		c.write(junk)
	}, `(unknown api key|bad request|unsupported version|truncated|decod)`)

	closes("frame length -1", func(c *rawConn) {
		c.write([]byte{0xff, 0xff, 0xff, 0xff})
	}, `size=-1\b`)

	t.Run("frame length 2GiB", func(t *testing.T) {
		rss0, _ := b.Memory()
		// Several at once, each followed by a little data, as a client
		// that really meant it would.
		var conns []*rawConn
		for range 4 {
			c := dialRaw(t, b.Addr)
			c.write(append([]byte{0x7f, 0xff, 0xff, 0xff}, make([]byte, 64<<10)...))
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.expectClosed(5 * time.Second)
		}
		if line, ok := b.WaitLog(regexp.MustCompile(`(?i)clos.*size=2147483647\b`), 5*time.Second); !ok {
			t.Errorf("no log line about closing a connection with a 2 GiB frame")
		} else {
			t.Logf("broker: %s", line)
		}
		rss1, hwm := b.Memory()
		t.Logf("broker memory: VmRSS %d MiB before, %d MiB after; VmHWM %d MiB", rss0>>20, rss1>>20, hwm>>20)
		if hwm > 1<<30 {
			t.Fatalf("broker peak RSS (VmHWM) is %d MiB: it allocated the 2 GiB frame", hwm>>20)
		}
		if rss1-rss0 > 200<<20 {
			t.Fatalf("broker RSS grew by %d MiB", (rss1-rss0)>>20)
		}
		h.check(t)
	})

	closes("unknown api key", func(c *rawConn) {
		c.write(frame(append(header(12345, 0, 1, "it-raw"), 0, 0, 0, 0)))
	}, `unknown api key 12345`)

	closes("produce v99", func(c *rawConn) {
		body := produceRequest(9, "raw", 0, recordBatch([]string{"v99"}, nil))
		b := c.fmt.AppendRequest(nil, body, 1)
		binary.BigEndian.PutUint16(b[6:], 99) // after size and key
		c.write(b)
	}, `unsupported version 99`)

	t.Run("api versions v99", func(t *testing.T) {
		c := dialRaw(t, b.Addr)
		// A future ApiVersions with a body this broker cannot know.
		c.write(frame(append(header(18, 99, 7, "it-raw"), 0, 0xde, 0xad, 0xbe, 0xef)))
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0 // KIP-511: the reply is in the v0 format
		c.readResponse(resp, 7)
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("ApiVersions v99: error code %d, want UNSUPPORTED_VERSION (35)", resp.ErrorCode)
		}
		keys := map[int16][2]int16{}
		for _, k := range resp.ApiKeys {
			keys[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		for key, want := range map[int16][2]int16{0: {3, 12}, 1: {4, 16}, 3: {0, 12}, 18: {0, 4}} {
			if keys[key] != want {
				t.Fatalf("ApiVersions v99 reply lists %s as %v, want %v (all: %v)", kmsg.NameForKey(key), keys[key], want, keys)
			}
		}
		if len(keys) < 10 {
			t.Fatalf("ApiVersions v99 reply lists only %d APIs", len(keys))
		}
		// The client retries with a version we serve, on the same connection.
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareName = "it-raw"
		req.ClientSoftwareVersion = "1.0"
		r := c.roundTrip(req).(*kmsg.ApiVersionsResponse)
		if r.ErrorCode != 0 || len(r.ApiKeys) != len(keys) {
			t.Fatalf("ApiVersions v3 after v99: error %d, %d keys, want 0 and %d", r.ErrorCode, len(r.ApiKeys), len(keys))
		}
		h.check(t)
	})

	t.Run("produce valid batch over raw tcp", func(t *testing.T) {
		// Proves recordBatch builds what the broker accepts, so the errors
		// below are about what each case breaks.
		c := dialRaw(t, b.Addr)
		for _, v := range []int16{3, 7, 9, 12} {
			res := producePartitionResult(t, c.roundTrip(produceRequest(v, "raw", 1, recordBatch([]string{"a", "b", "c"}, nil))))
			if res.ErrorCode != 0 {
				t.Fatalf("produce v%d of a valid batch: %v", v, kerr.ErrorForCode(res.ErrorCode))
			}
		}
		recs := consumePartition(t, b, "raw", 1, 0, 12)
		for i, r := range recs {
			if want := string(rune('a' + i%3)); string(r.Value) != want || r.Offset != int64(i) {
				t.Fatalf("raw[1] offset %d: %q, want %q at offset %d", r.Offset, r.Value, want, i)
			}
		}
	})

	t.Run("produce bad crc", func(t *testing.T) {
		c := dialRaw(t, b.Addr)
		batch := recordBatch([]string{"crc"}, nil)
		batch[len(batch)-1] ^= 0xff // after the CRC was computed
		res := producePartitionResult(t, c.roundTrip(produceRequest(9, "raw", 0, batch)))
		if res.ErrorCode != kerr.CorruptMessage.Code {
			t.Fatalf("produce with a bad CRC: %v, want CORRUPT_MESSAGE", kerr.ErrorForCode(res.ErrorCode))
		}
		h.check(t)
	})

	t.Run("produce negative record count", func(t *testing.T) {
		c := dialRaw(t, b.Addr)
		batch := recordBatch([]string{"neg"}, func(rb *kmsg.RecordBatch) { rb.NumRecords = -1 })
		res := producePartitionResult(t, c.roundTrip(produceRequest(9, "raw", 0, batch)))
		if res.ErrorCode != kerr.CorruptMessage.Code {
			t.Fatalf("produce with record count -1: %v, want CORRUPT_MESSAGE", kerr.ErrorForCode(res.ErrorCode))
		}
		// Nothing of the rejected batches reached the log.
		if end := endOffsets(t, adm, "raw")[0]; end != 0 {
			t.Fatalf("raw[0] end offset %d after rejected produces, want 0", end)
		}
		h.check(t)
	})

	t.Run("produce to a missing topic without auto-create", func(t *testing.T) {
		c := dialRaw(t, b.Addr)
		res := producePartitionResult(t, c.roundTrip(produceRequest(9, "no-such-topic", 0, recordBatch([]string{"x"}, nil))))
		if res.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("produce to a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(res.ErrorCode))
		}
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 12
		mt := kmsg.NewMetadataRequestTopic()
		name := "no-such-topic"
		mt.Topic = &name
		md.Topics = append(md.Topics, mt)
		md.AllowAutoTopicCreation = true // the broker's auto.create.topics.enable=false wins
		mr := c.roundTrip(md).(*kmsg.MetadataResponse)
		if len(mr.Topics) != 1 || mr.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("metadata of a missing topic: %+v, want UNKNOWN_TOPIC_OR_PARTITION", mr.Topics)
		}
		td, err := adm.ListTopics(testContext(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := td[name]; ok || len(td) != 2 {
			t.Fatalf("topics after a produce and metadata for a missing topic: %v, want only healthy and raw", td.Names())
		}
		h.check(t)
	})

	t.Run("broker survived", func(t *testing.T) {
		if !b.Running() {
			t.Fatal("broker exited")
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", b.PID())); err != nil {
			t.Fatal(err)
		}
		h.check(t)
	})
}
