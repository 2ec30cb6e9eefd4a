package tier

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/segmenttest"
)

func TestClampEpochs(t *testing.T) {
	in := []EpochEntry{{1, 0}, {2, 50}, {4, 100}, {7, 180}, {8, 300}}
	tests := []struct {
		base, next int64
		want       []EpochEntry
	}{
		{0, 40, []EpochEntry{{1, 0}}},
		{60, 120, []EpochEntry{{2, 60}, {4, 100}}},
		{100, 180, []EpochEntry{{4, 100}}},
		{100, 181, []EpochEntry{{4, 100}, {7, 180}}},
		{400, 500, []EpochEntry{{8, 400}}},
	}
	for _, tc := range tests {
		if got := clampEpochs(in, tc.base, tc.next); !slices.Equal(got, tc.want) {
			t.Errorf("clampEpochs(%d, %d) = %v, want %v", tc.base, tc.next, got, tc.want)
		}
	}
	if got := clampEpochs(nil, 5, 10); got == nil || len(got) != 0 {
		t.Errorf("no epochs: %#v", got)
	}
}

func TestEligible(t *testing.T) {
	segs := []segment.SegmentInfo{
		{BaseOffset: 0, NextOffset: 10, Sealed: true},
		{BaseOffset: 10, NextOffset: 20, Sealed: true},
		{BaseOffset: 20, NextOffset: 20, Sealed: true}, // empty
		{BaseOffset: 20, NextOffset: 30, Sealed: true},
		{BaseOffset: 30, NextOffset: 35, Sealed: false},
	}
	bases := func(s []segment.SegmentInfo) (out []int64) {
		for _, x := range s {
			out = append(out, x.BaseOffset)
		}
		return out
	}
	tests := []struct {
		hw, copied int64
		want       []int64
	}{
		{35, -1, []int64{0, 10, 20}},
		{29, -1, []int64{0, 10}},
		{30, 9, []int64{10, 20}},
		// A new leader's segment straddling the copied end (boundaries differ) is uploaded.
		{30, 14, []int64{10, 20}},
		{30, 19, []int64{20}},
		{30, 29, nil},
		{100, 40, nil},
	}
	for _, tc := range tests {
		if got := bases(eligible(segs, tc.hw, tc.copied)); !slices.Equal(got, tc.want) {
			t.Errorf("eligible(hw %d, copied %d) = %v, want %v", tc.hw, tc.copied, got, tc.want)
		}
	}
}

func TestUploaderConfigValidate(t *testing.T) {
	ok := DefaultUploaderConfig()
	ok.TopicID[0] = 1
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{CompressionNone, CompressionZstdFrames, CompressionAuto} {
		cfg := ok
		cfg.Compression = c
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
	for name, mod := range map[string]func(*UploaderConfig){
		"zero topic":  func(c *UploaderConfig) { c.TopicID = [16]byte{} },
		"partition":   func(c *UploaderConfig) { c.Partition = -1 },
		"compression": func(c *UploaderConfig) { c.Compression = "gzip" },
		"frame size":  func(c *UploaderConfig) { c.Compression, c.FrameSize = CompressionZstdFrames, 10 },
		"auto frames": func(c *UploaderConfig) { c.Compression, c.FrameSize = CompressionAuto, 10 },
		"no timeout":  func(c *UploaderConfig) { c.UploadTimeout = 0 },
		"short grace": func(c *UploaderConfig) { c.DeleteGrace = c.UploadTimeout },
	} {
		c := ok
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestUploaderConfigTimeouts: the orphan grace must exceed a positive upload timeout (an
// object landing late under a cleaned-up record must still meet the second deletion,
// REMOTE.md "Orphan objects"), and the refusal names the serve flags that set them.
func TestUploaderConfigTimeouts(t *testing.T) {
	const m = time.Minute
	tests := []struct {
		timeout, grace time.Duration
		ok             bool
	}{
		{DefaultUploadTimeout, DefaultDeleteGrace, true},
		{time.Nanosecond, 2 * time.Nanosecond, true},
		{15 * m, 15*m + time.Nanosecond, true},
		{15 * m, 15 * m, false},
		{60 * m, 30 * m, false},
		{0, 30 * m, false},
		{-m, 30 * m, false},
		{15 * m, 0, false},
		{15 * m, -m, false},
		{0, 0, false},
	}
	for _, tc := range tests {
		c := DefaultUploaderConfig()
		c.TopicID[0] = 1
		c.UploadTimeout, c.DeleteGrace = tc.timeout, tc.grace
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("timeout %v, grace %v: Validate() = %v, want ok %v", tc.timeout, tc.grace, err, tc.ok)
			continue
		}
		if err != nil && (!strings.Contains(err.Error(), "--tier-upload-timeout") || !strings.Contains(err.Error(), "--tier-orphan-grace")) {
			t.Errorf("timeout %v, grace %v: %v: want both flags named", tc.timeout, tc.grace, err)
		}
	}
}

// batchBytes returns n fake batches of the given payload sizes (only the length field matters).
func batchBytes(sizes ...int) []byte {
	var b []byte
	for i, n := range sizes {
		h := make([]byte, 12+n)
		binary.BigEndian.PutUint64(h, uint64(i))
		binary.BigEndian.PutUint32(h[8:], uint32(n))
		for j := 12; j < len(h); j++ {
			h[j] = byte(i + j%7)
		}
		b = append(b, h...)
	}
	return b
}

func TestCompressFrames(t *testing.T) {
	tests := []struct {
		name      string
		data      []byte
		frameSize int
		wantCuts  []int64 // uncompressed frame lengths
	}{
		{"empty", nil, 100, nil},
		{"aligned", batchBytes(40, 40, 40, 40), 100, []int64{104, 104}},
		{"big batch alone", batchBytes(10, 500, 10), 100, []int64{22 + 512, 22}},
		{"garbage", bytes.Repeat([]byte{0xff}, 250), 100, []int64{100, 100, 50}},
		{"torn tail", append(batchBytes(40), 0, 0, 0), 100, []int64{55}},
	}
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	for _, tc := range tests {
		var out bytes.Buffer
		x, err := compressFrames(&out, bytes.NewReader(tc.data), int64(len(tc.data)), tc.frameSize)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var cuts []int64
		for _, f := range x.Frames {
			cuts = append(cuts, f.UncompressedLen)
		}
		if !slices.Equal(cuts, tc.wantCuts) {
			t.Errorf("%s: cuts %v, want %v", tc.name, cuts, tc.wantCuts)
		}
		back, err := ParseFrameIndex(x.Encode())
		if err != nil || back.CompressedSize != int64(out.Len()) {
			t.Fatalf("%s: index does not parse back: %v", tc.name, err)
		}
		all, err := dec.DecodeAll(out.Bytes(), nil)
		if err != nil || !bytes.Equal(all, tc.data) && len(tc.data) > 0 {
			t.Fatalf("%s: decode: %v", tc.name, err)
		}
	}
}

func TestFrameIndexFind(t *testing.T) {
	x := &FrameIndex{V: 1, UncompressedSize: 300, Frames: []Frame{
		{0, 100, 0, 10}, {100, 100, 10, 10}, {200, 100, 20, 10}}, CompressedSize: 30}
	tests := []struct {
		a, b        int64
		first, last int
	}{
		{0, 1, 0, 1}, {99, 101, 0, 2}, {100, 200, 1, 2}, {150, 1000, 1, 3}, {300, 400, 0, 0}, {-5, 0, 0, 0}, {5, 5, 0, 0},
	}
	for _, tc := range tests {
		if f, l := x.Find(tc.a, tc.b); f != tc.first || l != tc.last {
			t.Errorf("Find(%d, %d) = [%d, %d), want [%d, %d)", tc.a, tc.b, f, l, tc.first, tc.last)
		}
	}
}

func TestParseFrameIndexRejects(t *testing.T) {
	for _, s := range []string{
		``, `{}`, `{"v":2}`,
		`{"v":1,"uncompressed_size":5,"compressed_size":0,"frames":[]}`,
		`{"v":1,"uncompressed_size":5,"compressed_size":3,"frames":[{"uncompressed_offset":1,"uncompressed_len":4,"compressed_offset":0,"compressed_len":3}]}`,
		`{"v":1,"uncompressed_size":0,"compressed_size":3,"frames":[{"uncompressed_offset":0,"uncompressed_len":0,"compressed_offset":0,"compressed_len":3}]}`,
		`{"v":1,"uncompressed_size":-1,"compressed_size":-1,"frames":[{"uncompressed_offset":0,"uncompressed_len":9223372036854775807,"compressed_offset":0,"compressed_len":1}]}`,
	} {
		if _, err := ParseFrameIndex([]byte(s)); err == nil {
			t.Errorf("accepted %s", s)
		}
	}
}

// FuzzParseFrameIndex: never panics; an accepted index re-encodes to one that parses to
// the same value.
func FuzzParseFrameIndex(f *testing.F) {
	var out bytes.Buffer
	x, _ := compressFrames(&out, bytes.NewReader(batchBytes(40, 40, 40, 40)), 208, 100)
	f.Add(x.Encode())
	f.Add([]byte(`{"v":1,"frames":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ParseFrameIndex(b)
		if err != nil {
			return
		}
		y, err := ParseFrameIndex(x.Encode())
		if err != nil || !slices.Equal(x.Frames, y.Frames) || x.UncompressedSize != y.UncompressedSize || x.CompressedSize != y.CompressedSize {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

func exampleManifest() *Manifest {
	id := [16]byte{1, 2, 3}
	seg := RemoteSegment{V: 1, TopicID: id, Partition: 2, UploadID: "u", BaseOffset: 10, EndOffset: 19,
		Epochs: []EpochEntry{{1, 10}}, MaxTimestamp: -1, Size: 100, Compression: CompressionNone, State: CopyFinished}
	seg2 := seg
	seg2.BaseOffset, seg2.EndOffset, seg2.UploadID, seg2.Compression = 20, 29, "v", CompressionZstdFrames
	seg2.TxnIndex = true
	return &Manifest{V: 1, TopicID: TopicIDText(id), Partition: 2, LeaderEpoch: 1, Segments: []RemoteSegment{seg, seg2}}
}

func TestManifestRoundTrip(t *testing.T) {
	m := exampleManifest()
	b := EncodeManifest(m)
	back, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(EncodeManifest(back), b) {
		t.Fatalf("round trip changed the manifest:\n%s\n%s", b, EncodeManifest(back))
	}
	// Each segment records the compression its upload used.
	if back.Segments[0].Compression != CompressionNone || back.Segments[1].Compression != CompressionZstdFrames ||
		!bytes.Contains(b, []byte(`"compression":"zstd-frames"`)) || bytes.Contains(b, []byte("deleted_at_ms")) {
		t.Fatalf("compression not recorded: %s", b)
	}
	// Only an upload with a txnindex object says so; the field is absent otherwise, as in
	// manifests written before it existed, which read as "no aborted transactions".
	if back.Segments[0].TxnIndex || !back.Segments[1].TxnIndex || bytes.Count(b, []byte(`"txn_index":true`)) != 1 ||
		bytes.Contains(b, []byte(`"txn_index":false`)) {
		t.Fatalf("txn_index not recorded: %s", b)
	}
	old := []byte(`{"v":1,"topic_id":"AQIDAAAAAAAAAAAAAAAAAA","partition":2,"leader_epoch":1,"segments":[` +
		`{"v":1,"topic_id":[1,2,3,0,0,0,0,0,0,0,0,0,0,0,0,0],"partition":2,"upload_id":"u","base_offset":10,"end_offset":19,` +
		`"leader_epoch":0,"epochs":[{"epoch":1,"start_offset":10}],"max_timestamp":-1,"size":100,"compression":"none","state":"COPY_FINISHED"}]}`)
	if m, err := ParseManifest(old); err != nil || len(m.Segments) != 1 || m.Segments[0].TxnIndex {
		t.Fatalf("manifest without txn_index: %+v, %v", m, err)
	}
	for name, mod := range map[string]func(*Manifest){
		"version":   func(m *Manifest) { m.V = 2 },
		"state":     func(m *Manifest) { m.Segments[0].State = CopyStarted },
		"partition": func(m *Manifest) { m.Segments[1].Partition = 3 },
		"order":     func(m *Manifest) { m.Segments[0], m.Segments[1] = m.Segments[1], m.Segments[0] },
		"range":     func(m *Manifest) { m.Segments[0].EndOffset = 5 },
		"auto":      func(m *Manifest) { m.Segments[1].Compression = CompressionAuto },
		"codec":     func(m *Manifest) { m.Segments[1].Compression = "gzip" },
		"deleted":   func(m *Manifest) { m.Segments[0].DeletedAtMs = 1 },
	} {
		m := exampleManifest()
		mod(m)
		if _, err := ParseManifest(EncodeManifest(m)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseManifest: never panics; an accepted manifest re-encodes to bytes that parse and
// encode identically.
func FuzzParseManifest(f *testing.F) {
	f.Add(EncodeManifest(exampleManifest()))
	f.Add([]byte(`{"v":1,"topic_id":"","partition":0,"segments":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		e := EncodeManifest(m)
		m2, err := ParseManifest(e)
		if err != nil || !bytes.Equal(EncodeManifest(m2), e) {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

func TestEpochsObject(t *testing.T) {
	e := []EpochEntry{{3, 100}, {5, 180}}
	b := EncodeEpochs(e)
	if string(b) != "0\n2\n3 100\n5 180\n" {
		t.Fatalf("%q", b)
	}
	back, err := ParseEpochs(b)
	if err != nil || !slices.Equal(back, e) {
		t.Fatalf("%v, %v", back, err)
	}
	if back, err := ParseEpochs(EncodeEpochs(nil)); err != nil || len(back) != 0 {
		t.Fatalf("empty: %v, %v", back, err)
	}
	for _, s := range []string{"", "1\n0\n", "0\n2\n3 100\n", "0\n1\nx 1\n", "0\n2\n5 100\n3 200\n", "0\n1\n-1 5\n"} {
		if _, err := ParseEpochs([]byte(s)); err == nil {
			t.Errorf("accepted %q", s)
		}
	}
}

// FuzzParseEpochs: never panics; accepted input re-encodes to input that parses identically.
func FuzzParseEpochs(f *testing.F) {
	f.Add(EncodeEpochs([]EpochEntry{{3, 100}, {5, 180}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEpochs(b)
		if err != nil {
			return
		}
		e2, err := ParseEpochs(EncodeEpochs(e))
		if err != nil || !slices.Equal(e, e2) {
			t.Fatalf("re-parse of %q: %v", b, err)
		}
	})
}

func TestAutoCompression(t *testing.T) {
	batch := func(codec int8, n int) []byte {
		vals := make([]string, n)
		for i := range vals {
			vals[i] = fmt.Sprintf("value %d %s", i, strings.Repeat("abc", 30))
		}
		return segmenttest.Batch{FirstTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Compression: codec, Records: segmenttest.Values(vals...)}.Encode()
	}
	rep := func(b []byte, n int) []byte { return bytes.Repeat(b, n) }
	random := func(n int) []byte {
		var out []byte
		rng := rand.New(rand.NewPCG(1, 2))
		for range n {
			v := make([]byte, 1000)
			for i := range v {
				v[i] = byte(rng.Uint32())
			}
			out = append(out, segmenttest.Batch{FirstTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
				Records: segmenttest.Values(string(v))}.Encode()...)
		}
		return out
	}
	plain, zstdB, lz4B := batch(0, 4), batch(4, 40), batch(3, 40)
	big := rep(plain, 2000) // larger than the read window
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, CompressionNone},
		{"uncompressed", rep(plain, 10), CompressionZstdFrames},
		{"uncompressed, many windows", big, CompressionZstdFrames},
		{"zstd", rep(zstdB, 10), CompressionNone},
		{"lz4 then uncompressed", append(rep(lz4B, 30), rep(plain, 2)...), CompressionNone},
		{"mostly uncompressed", append(append(rep(plain, 50), zstdB...), rep(plain, 50)...), CompressionZstdFrames},
		{"control markers among zstd", append(rep(zstdB, 20), rep(plain, 1)...), CompressionNone},
		{"torn tail", append(rep(plain, 3), plain[:30]...), CompressionZstdFrames},
		{"uncompressed but incompressible values", random(400), CompressionNone},
		{"garbage", bytes.Repeat([]byte{0xff}, 500), CompressionNone},
		{"garbage after compressed", append(rep(zstdB, 2), bytes.Repeat([]byte{0xff}, 100000)...), CompressionNone},
	}
	for _, tc := range tests {
		got, err := autoCompression(bytes.NewReader(tc.data), int64(len(tc.data)))
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	// A read error is reported.
	if _, err := autoCompression(bytes.NewReader(plain), int64(len(plain))+100); err == nil {
		t.Error("a short file: no error")
	}
}
