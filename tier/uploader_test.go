package tier_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/meta/metatest"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/file"
	tiers3 "github.com/sedimentio/sediment/tier/s3"
	"github.com/sedimentio/sediment/tier/tiertest"
)

// metaAdapter is tier.Metadata over a real meta.Store, as the broker's adapter will be:
// every write is fenced on the partition key's revision the leader works under.
type metaAdapter struct {
	s        *meta.Store
	id       meta.TopicID
	p        int32
	fenceRev int64
}

func toRecord(seg tier.RemoteSegment, rev int64) meta.RemoteSegmentRecord {
	r := meta.RemoteSegmentRecord{TopicID: meta.TopicID(seg.TopicID), Partition: seg.Partition, UploadID: seg.UploadID,
		BaseOffset: seg.BaseOffset, EndOffset: seg.EndOffset, LeaderEpoch: seg.LeaderEpoch, MaxTimestamp: seg.MaxTimestamp,
		Size: seg.Size, Compression: seg.Compression, TxnIndex: seg.TxnIndex, State: string(seg.State), DeletedAtMs: seg.DeletedAtMs, Revision: rev}
	for _, e := range seg.Epochs {
		r.Epochs = append(r.Epochs, meta.RemoteEpoch{Epoch: e.Epoch, StartOffset: e.StartOffset})
	}
	return r
}

func fromRecord(r meta.RemoteSegmentRecord) tier.StoredSegment {
	seg := tier.RemoteSegment{V: 1, TopicID: r.TopicID, Partition: r.Partition, UploadID: r.UploadID,
		BaseOffset: r.BaseOffset, EndOffset: r.EndOffset, LeaderEpoch: r.LeaderEpoch, Epochs: []tier.EpochEntry{},
		MaxTimestamp: r.MaxTimestamp, Size: r.Size, Compression: r.Compression, TxnIndex: r.TxnIndex, State: tier.SegmentState(r.State),
		DeletedAtMs: r.DeletedAtMs}
	for _, e := range r.Epochs {
		seg.Epochs = append(seg.Epochs, tier.EpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset})
	}
	return tier.StoredSegment{RemoteSegment: seg, Revision: r.Revision}
}

func fenceErr(err error) error {
	if errors.Is(err, meta.ErrFenced) {
		return fmt.Errorf("%w: %w", tier.ErrFenced, err)
	}
	return err
}

func (a *metaAdapter) fence() meta.Fence { return a.s.PartitionUnchanged(a.id, a.p, a.fenceRev) }

func (a *metaAdapter) List(ctx context.Context) ([]tier.StoredSegment, error) {
	recs, err := a.s.RemoteSegments(ctx, a.id, a.p)
	if err != nil {
		return nil, err
	}
	out := make([]tier.StoredSegment, len(recs))
	for i, r := range recs {
		out[i] = fromRecord(r)
	}
	return out, nil
}

func (a *metaAdapter) Start(ctx context.Context, seg tier.RemoteSegment) (tier.StoredSegment, error) {
	rev, err := a.s.PutRemoteSegment(ctx, toRecord(seg, 0), a.fence())
	if err != nil {
		return tier.StoredSegment{}, fenceErr(err)
	}
	return tier.StoredSegment{RemoteSegment: seg, Revision: rev}, nil
}

func (a *metaAdapter) Transition(ctx context.Context, st tier.StoredSegment, state tier.SegmentState) (tier.StoredSegment, error) {
	st.State = state
	rev, err := a.s.PutRemoteSegment(ctx, toRecord(st.RemoteSegment, st.Revision), a.fence())
	if err != nil {
		return tier.StoredSegment{}, fenceErr(err)
	}
	st.Revision = rev
	return st, nil
}

func (a *metaAdapter) Remove(ctx context.Context, st tier.StoredSegment) error {
	return fenceErr(a.s.DeleteRemoteSegment(ctx, toRecord(st.RemoteSegment, st.Revision), a.fence()))
}

// hookMeta wraps a Metadata to inject faults.
type hookMeta struct {
	tier.Metadata
	afterStart   func(tier.StoredSegment) // runs after a successful Start
	beforeFinish func() error             // a non-nil error replaces the COPY_FINISHED write
	onTransition func(tier.SegmentState)  // observes every transition
}

func (h *hookMeta) Start(ctx context.Context, seg tier.RemoteSegment) (tier.StoredSegment, error) {
	st, err := h.Metadata.Start(ctx, seg)
	if err == nil && h.afterStart != nil {
		h.afterStart(st)
	}
	return st, err
}

func (h *hookMeta) Transition(ctx context.Context, st tier.StoredSegment, state tier.SegmentState) (tier.StoredSegment, error) {
	if state == tier.CopyFinished && h.beforeFinish != nil {
		if err := h.beforeFinish(); err != nil {
			return tier.StoredSegment{}, err
		}
	}
	if h.onTransition != nil {
		h.onTransition(state)
	}
	return h.Metadata.Transition(ctx, st, state)
}

// logSource is tier.SegmentSource over a real segment.Log, with the epochs a test sets.
type logSource struct {
	l      *segment.Log
	epochs []tier.EpochEntry
}

func (s *logSource) Segments() []segment.SegmentInfo { return s.l.Segments() }

func (s *logSource) EpochsFor(base, next int64) []tier.EpochEntry {
	var out []tier.EpochEntry
	for i, e := range s.epochs {
		if e.StartOffset < next && (i+1 == len(s.epochs) || s.epochs[i+1].StartOffset > base) {
			out = append(out, e)
		}
	}
	return out
}

// startMeta starts an embedded single-member etcd for one test function and opens its store.
func startMeta(t *testing.T) *meta.Store {
	t.Helper()
	store, _ := metatest.Start(t)
	return store
}

var quiet = slog.New(slog.DiscardHandler)

// upBackend opens an empty object store for one subtest.
type upBackend struct {
	name string
	open func(t *testing.T) tier.ObjectStore
}

func upBackends(t *testing.T) []upBackend {
	fileBackend := upBackend{"file", func(t *testing.T) tier.ObjectStore {
		s, err := file.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}}
	s3Backend := upBackend{"s3", func(t *testing.T) tier.ObjectStore {
		m := tiertest.StartMinIO(t)
		raw := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.Endpoint), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")})
		if _, err := raw.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("tier")}); err != nil {
			t.Fatalf("CreateBucket: %v", err)
		}
		cfg := tiers3.DefaultConfig("tier")
		cfg.Prefix = "cluster"
		cfg.Endpoint = m.Endpoint
		cfg.Region = "us-east-1"
		cfg.PathStyle = true
		cfg.Credentials = credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
		st, err := tiers3.New(t.Context(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}}
	return []upBackend{fileBackend, s3Backend}
}

// upFixture is one partition: a local log with small segments, its topic in etcd, an object
// store and an uploader.
type upFixture struct {
	t      *testing.T
	ms     *meta.Store
	store  tier.ObjectStore
	log    *segment.Log
	src    *logSource
	topic  meta.Topic
	md     *metaAdapter
	reg    *prometheus.Registry
	up     *tier.Uploader
	cfg    tier.UploaderConfig
	epoch  int32
	nowMs  int64
	values int
	skew   atomic.Int64 // added to the uploaders' clock (cfg.Now): DeleteGrace passes at once
}

func newUpFixture(t *testing.T, ms *meta.Store, store tier.ObjectStore, compression string) *upFixture {
	t.Helper()
	ctx := t.Context()
	topic := meta.Topic{Name: strings.ReplaceAll(t.Name(), "/", "."), ID: meta.NewTopicID(), Partitions: [][]int32{{1}}}
	if _, err := ms.CreateTopic(ctx, topic, []meta.PartitionState{{Leader: 1, LeaderEpoch: 0, ISR: []int32{1}}}); err != nil {
		t.Fatal(err)
	}
	scfg := segment.DefaultConfig()
	scfg.SegmentBytes = 1024
	scfg.IndexIntervalBytes = 128
	if compression != tier.CompressionNone {
		scfg.SegmentBytes = 40000
	}
	l, err := segment.Open(filepath.Join(t.TempDir(), "t-0"), scfg, segment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f := &upFixture{t: t, ms: ms, store: store, log: l, topic: topic, src: &logSource{l: l, epochs: []tier.EpochEntry{{Epoch: 0, StartOffset: 0}}},
		nowMs: time.Now().UnixMilli()}
	f.cfg = tier.DefaultUploaderConfig()
	f.cfg.TopicID, f.cfg.Topic, f.cfg.Partition, f.cfg.Compression = topic.ID, topic.Name, 0, compression
	f.cfg.FrameSize = 4096
	f.cfg.TempDir = t.TempDir()
	f.cfg.Now = func() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }
	f.newLeader(false)
	return f
}

// newLeader starts a new uploader, for a new leader term when bump is set (the partition
// key changes: the previous uploader is fenced).
func (f *upFixture) newLeader(bump bool) {
	f.t.Helper()
	ctx := f.t.Context()
	st, err := f.ms.Partition(ctx, f.topic.ID, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	if bump {
		st.LeaderEpoch++
		if st.Revision, err = f.ms.UpdatePartition(ctx, f.topic.ID, 0, st); err != nil {
			f.t.Fatal(err)
		}
		f.src.epochs = append(f.src.epochs, tier.EpochEntry{Epoch: st.LeaderEpoch, StartOffset: f.log.LogEndOffset()})
	}
	f.epoch = st.LeaderEpoch
	f.md = &metaAdapter{s: f.ms, id: f.topic.ID, p: 0, fenceRev: st.Revision}
	f.cfg.LeaderEpoch = st.LeaderEpoch
	f.reg = prometheus.NewRegistry()
	m, err := tier.NewUploaderMetrics(f.reg)
	if err != nil {
		f.t.Fatal(err)
	}
	if f.up, err = tier.NewUploader(f.cfg, f.store, f.src, f.md, m, quiet); err != nil {
		f.t.Fatal(err)
	}
}

// produce appends n batches of about 200 bytes, with timestamp tsMs (0: now).
func (f *upFixture) produce(n int, tsMs int64) {
	f.t.Helper()
	if tsMs == 0 {
		tsMs = f.nowMs
	}
	for range n {
		f.values++
		v := fmt.Sprintf("value-%05d-%s", f.values, strings.Repeat("x", 150))
		b := segmenttest.Batch{FirstTimestamp: tsMs, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Records: segmenttest.Values(v)}.Encode()
		if _, err := f.log.AppendLeader(b, f.epoch); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *upFixture) sealed(below int64) []segment.SegmentInfo {
	var out []segment.SegmentInfo
	for _, s := range f.log.Segments() {
		if s.Sealed && s.NextOffset <= below {
			out = append(out, s)
		}
	}
	return out
}

func (f *upFixture) records() []meta.RemoteSegmentRecord {
	f.t.Helper()
	recs, err := f.ms.RemoteSegments(f.t.Context(), f.topic.ID, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return recs
}

func (f *upFixture) objects() []string {
	f.t.Helper()
	var keys []string
	id := "/" + tier.TopicIDText(f.topic.ID) + "/"
	if err := f.store.List(f.t.Context(), "", func(key string, _ int64) error {
		if strings.Contains(key, id) { // other subtests' topics share the store
			keys = append(keys, key)
		}
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
	return keys
}

func (f *upFixture) read(key string) []byte {
	f.t.Helper()
	size, err := f.store.Stat(f.t.Context(), key)
	if err != nil {
		f.t.Fatalf("Stat(%s): %v", key, err)
	}
	return tiertest.MustRead(f.t, f.store, key, int(size))
}

// lingering returns the DELETE_FINISHED records kept for DeleteGrace, by upload id.
func (f *upFixture) lingering() map[string]meta.RemoteSegmentRecord {
	f.t.Helper()
	out := map[string]meta.RemoteSegmentRecord{}
	for _, r := range f.records() {
		if r.State == meta.RemoteDeleteFinished {
			out[r.UploadID] = r
		}
	}
	return out
}

// objectsOf returns the objects in the store of one upload.
func (f *upFixture) objectsOf(uploadID string) []string {
	f.t.Helper()
	var out []string
	for _, k := range f.objects() {
		if strings.Contains(k, uploadID) {
			out = append(out, k)
		}
	}
	return out
}

// check verifies the invariants after a successful run: every record is COPY_FINISHED,
// one per segment listed in want (by base offset), the objects in the store are exactly
// those of these uploads plus the manifest, their contents match the local files, and the
// manifest lists the records.
//
// DELETE_FINISHED records of cleaned-up uploads waiting for DeleteGrace are left out
// (their objects must be gone); lingering returns them.
func (f *upFixture) check(want []segment.SegmentInfo) {
	f.t.Helper()
	var recs []meta.RemoteSegmentRecord
	for _, r := range f.records() {
		if r.State == meta.RemoteDeleteFinished && r.DeletedAtMs > 0 {
			continue
		}
		recs = append(recs, r)
	}
	if len(recs) != len(want) {
		f.t.Fatalf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	wantKeys := []string{tier.ManifestKey(tier.TopicIDText(f.topic.ID), 0)}
	for i, r := range recs {
		s := want[i]
		if r.State != meta.RemoteCopyFinished || r.BaseOffset != s.BaseOffset || r.EndOffset != s.NextOffset-1 || r.Size != s.Size {
			f.t.Fatalf("record %d = %+v, want COPY_FINISHED of segment %+v", i, r, s)
		}
		seg := fromRecord(r).RemoteSegment
		kinds := []string{tier.KindLog, tier.KindIndex, tier.KindTimeIndex, tier.KindEpochs, tier.KindSnapshot}
		if r.Compression == tier.CompressionZstdFrames {
			kinds = append(kinds, tier.KindFrames)
		}
		// A segment with aborted transactions has its .txnindex uploaded, byte for byte,
		// and its record says so; any other has neither.
		var txnIndex []byte
		if s.HasTxnIndex {
			var err error
			if txnIndex, err = os.ReadFile(s.TxnIndexPath); err != nil {
				f.t.Fatal(err)
			}
		}
		if r.TxnIndex != (len(txnIndex) > 0) {
			f.t.Fatalf("segment %d: record txn_index %v, local .txnindex of %d bytes", s.BaseOffset, r.TxnIndex, len(txnIndex))
		}
		if r.TxnIndex {
			kinds = append(kinds, tier.KindTxnIndex)
			if !bytes.Equal(txnIndex, f.read(tier.SegmentObjectKey(seg, tier.KindTxnIndex))) {
				f.t.Fatalf("segment %d: remote txnindex differs from %s", s.BaseOffset, s.TxnIndexPath)
			}
		}
		for _, k := range kinds {
			wantKeys = append(wantKeys, tier.SegmentObjectKey(seg, k))
		}
		local, err := os.ReadFile(s.LogPath)
		if err != nil {
			f.t.Fatal(err)
		}
		remote := f.read(tier.SegmentObjectKey(seg, tier.KindLog))
		if r.Compression == tier.CompressionZstdFrames {
			remote = decompressFrames(f.t, remote, f.read(tier.SegmentObjectKey(seg, tier.KindFrames)))
		}
		if !bytes.Equal(local[:s.Size], remote) {
			f.t.Fatalf("segment %d: remote .log (%d bytes) differs from the local one (%d)", s.BaseOffset, len(remote), s.Size)
		}
		for _, p := range []struct{ kind, path string }{{tier.KindIndex, s.IndexPath}, {tier.KindTimeIndex, s.TimeIndexPath},
			{tier.KindSnapshot, filepath.Join(filepath.Dir(s.LogPath), fmt.Sprintf("%020d.snapshot", s.NextOffset))}} {
			local, err := os.ReadFile(p.path)
			if err != nil {
				f.t.Fatal(err)
			}
			if !bytes.Equal(local, f.read(tier.SegmentObjectKey(seg, p.kind))) {
				f.t.Fatalf("segment %d: remote %s differs from %s", s.BaseOffset, p.kind, p.path)
			}
		}
		epochs, err := tier.ParseEpochs(f.read(tier.SegmentObjectKey(seg, tier.KindEpochs)))
		if err != nil || !slices.Equal(epochs, seg.Epochs) || len(epochs) == 0 || epochs[0].StartOffset != s.BaseOffset {
			f.t.Fatalf("segment %d: epochs object %v (%v), record %v", s.BaseOffset, epochs, err, seg.Epochs)
		}
	}
	got := f.objects()
	sort.Strings(wantKeys)
	if !slices.Equal(got, wantKeys) {
		f.t.Fatalf("objects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantKeys, "\n"))
	}
	m, err := tier.ReadManifest(f.t.Context(), f.store, tier.TopicIDText(f.topic.ID), 0)
	if err != nil {
		f.t.Fatalf("manifest: %v", err)
	}
	if len(m.Segments) != len(recs) {
		f.t.Fatalf("manifest has %d segments, want %d", len(m.Segments), len(recs))
	}
	for i, s := range m.Segments {
		if s.UploadID != recs[i].UploadID || s.BaseOffset != recs[i].BaseOffset || s.State != tier.CopyFinished ||
			s.Compression != recs[i].Compression || s.TxnIndex != recs[i].TxnIndex || s.DeletedAtMs != 0 {
			f.t.Fatalf("manifest segment %d = %+v, record %+v", i, s, recs[i])
		}
	}
	wantEnd := int64(-1)
	if len(want) > 0 {
		wantEnd = want[len(want)-1].NextOffset
	}
	if got := f.up.RemoteEnd(); got != wantEnd {
		f.t.Fatalf("RemoteEnd = %d, want %d", got, wantEnd)
	}
}

func decompressFrames(t *testing.T, obj, index []byte) []byte {
	t.Helper()
	x, err := tier.ParseFrameIndex(index)
	if err != nil {
		t.Fatal(err)
	}
	if x.CompressedSize != int64(len(obj)) {
		t.Fatalf("frame index says %d compressed bytes, object has %d", x.CompressedSize, len(obj))
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var out []byte
	for i, fr := range x.Frames {
		b, err := dec.DecodeAll(obj[fr.CompressedOffset:fr.CompressedOffset+fr.CompressedLen], nil)
		if err != nil || int64(len(b)) != fr.UncompressedLen {
			t.Fatalf("frame %d: %d bytes, %v", i, len(b), err)
		}
		out = append(out, b...)
	}
	// The object is also one valid multi-frame stream.
	all, err := dec.DecodeAll(obj, nil)
	if err != nil || !bytes.Equal(all, out) {
		t.Fatalf("whole-object decode: %d bytes, %v", len(all), err)
	}
	return out
}

func TestUploader(t *testing.T) {
	ms := startMeta(t)
	for _, b := range upBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			store := b.open(t) // one MinIO per upBackend run; subtests use distinct topics
			t.Run("UploadBelowHighWatermark", func(t *testing.T) { testUploadBelowHW(t, ms, store) })
			t.Run("FencedAfterLeaderChange", func(t *testing.T) { testFenced(t, ms, store) })
			t.Run("CrashBetweenStartAndFinish", func(t *testing.T) { testCrash(t, ms, store) })
			t.Run("RemoteRetention", func(t *testing.T) { testRetention(t, ms, store) })
			t.Run("ZstdFrames", func(t *testing.T) { testZstdFrames(t, ms, store) })
			t.Run("AutoCompression", func(t *testing.T) { testAutoCompression(t, ms, store) })
			t.Run("DeposedPutAfterCleanup", func(t *testing.T) { testDeposedPutAfterCleanup(t, ms, store) })
			t.Run("LegacyDeleteFinished", func(t *testing.T) { testLegacyDeleteFinished(t, ms, store) })
			t.Run("UploadTimeout", func(t *testing.T) { testUploadTimeout(t, ms, store) })
			t.Run("TxnIndex", func(t *testing.T) { testTxnIndex(t, ms, store) })
		})
	}
}

func testUploadBelowHW(t *testing.T, ms *meta.Store, store tier.ObjectStore) {
	f := newUpFixture(t, ms, store, tier.CompressionNone)
	ctx := t.Context()
	// Nothing yet: RemoteEnd is -1 and the manifest is written empty.
	if n, err := f.up.UploadEligible(ctx, 0); err != nil || n != 0 {
		t.Fatalf("UploadEligible on an empty log = %d, %v", n, err)
	}
	f.check(nil)

	f.produce(40, 0)
	segs := f.sealed(f.log.LogEndOffset())
	if len(segs) < 5 {
		t.Fatalf("only %d sealed segments", len(segs))
	}
	// A high watermark inside the fourth segment: three are eligible.
	hw := segs[3].NextOffset - 1
	n, err := f.up.UploadEligible(ctx, hw)
	if err != nil || n != 3 {
		t.Fatalf("UploadEligible(hw=%d) = %d, %v; want 3", hw, n, err)
	}
	f.check(segs[:3])
	if got := f.metric("sediment_tier_remote_copy_lag_segments"); got != 0 {
		t.Fatalf("lag segments = %v", got)
	}
	if n, err := f.up.UploadEligible(ctx, hw); err != nil || n != 0 {
		t.Fatalf("repeat = %d, %v", n, err)
	}
	// The high watermark reaches the log end: every sealed segment, never the active one.
	n, err = f.up.UploadEligible(ctx, f.log.LogEndOffset())
	if err != nil || n != len(segs)-3 {
		t.Fatalf("UploadEligible(leo) = %d, %v; want %d", n, err, len(segs)-3)
	}
	f.check(segs)
	if f.up.RemoteLogStart() != 0 {
		t.Fatalf("RemoteLogStart = %d", f.up.RemoteLogStart())
	}
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	if got := f.metric("sediment_tier_remote_copy_requests_total"); got != float64(len(segs)) {
		t.Fatalf("copy requests = %v, want %d", got, len(segs))
	}
	if got := f.metric("sediment_tier_remote_copy_bytes_total"); got <= float64(total) {
		t.Fatalf("copy bytes = %v, want more than the logs' %d", got, total)
	}
	// A new uploader (broker restart, same term) finds the state in etcd.
	f.newLeader(false)
	if n, err := f.up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil || n != 0 {
		t.Fatalf("after restart = %d, %v", n, err)
	}
	f.check(segs)
}

// metric sums every series of a metric family in the upFixture's registry.
func (f *upFixture) metric(name string) float64 {
	f.t.Helper()
	fams, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	var v float64
	for _, fam := range fams {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

func testFenced(t *testing.T, ms *meta.Store, store tier.ObjectStore) {
	f := newUpFixture(t, ms, store, tier.CompressionNone)
	ctx := t.Context()
	f.produce(20, 0)
	segs := f.sealed(f.log.LogEndOffset())
	if n, err := f.up.UploadEligible(ctx, segs[1].NextOffset); err != nil || n != 2 {
		t.Fatalf("first upload = %d, %v", n, err)
	}
	old := f.up
	oldMD := f.md

	// A new leader takes over: the old uploader can neither start nor finish anything.
	f.newLeader(true)
	if n, err := old.UploadEligible(ctx, f.log.LogEndOffset()); !errors.Is(err, tier.ErrFenced) || n != 0 {
		t.Fatalf("deposed uploader = %d, %v; want ErrFenced", n, err)
	}
	if _, err := old.DeleteBefore(ctx, f.log.LogEndOffset()); !errors.Is(err, tier.ErrFenced) {
		t.Fatalf("deposed DeleteBefore: %v", err)
	}
	cur := f.up
	f.up = old
	f.check(segs[:2]) // nothing changed
	f.up = cur

	// Fenced between start and finish: an old uploader whose term ends mid-upload.
	hooked := &hookMeta{Metadata: oldMD}
	oldCfg := f.cfg
	oldCfg.LeaderEpoch = f.epoch - 1
	st, _ := ms.Partition(ctx, f.topic.ID, 0)
	oldMD.fenceRev = st.Revision // as if the old leader had read the current key...
	hooked.afterStart = func(tier.StoredSegment) {
		st.LeaderEpoch++ // ... and then lost it while uploading.
		if _, err := ms.UpdatePartition(ctx, f.topic.ID, 0, st); err != nil {
			t.Error(err)
		}
	}
	m, _ := tier.NewUploaderMetrics(nil)
	stale, err := tier.NewUploader(oldCfg, store, f.src, hooked, m, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := stale.UploadEligible(ctx, f.log.LogEndOffset()); !errors.Is(err, tier.ErrFenced) || n != 0 {
		t.Fatalf("upload fenced mid-way = %d, %v", n, err)
	}
	recs := f.records()
	if len(recs) != 3 || recs[2].State != meta.RemoteCopyStarted || recs[2].BaseOffset != segs[2].BaseOffset {
		t.Fatalf("records after a fenced upload: %+v", recs)
	}
	staleID := recs[2].UploadID
	// Its COPY_FINISHED was refused for certain, so it deleted its own objects at once.
	for _, k := range f.objects() {
		if strings.Contains(k, staleID) {
			t.Fatalf("object %s of the fenced upload left behind", k)
		}
	}

	// The current leader (after the second change) cleans up and uploads the rest.
	f.newLeader(false)
	n, err := f.up.UploadEligible(ctx, f.log.LogEndOffset())
	if err != nil || n != len(segs)-2 {
		t.Fatalf("new leader = %d, %v; want %d", n, err, len(segs)-2)
	}
	f.check(segs)
	for _, k := range f.objects() {
		if strings.Contains(k, staleID) {
			t.Fatalf("object %s of the fenced upload survived", k)
		}
	}
	// Its record stays DELETE_FINISHED (invisible: not in the manifest, not counted by
	// RemoteEnd, which check verified) until DeleteGrace is over.
	if r, ok := f.lingering()[staleID]; !ok || r.DeletedAtMs <= 0 {
		t.Fatalf("record of the fenced upload: %+v, %v", r, ok)
	}
	for _, r := range f.records()[2:] {
		if r.State == meta.RemoteDeleteFinished {
			continue
		}
		if r.LeaderEpoch != f.epoch {
			t.Fatalf("segment %d uploaded in epoch %d, want %d", r.BaseOffset, r.LeaderEpoch, f.epoch)
		}
	}
}

func testCrash(t *testing.T, ms *meta.Store, store tier.ObjectStore) {
	f := newUpFixture(t, ms, store, tier.CompressionNone)
	ctx := t.Context()
	f.produce(20, 0)
	segs := f.sealed(f.log.LogEndOffset())

	// Crash twice between COPY_STARTED and COPY_FINISHED of the second segment. The second
	// run cleans up the first's abandoned upload before it crashes too.
	crash := errors.New("crash")
	calls := 0
	var started []string
	for range 2 {
		h := &hookMeta{Metadata: f.md,
			afterStart: func(st tier.StoredSegment) { started = append(started, st.UploadID) },
			beforeFinish: func() error {
				calls++
				if calls >= 2 {
					return crash
				}
				return nil
			}}
		up, err := tier.NewUploader(f.cfg, store, f.src, h, nil, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.UploadEligible(ctx, f.log.LogEndOffset()); !errors.Is(err, crash) {
			t.Fatalf("crashing upload: %v", err)
		}
	}
	// The first crashed upload (started[1]) was cleaned up by the second run: its record
	// stays, DELETE_FINISHED, until DeleteGrace is over.
	var recs []meta.RemoteSegmentRecord
	for _, r := range f.records() {
		if r.State == meta.RemoteDeleteFinished {
			if len(started) < 2 || r.UploadID != started[1] || r.DeletedAtMs <= 0 {
				t.Fatalf("DELETE_FINISHED record %+v (uploads %v)", r, started)
			}
			continue
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 || recs[1].State != meta.RemoteCopyStarted || recs[1].BaseOffset != segs[1].BaseOffset ||
		len(started) != 3 || recs[1].UploadID != started[2] {
		t.Fatalf("records after two crashes: %+v (uploads %v)", recs, started)
	}
	// A deposed leader of an older epoch also left an upload of the same segment behind,
	// with an object.
	crashed := fromRecord(recs[1]).RemoteSegment
	stale := crashed
	stale.UploadID, stale.LeaderEpoch, stale.State = "stale-upload-of-a-deposed-leader", 0, tier.CopyStarted
	if _, err := f.md.Start(ctx, stale); err != nil {
		t.Fatal(err)
	}
	tiertest.MustPut(t, store, tier.SegmentObjectKey(stale, tier.KindLog), []byte("partial"))
	started = append(started, stale.UploadID)
	// The next run cleans both up through DELETE_STARTED and DELETE_FINISHED, then uploads.
	var transitions []tier.SegmentState
	f.newLeader(false)
	h := &hookMeta{Metadata: f.md, onTransition: func(s tier.SegmentState) { transitions = append(transitions, s) }}
	up, err := tier.NewUploader(f.cfg, store, f.src, h, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	f.up = up
	n, err := up.UploadEligible(ctx, f.log.LogEndOffset())
	if err != nil || n != len(segs)-1 {
		t.Fatalf("recovery run = %d, %v; want %d", n, err, len(segs)-1)
	}
	want := []tier.SegmentState{tier.DeleteStarted, tier.DeleteFinished, tier.DeleteStarted, tier.DeleteFinished}
	if len(transitions) < 4 || !slices.Equal(transitions[:4], want) {
		t.Fatalf("transitions %v, want %v first", transitions, want)
	}
	f.check(segs)
	for _, k := range f.objects() {
		for _, id := range started[1:] { // started[0] is the first segment's good upload
			if strings.Contains(k, id) {
				t.Fatalf("object %s of an abandoned upload survived", k)
			}
		}
	}
	if got := len(f.lingering()); got != 3 {
		t.Fatalf("%d DELETE_FINISHED records, want the 3 abandoned uploads", got)
	}

	// An object of the crashed upload lands only now (its Put was still in flight when
	// the cleanup ran, e.g. a retried request). Within DeleteGrace nothing changes.
	late := tier.SegmentObjectKey(crashed, tier.KindTimeIndex)
	tiertest.MustPut(t, store, late, []byte("late"))
	if n, err := up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil || n != 0 {
		t.Fatalf("run within the grace = %d, %v", n, err)
	}
	if len(f.lingering()) != 3 || len(f.objectsOf(crashed.UploadID)) != 1 {
		t.Fatalf("within the grace: records %v, objects %v", f.lingering(), f.objectsOf(crashed.UploadID))
	}
	// Past it, the objects of every abandoned upload are deleted again and the records go.
	f.skew.Store(int64(f.cfg.DeleteGrace + time.Minute))
	if n, err := up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil || n != 0 {
		t.Fatalf("run after the grace = %d, %v", n, err)
	}
	if l := f.lingering(); len(l) != 0 {
		t.Fatalf("DELETE_FINISHED records after the grace: %v", l)
	}
	f.check(segs) // the late object is gone too: check lists every object
}

func testRetention(t *testing.T, ms *meta.Store, store tier.ObjectStore) {
	f := newUpFixture(t, ms, store, tier.CompressionNone)
	ctx := t.Context()
	old := f.nowMs - 10*24*3600*1000
	f.produce(15, old)
	f.produce(25, 0)
	segs := f.sealed(f.log.LogEndOffset())
	if _, err := f.up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	f.check(segs)

	// DeleteBefore: whole segments only, those entirely below the offset.
	cut := segs[1].NextOffset + 1 // inside the third segment
	n, err := f.up.DeleteBefore(ctx, cut)
	if err != nil || n != 2 {
		t.Fatalf("DeleteBefore(%d) = %d, %v; want 2", cut, n, err)
	}
	remaining := segs[2:]
	f.checkRemote(remaining)
	if f.up.RemoteLogStart() != segs[2].BaseOffset || f.up.RemoteEnd() != segs[len(segs)-1].NextOffset {
		t.Fatalf("RemoteLogStart %d RemoteEnd %d", f.up.RemoteLogStart(), f.up.RemoteEnd())
	}

	// retention.ms: segments whose newest record is older than 7 days.
	var oldSegs int
	for _, s := range remaining {
		if s.MaxTimestamp <= old {
			oldSegs++
		}
	}
	if oldSegs == 0 {
		t.Fatal("no old segment left to expire")
	}
	n, err = f.up.ApplyRemoteRetention(ctx, 7*24*3600*1000, -1, time.UnixMilli(f.nowMs))
	if err != nil || n != oldSegs {
		t.Fatalf("retention.ms = %d, %v; want %d", n, err, oldSegs)
	}
	remaining = remaining[oldSegs:]
	f.checkRemote(remaining)

	// retention.bytes: the log (remote + local not yet copied) shrinks to at most the limit,
	// deleting whole segments.
	var local int64
	for _, s := range f.log.Segments() {
		if s.NextOffset > f.up.RemoteEnd() || !s.Sealed {
			local += s.Size
		}
	}
	limit := local + remaining[len(remaining)-1].Size + remaining[len(remaining)-2].Size
	n, err = f.up.ApplyRemoteRetention(ctx, -1, limit, time.UnixMilli(f.nowMs))
	if err != nil || n != len(remaining)-2 {
		t.Fatalf("retention.bytes = %d, %v; want %d", n, err, len(remaining)-2)
	}
	remaining = remaining[len(remaining)-2:]
	f.checkRemote(remaining)
	if got := f.metric("sediment_tier_remote_delete_requests_total"); got != float64(len(segs)-2) {
		t.Fatalf("delete requests = %v, want %d", got, len(segs)-2)
	}
	var deleted int64
	for _, s := range segs[:len(segs)-2] {
		deleted += s.Size
	}
	if got := f.metric("sediment_tier_remote_delete_bytes_total"); got != float64(deleted) {
		t.Fatalf("delete bytes = %v, want %d", got, deleted)
	}
	// Nothing breaches any more; RemoteEnd did not move back; nothing is re-uploaded.
	if n, err := f.up.ApplyRemoteRetention(ctx, 7*24*3600*1000, limit, time.UnixMilli(f.nowMs)); err != nil || n != 0 {
		t.Fatalf("idle retention = %d, %v", n, err)
	}
	if n, err := f.up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil || n != 0 {
		t.Fatalf("upload after retention = %d, %v", n, err)
	}
	// Local files are never touched.
	for _, s := range segs {
		if _, err := os.Stat(s.LogPath); err != nil {
			t.Fatalf("local segment deleted: %v", err)
		}
	}
}

// checkRemote is check for a remote suffix of the uploaded segments (RemoteEnd unchanged).
func (f *upFixture) checkRemote(want []segment.SegmentInfo) {
	f.t.Helper()
	end := f.up.RemoteEnd()
	if len(want) > 0 && want[len(want)-1].NextOffset != end {
		f.t.Fatalf("RemoteEnd %d, last remaining segment ends at %d", end, want[len(want)-1].NextOffset)
	}
	f.check(want)
}

func testZstdFrames(t *testing.T, ms *meta.Store, store tier.ObjectStore) {
	f := newUpFixture(t, ms, store, tier.CompressionZstdFrames)
	ctx := t.Context()
	f.produce(500, 0)
	segs := f.sealed(f.log.LogEndOffset())
	if len(segs) < 2 {
		t.Fatalf("%d sealed segments", len(segs))
	}
	if _, err := f.up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	f.check(segs) // decompresses every .log through its frame index
	for _, r := range f.records() {
		if r.Compression != tier.CompressionZstdFrames {
			t.Fatalf("compression %q", r.Compression)
		}
		seg := fromRecord(r).RemoteSegment
		x, err := tier.ParseFrameIndex(f.read(tier.SegmentObjectKey(seg, tier.KindFrames)))
		if err != nil {
			t.Fatal(err)
		}
		if len(x.Frames) < 5 || x.UncompressedSize != r.Size || x.CompressedSize >= r.Size {
			t.Fatalf("segment %d: %d frames, %d → %d bytes", r.BaseOffset, len(x.Frames), x.UncompressedSize, x.CompressedSize)
		}
		// Frames end at batch boundaries: every frame starts with a batch header whose
		// base offset lies in the segment.
		local, _ := os.ReadFile(filepath.Join(filepath.Dir(segs[0].LogPath), fmt.Sprintf("%020d.log", r.BaseOffset)))
		for i, fr := range x.Frames {
			if fr.UncompressedLen < int64(f.cfg.FrameSize) && i != len(x.Frames)-1 {
				t.Fatalf("frame %d has %d bytes, below the frame size", i, fr.UncompressedLen)
			}
			off := int64(beUint64(local[fr.UncompressedOffset:]))
			if off < r.BaseOffset || off > r.EndOffset {
				t.Fatalf("frame %d does not start at a batch (offset field %d)", i, off)
			}
		}
		a, b := x.Find(5000, 9000)
		if a >= b || x.Frames[a].UncompressedOffset > 5000 || x.Frames[b-1].UncompressedOffset+x.Frames[b-1].UncompressedLen < 9000 {
			t.Fatalf("Find(5000, 9000) = [%d, %d)", a, b)
		}
	}
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

// noDeleteStore is a store whose Delete fails: a broker that crashes, or loses the store,
// right after its upload was fenced.
type noDeleteStore struct{ tier.ObjectStore }

func (noDeleteStore) Delete(context.Context, string) error { return errors.New("store unavailable") }

// testDeposedPutAfterCleanup: a deposed leader's Puts land after the new leader cleaned up
// its COPY_STARTED record, and its own deletion of them fails. The new leader keeps the
// record DELETE_FINISHED for DeleteGrace, then deletes the late objects and the record;
// the finished copies are never touched.
func testDeposedPutAfterCleanup(t *testing.T, ms *meta.Store, store tier.ObjectStore) {
	f := newUpFixture(t, ms, store, tier.CompressionNone)
	ctx := t.Context()
	f.produce(20, 0)
	segs := f.sealed(f.log.LogEndOffset())
	if n, err := f.up.UploadEligible(ctx, segs[1].NextOffset); err != nil || n != 2 {
		t.Fatalf("first upload = %d, %v", n, err)
	}

	// The old leader starts uploading the third segment; right after its COPY_STARTED, a
	// new leader takes over, cleans up and uploads the rest, all before the old leader's
	// Puts land.
	oldCfg := f.cfg
	var staleID string
	hooked := &hookMeta{Metadata: f.md}
	hooked.afterStart = func(st tier.StoredSegment) {
		staleID = st.UploadID
		f.newLeader(true)
		if n, err := f.up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil || n != len(segs)-2 {
			t.Errorf("new leader = %d, %v; want %d", n, err, len(segs)-2)
		}
		if r, ok := f.lingering()[staleID]; !ok || r.DeletedAtMs <= 0 {
			t.Errorf("record of the deposed upload after the cleanup: %+v, %v", r, ok)
		}
	}
	deposed, err := tier.NewUploader(oldCfg, noDeleteStore{store}, f.src, hooked, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	// Its COPY_FINISHED is refused (as a revision conflict: the new leader moved the
	// record, so it does not even try to delete its objects; had it been a fence error, its
	// deletion would fail).
	if n, err := deposed.UploadEligible(ctx, f.log.LogEndOffset()); err == nil || n != 0 {
		t.Fatalf("deposed upload = %d, %v; want an error", n, err)
	}
	if t.Failed() {
		t.FailNow()
	}
	orphans := f.objectsOf(staleID)
	if len(orphans) == 0 {
		t.Fatal("the deposed upload put nothing: the test does not test anything")
	}
	finished := map[string]int64{} // upload id → revision of every COPY_FINISHED record
	for _, r := range f.records() {
		if r.State == meta.RemoteCopyFinished {
			finished[r.UploadID] = r.Revision
		}
	}
	if len(finished) != len(segs) {
		t.Fatalf("%d finished copies, want %d", len(finished), len(segs))
	}

	// Within the grace: the record stays and no run removes it or re-uploads anything.
	f.skew.Store(int64(f.cfg.DeleteGrace - time.Minute))
	for range 2 {
		if n, err := f.up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil || n != 0 {
			t.Fatalf("run within the grace = %d, %v", n, err)
		}
	}
	if _, ok := f.lingering()[staleID]; !ok {
		t.Fatal("record removed within the grace")
	}
	if got := f.objectsOf(staleID); !slices.Equal(got, orphans) {
		t.Fatalf("objects of the deposed upload within the grace: %v, want %v", got, orphans)
	}
	// The lingering record is invisible: the manifest and RemoteEnd ignore it.
	m, err := tier.ReadManifest(ctx, store, tier.TopicIDText(f.topic.ID), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Segments {
		if s.UploadID == staleID {
			t.Fatalf("manifest lists the deleted upload: %+v", s)
		}
	}

	// Past the grace, a run deletes the late objects and then the record.
	f.skew.Store(int64(f.cfg.DeleteGrace + time.Minute))
	if n, err := f.up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil || n != 0 {
		t.Fatalf("run after the grace = %d, %v", n, err)
	}
	if got := f.objectsOf(staleID); len(got) != 0 {
		t.Fatalf("orphans of the deposed upload survived the grace: %v", got)
	}
	if l := f.lingering(); len(l) != 0 {
		t.Fatalf("DELETE_FINISHED records after the grace: %v", l)
	}
	f.check(segs)
	for _, r := range f.records() {
		if rev, ok := finished[r.UploadID]; !ok || rev != r.Revision || r.State != meta.RemoteCopyFinished {
			t.Fatalf("finished copy changed: %+v (revision before %d)", r, rev)
		}
	}
}

// testLegacyDeleteFinished: a DELETE_FINISHED record without deleted_at_ms (written before
// the field existed, by a broker that crashed before removing it) is purged at once.
func testLegacyDeleteFinished(t *testing.T, ms *meta.Store, store tier.ObjectStore) {
	f := newUpFixture(t, ms, store, tier.CompressionNone)
	ctx := t.Context()
	f.produce(10, 0)
	segs := f.sealed(f.log.LogEndOffset())
	seg := tier.RemoteSegment{V: 1, TopicID: f.topic.ID, Partition: 0, UploadID: "legacy-upload", BaseOffset: segs[0].BaseOffset,
		EndOffset: segs[0].NextOffset - 1, LeaderEpoch: f.epoch, Epochs: []tier.EpochEntry{}, MaxTimestamp: -1,
		Size: segs[0].Size, Compression: tier.CompressionNone, State: tier.CopyStarted}
	st, err := f.md.Start(ctx, seg)
	if err == nil {
		st, err = f.md.Transition(ctx, st, tier.DeleteStarted)
	}
	if err == nil {
		_, err = f.md.Transition(ctx, st, tier.DeleteFinished)
	}
	if err != nil {
		t.Fatal(err)
	}
	tiertest.MustPut(t, store, tier.SegmentObjectKey(seg, tier.KindLog), []byte("orphan"))
	if r := f.lingering()["legacy-upload"]; r.DeletedAtMs != 0 {
		t.Fatalf("legacy record %+v", r)
	}
	if n, err := f.up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil || n != len(segs) {
		t.Fatalf("UploadEligible = %d, %v; want %d", n, err, len(segs))
	}
	if len(f.lingering()) != 0 || len(f.objectsOf("legacy-upload")) != 0 {
		t.Fatalf("legacy record %v, objects %v", f.lingering(), f.objectsOf("legacy-upload"))
	}
	f.check(segs)
}

// slowStore is a store whose Put of an .index object ignores its context and returns
// only after the context's deadline, successfully; it records the Puts that start after
// their context's deadline.
type slowStore struct {
	tier.ObjectStore
	mu   sync.Mutex
	late []string
}

func (s *slowStore) Put(ctx context.Context, key string, r io.ReaderAt, size int64) error {
	d, ok := ctx.Deadline()
	if ok && time.Now().After(d) {
		s.mu.Lock()
		s.late = append(s.late, key)
		s.mu.Unlock()
	}
	if ok && strings.HasSuffix(key, "."+tier.KindIndex) {
		time.Sleep(time.Until(d) + 50*time.Millisecond)
		ctx = context.WithoutCancel(ctx)
	}
	return s.ObjectStore.Put(ctx, key, r, size)
}

// testUploadTimeout: an upload's Puts end by UploadTimeout after its COPY_STARTED (so that
// DeleteGrace, which exceeds it, covers every Put of a deposed uploader), and the next run
// cleans it up.
func testUploadTimeout(t *testing.T, ms *meta.Store, store tier.ObjectStore) {
	f := newUpFixture(t, ms, store, tier.CompressionNone)
	ctx := t.Context()
	f.produce(10, 0)
	segs := f.sealed(f.log.LogEndOffset())
	cfg := f.cfg
	cfg.UploadTimeout, cfg.DeleteGrace = 300*time.Millisecond, time.Second
	slow := &slowStore{ObjectStore: store}
	up, err := tier.NewUploader(cfg, slow, f.src, f.md, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := up.UploadEligible(ctx, f.log.LogEndOffset()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow upload: %v, want a deadline error", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("slow upload took %v", took)
	}
	if len(slow.late) != 0 {
		t.Fatalf("Puts after the deadline: %v", slow.late)
	}
	// The normal uploader cleans up and uploads everything.
	if n, err := f.up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil || n != len(segs) {
		t.Fatalf("UploadEligible = %d, %v; want %d", n, err, len(segs))
	}
	if len(f.lingering()) != 1 {
		t.Fatalf("DELETE_FINISHED records %v, want the timed-out upload", f.lingering())
	}
	f.check(segs)
}

// testAutoCompression: in auto mode, segments of uncompressed batches become zstd frames,
// segments of zstd-compressed batches are uploaded as they are, the manifest records each
// choice, and tier.Reader reads both back byte for byte.
func testAutoCompression(t *testing.T, ms *meta.Store, store tier.ObjectStore) {
	f := newUpFixture(t, ms, store, tier.CompressionAuto)
	ctx := t.Context()
	f.produce(300, 0) // uncompressed, compressible
	if err := f.log.Roll(); err != nil {
		t.Fatal(err)
	}
	mid := f.log.LogEndOffset()
	rng := mrand.New(mrand.NewPCG(3, 4))
	for i := range 200 {
		vals := make([]string, 8)
		for j := range vals {
			v := make([]byte, 100)
			for k := range v {
				v[k] = byte(rng.Uint32())
			}
			vals[j] = fmt.Sprintf("%d/%d:%x", i, j, v)
		}
		b := segmenttest.Batch{FirstTimestamp: f.nowMs, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Compression: segment.CompressionZstd, Records: segmenttest.Values(vals...)}.Encode()
		if _, err := f.log.AppendLeader(b, f.epoch); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.log.Roll(); err != nil {
		t.Fatal(err)
	}
	segs := f.sealed(f.log.LogEndOffset())
	if n, err := f.up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil || n != len(segs) {
		t.Fatalf("UploadEligible = %d, %v; want %d", n, err, len(segs))
	}
	f.check(segs) // compares every object, decompressing frames, and the manifest's compression
	m, err := tier.ReadManifest(ctx, store, tier.TopicIDText(f.topic.ID), 0)
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := newReader(t, store, nil)
	var plain, packed int
	for i, rec := range f.records() {
		s := segs[i]
		want := tier.CompressionZstdFrames
		if s.BaseOffset >= mid {
			want = tier.CompressionNone
			packed++
		} else {
			plain++
		}
		if rec.Compression != want || m.Segments[i].Compression != want {
			t.Fatalf("segment %d [%d, %d): compression %q (manifest %q), want %q", i, s.BaseOffset, s.NextOffset,
				rec.Compression, m.Segments[i].Compression, want)
		}
		seg := fromRecord(rec).RemoteSegment
		local, err := os.ReadFile(s.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Read(ctx, seg, seg.BaseOffset, int(seg.Size), true)
		if err != nil || !bytes.Equal(got, local[:s.Size]) {
			t.Fatalf("segment %d read back: %d bytes (%v), local %d", s.BaseOffset, len(got), err, s.Size)
		}
		for off := seg.BaseOffset; off <= seg.EndOffset; off += 7 {
			sl, err := f.log.Read(off, 3000, s.NextOffset, true)
			if err != nil {
				t.Fatal(err)
			}
			want, err := sl.ReadAll()
			sl.Release()
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Read(ctx, seg, off, 3000, true)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("segment %d, offset %d: %d bytes (%v), local log %d", s.BaseOffset, off, len(got), err, len(want))
			}
		}
	}
	if plain == 0 || packed == 0 {
		t.Fatalf("%d segments of uncompressed batches, %d of compressed ones: want both", plain, packed)
	}
}

// testTxnIndex: a segment holding an ABORT marker is uploaded with its .txnindex (and the
// record and manifest say so), segments without one are uploaded without; a reader gets
// the aborted transaction back from the copy; remote retention deletes the object with
// its segment.
func testTxnIndex(t *testing.T, ms *meta.Store, store tier.ObjectStore) {
	f := newUpFixture(t, ms, store, tier.CompressionNone)
	ctx := t.Context()
	appendB := func(b []byte) segment.AppendResult {
		t.Helper()
		res, err := f.log.AppendLeader(b, f.epoch)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	marker := func(pid int64, commit bool) segment.AppendResult {
		t.Helper()
		res, err := f.log.AppendMarker(pid, 0, commit, 0, f.epoch)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	f.produce(8, 0)
	pad := strings.Repeat("t", 150)
	// Producer 7's transaction spans segments and is aborted; producer 8's is committed.
	first := appendB(segmenttest.Transactional(7, 0, 0, "a"+pad, "b"+pad)).FirstOffset
	appendB(segmenttest.Transactional(8, 0, 0, "c"+pad))
	f.produce(6, 0)
	appendB(segmenttest.Transactional(7, 0, 2, "d"+pad))
	marker(8, true)
	abort := marker(7, false).LastOffset
	f.produce(10, 0)
	segs := f.sealed(f.log.LogEndOffset())
	var with, without int
	for _, s := range segs {
		if s.HasTxnIndex {
			with++
		} else {
			without++
		}
	}
	if with != 1 || without == 0 {
		t.Fatalf("%d sealed segments with a .txnindex, %d without; want 1 and some", with, without)
	}
	if _, err := f.up.UploadEligible(ctx, f.log.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	f.check(segs) // the txnindex object exactly for the one segment

	m, err := tier.ReadManifest(ctx, f.store, tier.TopicIDText(f.topic.ID), 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tier.NewReader(f.store, tier.ReaderConfig{CacheDir: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []segment.AbortedTxn
	for _, seg := range m.Segments {
		if seg.EndOffset < first {
			continue
		}
		a, complete, err := r.AbortedTransactions(ctx, seg, first, first+1)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a...)
		if complete {
			if seg.BaseOffset > abort || seg.EndOffset < abort {
				t.Fatalf("search complete at segment [%d, %d], the marker is at %d", seg.BaseOffset, seg.EndOffset, abort)
			}
			break
		}
	}
	if want := []segment.AbortedTxn{{ProducerID: 7, FirstOffset: first}}; !slices.Equal(got, want) {
		t.Fatalf("aborted transactions from the tier: %+v, want %+v", got, want)
	}

	// Remote retention deletes every object of the segments, the txnindex too.
	if n, err := f.up.ApplyRemoteRetention(ctx, -1, 0, time.UnixMilli(f.nowMs)); err != nil || n != len(segs) {
		t.Fatalf("retention = %d, %v; want %d", n, err, len(segs))
	}
	if objs := f.objects(); len(objs) != 1 || objs[0] != tier.ManifestKey(tier.TopicIDText(f.topic.ID), 0) || len(f.records()) != 0 {
		t.Fatalf("after retention: objects %v, records %+v", objs, f.records())
	}
}
