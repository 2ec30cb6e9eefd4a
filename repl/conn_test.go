package repl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

// fakeLeader is a Kafka-speaking leader for tests: a TCP server that decodes requests with
// kmsg and answers ApiVersions, OffsetForLeaderEpoch and Fetch (with replica semantics:
// reads up to the log end, leader-epoch fencing, DivergingEpoch, OFFSET_OUT_OF_RANGE with
// the high watermark and log start) from in-memory partitions.
type fakeLeader struct {
	t  testing.TB
	ln net.Listener

	// Set before the first connection.
	fetchMax       int16 // highest Fetch version advertised
	noEpochAPI     bool  // do not advertise OffsetForLeaderEpoch
	apiVersionsMax int16 // highest ApiVersions version served
	partialTails   bool  // end byte-limited partitions with a partial batch, as old Kafka did
	closeOnAccept  bool  // accept connections and close them at once
	sessions       bool  // serve KIP-227 fetch sessions (session_test.go)

	mu        sync.Mutex
	parts     map[PartitionKey]*fakePart
	changed   chan struct{} // closed when data changes, to wake long polls
	fetches   map[PartitionKey]int
	apis      map[int16]int
	replicaID []int32 // replica ids seen in fetches
	maxParts  int     // most partitions in one fetch
	accepted  int
	open      map[net.Conn]struct{}
	closed    bool
	// With sessions: every fetch as received, the next session id, and whether to
	// answer the next incremental fetch FETCH_SESSION_ID_NOT_FOUND.
	sessionFetches []fakeFetch
	nextSession    int32
	loseSession    bool

	wg sync.WaitGroup
}

type fakeEpoch struct {
	epoch int32
	start int64
}

// fakePart is one partition's log on the fake leader.
type fakePart struct {
	topic   string
	id      [16]byte
	part    int32
	epoch   int32 // current leader epoch
	batches [][]byte
	start   int64 // log start offset
	end     int64 // log end offset
	epochs  []fakeEpoch
	hw      int64 // the follower's last fetch offset (a two-replica ISR)
	err     int16 // answer every fetch with this error
}

func newFakeLeader(t testing.TB) *fakeLeader {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &fakeLeader{
		t: t, ln: ln, fetchMax: 16, apiVersionsMax: 4, partialTails: true,
		parts: make(map[PartitionKey]*fakePart), changed: make(chan struct{}),
		fetches: make(map[PartitionKey]int), apis: make(map[int16]int), open: make(map[net.Conn]struct{}),
	}
	fl.wg.Add(1)
	go fl.accept()
	t.Cleanup(fl.Close)
	return fl
}

func (fl *fakeLeader) Addr() string { return fl.ln.Addr().String() }

// Close stops the listener and drops every connection.
func (fl *fakeLeader) Close() {
	fl.mu.Lock()
	if !fl.closed {
		fl.closed = true
		fl.ln.Close()
		for c := range fl.open {
			c.Close()
		}
		close(fl.changed)
	}
	fl.mu.Unlock()
	fl.wg.Wait()
}

func topicID(topic string) [16]byte {
	var id [16]byte
	copy(id[:], "id:"+topic)
	return id
}

// addPartition creates an empty partition led at epoch whose log starts at start.
func (fl *fakeLeader) addPartition(topic string, part int32, epoch int32, start int64) *fakePart {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	p := &fakePart{topic: topic, id: topicID(topic), part: part, epoch: -1, start: start, end: start, hw: start}
	fl.parts[PartitionKey{p.id, part}] = p
	p.becomeLeader(epoch)
	return p
}

// do runs fn on the leader's state and wakes long polls.
func (fl *fakeLeader) do(fn func()) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fn()
	if !fl.closed {
		close(fl.changed)
		fl.changed = make(chan struct{})
	}
}

// becomeLeader starts epoch at the log end, as Kafka's leader does on election, so the
// epoch cache always holds the current epoch.
func (p *fakePart) becomeLeader(epoch int32) {
	p.epoch = epoch
	if n := len(p.epochs); n == 0 || p.epochs[n-1].epoch < epoch {
		p.epochs = append(p.epochs, fakeEpoch{epoch, p.end})
	}
}

// batch encodes a batch of n records at offset base written in epoch.
func batch(base int64, epoch int32, n int, tag string) []byte {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprintf("%s-%d-%d", tag, base, i)
	}
	return segmenttest.Batch{
		BaseOffset: base, PartitionLeaderEpoch: epoch, FirstTimestamp: 1_700_000_000_000 + base,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: segmenttest.Values(vals...),
	}.Encode()
}

// appendRaw appends an encoded batch, which must start at the log end.
func (p *fakePart) appendRaw(b []byte) {
	base := int64(binary.BigEndian.Uint64(b))
	if base != p.end {
		panic(fmt.Sprintf("fake leader: batch at %d, log end %d", base, p.end))
	}
	epoch := int32(binary.BigEndian.Uint32(b[12:]))
	if n := len(p.epochs); n == 0 || p.epochs[n-1].epoch < epoch {
		p.epochs = append(p.epochs, fakeEpoch{epoch, base})
	}
	p.batches = append(p.batches, b)
	p.end = nextOffset(b)
}

// appendN appends count batches of n records in the current epoch and returns them.
func (p *fakePart) appendN(count, n int, tag string) [][]byte {
	var out [][]byte
	for range count {
		b := batch(p.end, p.epoch, n, tag)
		p.appendRaw(b)
		out = append(out, b)
	}
	return out
}

// bytes is the partition's log, concatenated.
func (p *fakePart) bytes() []byte {
	var out []byte
	for _, b := range p.batches {
		out = append(out, b...)
	}
	return out
}

// endOffsetFor is Kafka's LeaderEpochFileCache.endOffsetFor.
func (p *fakePart) endOffsetFor(epoch int32) (int32, int64) {
	n := len(p.epochs)
	if epoch < 0 || n == 0 {
		return -1, -1
	}
	if epoch == p.epochs[n-1].epoch {
		return epoch, p.end
	}
	for i, e := range p.epochs {
		if e.epoch > epoch {
			if i == 0 {
				return epoch, e.start
			}
			return p.epochs[i-1].epoch, e.start
		}
	}
	return -1, -1
}

// read returns whole batches from offset within max bytes (at least one), then, with
// partialTails, the start of the next batch.
func (p *fakePart) read(offset int64, max int, partial bool) []byte {
	var out []byte
	for _, b := range p.batches {
		if nextOffset(b) <= offset {
			continue
		}
		if len(out) > 0 && len(out)+len(b) > max {
			if partial && len(out) < max {
				out = append(out, b[:max-len(out)]...)
			}
			break
		}
		out = append(out, b...)
	}
	return out
}

func (fl *fakeLeader) accept() {
	defer fl.wg.Done()
	for {
		c, err := fl.ln.Accept()
		if err != nil {
			return
		}
		fl.mu.Lock()
		fl.accepted++
		if fl.closed || fl.closeOnAccept {
			fl.mu.Unlock()
			c.Close()
			continue
		}
		fl.open[c] = struct{}{}
		fl.mu.Unlock()
		fl.wg.Add(1)
		go fl.serve(c)
	}
}

func (fl *fakeLeader) serve(c net.Conn) {
	defer fl.wg.Done()
	defer func() {
		fl.mu.Lock()
		delete(fl.open, c)
		fl.mu.Unlock()
		c.Close()
	}()
	var sess *fakeSession // this connection's fetch session
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > 1<<20 {
			fl.t.Errorf("fake leader: %d-byte request", n)
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		b := kbin.Reader{Src: body}
		key, version, corr := b.Int16(), b.Int16(), b.Int32()
		b.NullableString()
		req := kmsg.RequestForKey(key)
		if req == nil {
			fl.t.Errorf("fake leader: unknown api %d", key)
			return
		}
		req.SetVersion(version)
		if req.IsFlexible() {
			kmsg.SkipTags(&b)
		}
		if err := req.ReadFrom(b.Src); err != nil {
			fl.t.Errorf("fake leader: decode %s v%d: %v", kmsg.NameForKey(key), version, err)
			return
		}
		resp := fl.handle(req, &sess)
		if resp == nil {
			return
		}
		out := kbin.AppendInt32(nil, 0)
		out = kbin.AppendInt32(out, corr)
		if req.IsFlexible() && key != 18 {
			out = append(out, 0)
		}
		out = resp.AppendTo(out)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func (fl *fakeLeader) handle(req kmsg.Request, sess **fakeSession) kmsg.Response {
	fl.mu.Lock()
	fl.apis[req.Key()]++
	fl.mu.Unlock()
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		keys := []kmsg.ApiVersionsResponseApiKey{
			{ApiKey: 18, MinVersion: 0, MaxVersion: fl.apiVersionsMax},
			{ApiKey: 1, MinVersion: 4, MaxVersion: fl.fetchMax},
		}
		if !fl.noEpochAPI {
			keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: 23, MinVersion: 0, MaxVersion: 4})
		}
		if req.Version > fl.apiVersionsMax {
			resp.Version = 0 // KIP-511
			resp.ErrorCode = kerr.UnsupportedVersion.Code
		}
		resp.ApiKeys = keys
		return resp
	case *kmsg.OffsetForLeaderEpochRequest:
		return fl.offsetForLeaderEpoch(req)
	case *kmsg.FetchRequest:
		if fl.sessions {
			return fl.sessionFetch(req, sess)
		}
		return fl.fetch(req)
	}
	fl.t.Errorf("fake leader: unexpected %s", kmsg.NameForKey(req.Key()))
	return nil
}

func (fl *fakeLeader) offsetForLeaderEpoch(req *kmsg.OffsetForLeaderEpochRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, rp := range t.Partitions {
			out := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			out.Partition = rp.Partition
			p := fl.parts[PartitionKey{topicID(t.Topic), rp.Partition}]
			switch {
			case p == nil:
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.CurrentLeaderEpoch < p.epoch:
				out.ErrorCode = kerr.FencedLeaderEpoch.Code
			case rp.CurrentLeaderEpoch > p.epoch:
				out.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				out.LeaderEpoch, out.EndOffset = p.endOffsetFor(rp.LeaderEpoch)
			}
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (fl *fakeLeader) fetch(req *kmsg.FetchRequest) kmsg.Response {
	replica := req.ReplicaID
	if req.Version >= 15 {
		replica = req.ReplicaState.ID
	}
	fl.mu.Lock()
	fl.replicaID = append(fl.replicaID, replica)
	n := 0
	for _, t := range req.Topics {
		n += len(t.Partitions)
	}
	fl.maxParts = max(fl.maxParts, n)
	changed := fl.changed
	fl.mu.Unlock()

	resp, bytes := fl.fetchOnce(req, true)
	if bytes == 0 && req.MaxWaitMillis > 0 {
		t := time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
		defer t.Stop()
		select {
		case <-changed:
		case <-t.C:
		}
		resp, _ = fl.fetchOnce(req, false)
	}
	return resp
}

func (fl *fakeLeader) fetchOnce(req *kmsg.FetchRequest, count bool) (*kmsg.FetchResponse, int) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	fl.mu.Lock()
	defer fl.mu.Unlock()
	total := 0
	for _, t := range req.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		id := t.TopicID
		if req.Version < 13 {
			id = topicID(t.Topic)
		}
		for _, rp := range t.Partitions {
			out := kmsg.NewFetchResponseTopicPartition()
			out.Partition = rp.Partition
			out.HighWatermark = -1
			out.RecordBatches = []byte{}
			key := PartitionKey{id, rp.Partition}
			p := fl.parts[key]
			if count {
				fl.fetches[key]++
			}
			switch {
			case p == nil && req.Version >= 13:
				out.ErrorCode = kerr.UnknownTopicID.Code
			case p == nil:
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case p.err != 0:
				out.ErrorCode = p.err
			case rp.CurrentLeaderEpoch < p.epoch:
				out.ErrorCode = kerr.FencedLeaderEpoch.Code
			case rp.CurrentLeaderEpoch > p.epoch:
				out.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				out.LogStartOffset = p.start
				if le := rp.LastFetchedEpoch; le >= 0 {
					e, end := p.endOffsetFor(le)
					if e < le || end < rp.FetchOffset {
						out.DivergingEpoch.Epoch, out.DivergingEpoch.EndOffset = e, end
						out.HighWatermark = p.hw
						break
					}
				}
				if rp.FetchOffset < p.start || rp.FetchOffset > p.end {
					out.ErrorCode = kerr.OffsetOutOfRange.Code
					out.HighWatermark = p.hw
					break
				}
				p.hw = max(p.hw, rp.FetchOffset)
				out.HighWatermark = p.hw
				out.RecordBatches = p.read(rp.FetchOffset, int(rp.PartitionMaxBytes), fl.partialTails)
				total += len(out.RecordBatches)
			}
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, total
}

// counts returns the number of requests of api seen and fetches of key.
func (fl *fakeLeader) count(api int16) int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.apis[api]
}

func (fl *fakeLeader) fetchCount(key PartitionKey) int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.fetches[key]
}

func (fl *fakeLeader) openConns() int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return len(fl.open)
}

func (fl *fakeLeader) acceptedConns() int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.accepted
}

// --- conn tests ---

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.NodeID = 7
	cfg.ClientID = "test-replica"
	cfg.MaxWait = 50 * time.Millisecond
	cfg.Backoff = 20 * time.Millisecond
	cfg.DialTimeout = 2 * time.Second
	cfg.SocketTimeout = 5 * time.Second
	return cfg
}

func TestConnVersions(t *testing.T) {
	for _, avMax := range []int16{4, 2} { // 2: ApiVersions v3 is refused, v0 is used (KIP-511)
		t.Run(fmt.Sprintf("ApiVersions max %d", avMax), func(t *testing.T) {
			fl := newFakeLeader(t)
			fl.apiVersionsMax = avMax
			fl.fetchMax = 13
			cfg := testConfig()
			c, err := dial(context.Background(), fl.Addr(), &cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			if v, ok := c.version(fetchKey, fetchMinVersion, fetchMaxVersion); !ok || v != 13 {
				t.Fatalf("fetch version %d %v, want 13", v, ok)
			}
			if v, ok := c.version(epochKey, epochMinVersion, epochMaxVersion); !ok || v != 4 {
				t.Fatalf("OffsetForLeaderEpoch version %d %v, want 4", v, ok)
			}
			if _, ok := c.version(0, 0, 12); ok {
				t.Fatal("Produce is not offered")
			}
			wantAV := 1
			if avMax < 3 {
				wantAV = 2
			}
			if got := fl.count(18); got != wantAV {
				t.Fatalf("%d ApiVersions requests, want %d", got, wantAV)
			}
		})
	}
}

// rawServer accepts one connection and runs fn on it.
func rawServer(t *testing.T, fn func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fn(c)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestConnRefusesHugeResponse(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		var hdr [4]byte
		io.ReadFull(c, hdr[:])
		io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[:])))
		binary.BigEndian.PutUint32(hdr[:], 1<<30) // 1 GiB "response"
		c.Write(hdr[:])
		io.Copy(io.Discard, c)
	})
	cfg := testConfig()
	_, err := dial(context.Background(), addr, &cfg)
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("err %v, want ErrResponseTooLarge", err)
	}
}

func TestConnCorrelationMismatch(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		var hdr [4]byte
		io.ReadFull(c, hdr[:])
		io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[:])))
		c.Write([]byte{0, 0, 0, 4, 0, 0, 0, 99})
		io.Copy(io.Discard, c)
	})
	cfg := testConfig()
	if _, err := dial(context.Background(), addr, &cfg); !errors.Is(err, errCorrelation) {
		t.Fatalf("err %v, want a correlation mismatch", err)
	}
}

func TestConnCancel(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // never answers
	cfg := testConfig()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := dial(ctx, addr, &cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancel took %v", d)
	}
}
