package segment

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/sedimentio/sediment/segment/segmenttest"
)

func TestValidateBatch(t *testing.T) {
	good := segmenttest.Idempotent(7, 1, 3, "a", "b", "c")
	h, err := ValidateBatch(good)
	if err != nil {
		t.Fatalf("valid batch: %v", err)
	}
	if h.RecordCount != 3 || h.LastOffsetDelta != 2 || h.ProducerID != 7 || h.ProducerEpoch != 1 || h.BaseSequence != 3 || h.Size() != int64(len(good)) {
		t.Fatalf("header %+v", h)
	}
	if h.LastSequence() != 5 {
		t.Fatalf("LastSequence = %d", h.LastSequence())
	}

	edit := func(f func(b []byte), fix bool) []byte {
		b := append([]byte(nil), good...)
		f(b)
		if fix {
			segmenttest.FixCRC(b)
		}
		return b
	}
	be := binary.BigEndian
	tests := []struct {
		name   string
		b      []byte
		want   error
		leader bool // only the leader rules reject it
	}{
		{"empty", nil, ErrCorruptBatch, false},
		{"short", good[:10], ErrCorruptBatch, false},
		{"header only", good[:40], ErrCorruptBatch, false},
		{"truncated", good[:len(good)-1], ErrCorruptBatch, false},
		{"magic 1", edit(func(b []byte) { b[16] = 1 }, true), ErrUnsupportedMagic, false},
		{"magic 0", edit(func(b []byte) { b[16] = 0 }, true), ErrUnsupportedMagic, false},
		{"bad crc", edit(func(b []byte) { b[len(b)-1] ^= 0xff }, false), ErrCorruptBatch, false},
		{"crc field", edit(func(b []byte) { b[17] ^= 1 }, false), ErrCorruptBatch, false},
		{"length too small", edit(func(b []byte) { be.PutUint32(b[8:], 48) }, false), ErrCorruptBatch, false},
		{"length negative", edit(func(b []byte) { be.PutUint32(b[8:], 0xffffffff) }, false), ErrCorruptBatch, false},
		{"length too big", edit(func(b []byte) { be.PutUint32(b[8:], uint32(len(b))) }, false), ErrCorruptBatch, false},
		{"negative count", edit(func(b []byte) { be.PutUint32(b[57:], 0xffffffff) }, true), ErrCorruptBatch, false},
		{"negative delta", edit(func(b []byte) { be.PutUint32(b[23:], 0xfffffffe) }, true), ErrCorruptBatch, false},
		{"delta below count", edit(func(b []byte) { be.PutUint32(b[23:], 1) }, true), ErrCorruptBatch, false},
		{"codec 5", edit(func(b []byte) { b[22] |= 5 }, true), ErrCorruptBatch, false},
		{"codec 7", edit(func(b []byte) { b[22] |= 7 }, true), ErrCorruptBatch, false},
		{"zero records", edit(func(b []byte) { be.PutUint32(b[57:], 0) }, true), ErrCorruptBatch, true},
		{"delta above count", edit(func(b []byte) { be.PutUint32(b[23:], 5) }, true), ErrCorruptBatch, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ValidateBatch(tt.b)
			if tt.leader {
				if err != nil {
					t.Fatalf("ValidateBatch: %v (only leader rules should reject)", err)
				}
				err = h.checkLeader()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			// The log rejects it too, without writing anything.
			l := openTest(t, t.TempDir(), DefaultConfig(), Options{})
			if _, err := l.AppendLeader(append([]byte(nil), tt.b...), 0); !errors.Is(err, tt.want) {
				t.Fatalf("AppendLeader err = %v, want %v", err, tt.want)
			}
			if l.LogEndOffset() != 0 || l.Size() != 0 {
				t.Fatalf("rejected append changed the log: leo %d size %d", l.LogEndOffset(), l.Size())
			}
		})
	}
}

func TestAppendRejectsTooLarge(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxMessageBytes = 100
	l := openTest(t, t.TempDir(), cfg, Options{})
	big := segmenttest.Plain(string(make([]byte, 200)))
	if _, err := l.AppendLeader(big, 0); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("err = %v, want ErrRecordTooLarge", err)
	}
	// All-or-nothing: a valid batch followed by a bad one writes nothing.
	ok := segmenttest.Plain("x")
	bad := append([]byte(nil), ok...)
	bad[len(bad)-1] ^= 1
	if _, err := l.AppendLeader(segmenttest.Concat(ok, bad), 0); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("err = %v, want ErrCorruptBatch", err)
	}
	if l.LogEndOffset() != 0 {
		t.Fatalf("leo = %d", l.LogEndOffset())
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.SegmentBytes = 10
	c.IndexIntervalBytes = -1
	err := c.Validate()
	if err == nil {
		t.Fatal("expected error")
	}
	for _, want := range []string{"segment.bytes", "index.interval.bytes"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, err := Open(t.TempDir(), c, Options{}); err == nil {
		t.Fatal("Open accepted a bad config")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
