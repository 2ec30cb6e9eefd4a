package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logBuffer captures slog output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(t testing.TB) (*slog.Logger, *logBuffer) {
	var b logBuffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

func smallConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 4096
	c.IndexIntervalBytes = 256
	return c
}

func openTest(t testing.TB, dir string, cfg Config, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, cfg, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// batchAt builds a plain batch with the given values and timestamp.
func batchAt(ts int64, values ...string) []byte {
	return segmenttest.Batch{FirstTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: segmenttest.Values(values...)}.Encode()
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	r, err := l.AppendLeader(b, 0)
	if err != nil {
		t.Fatalf("AppendLeader: %v", err)
	}
	return r
}

// rec is a decoded record.
type rec struct {
	Offset int64
	Ts     int64
	Value  string
}

// decodeBatches decodes every record of the uncompressed batches in b, checking each batch.
func decodeBatches(t testing.TB, b []byte) []rec {
	t.Helper()
	var out []rec
	for len(b) > 0 {
		h, err := ValidateBatch(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		p := b[batchHeaderSize:h.Size()]
		for range h.RecordCount {
			length, n := binary.Varint(p)
			body := p[n : n+int(length)]
			p = p[n+int(length):]
			body = body[1:]
			td, n := binary.Varint(body)
			body = body[n:]
			od, n := binary.Varint(body)
			body = body[n:]
			kl, n := binary.Varint(body)
			body = body[n:]
			if kl > 0 {
				body = body[kl:]
			}
			vl, n := binary.Varint(body)
			body = body[n:]
			ts := h.BaseTimestamp + td
			if h.LogAppendTime() {
				ts = h.MaxTimestamp
			}
			out = append(out, rec{Offset: h.BaseOffset + od, Ts: ts, Value: string(body[:vl])})
		}
		b = b[h.Size():]
	}
	return out
}

// readAll reads every record from offset from to the log end, Read by Read.
func readAll(t testing.TB, l *Log, from int64, maxBytes int) []rec {
	t.Helper()
	var out []rec
	off := from
	for off < l.LogEndOffset() {
		s, err := l.Read(off, maxBytes, l.LogEndOffset(), true)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		b, err := s.ReadAll()
		s.Release()
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if len(b) == 0 {
			t.Fatalf("Read(%d) returned nothing before the log end %d", off, l.LogEndOffset())
		}
		rs := decodeBatches(t, b)
		for _, r := range rs {
			if r.Offset >= off {
				out = append(out, r)
			}
		}
		// Next offset: after the last batch.
		var last int64
		for len(b) > 0 {
			h, _ := ParseBatchHeader(b)
			last = h.NextOffset()
			b = b[h.Size():]
		}
		off = last
	}
	return out
}

func values(n int, prefix string) []string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return vs
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
