package broker

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/file"
)

// TestLeaderUploadsSealedSegments: with a tier configured, the leader
// uploads every sealed segment below the high watermark (never the active
// one), records it COPY_FINISHED in etcd and lists it in the manifest; local
// retention then drops the uploaded segments and a consumer reads the
// history back from the tier. With and without zstd frames.
func TestLeaderUploadsSealedSegments(t *testing.T) {
	for _, compression := range []string{tier.CompressionNone, tier.CompressionZstdFrames} {
		t.Run(compression, func(t *testing.T) { testLeaderUploads(t, compression) })
	}
}

func testLeaderUploads(t *testing.T, compression string) {
	store, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, t.TempDir(), 1, nil, func(c *Config) {
		c.TierUploadInterval = 100 * time.Millisecond
		c.RetentionCheckInterval = 200 * time.Millisecond
		c.TierUpload.Compression = compression
	}, func(d *Deps) { d.Tier = store })
	segBytes := "4096"
	b.createTopic("tiered", 1, map[string]*string{"segment.bytes": &segBytes})
	cl := b.client(kgo.DefaultProduceTopic("tiered"), kgo.ProducerBatchMaxBytes(2048))
	ctx := ctxT(t, 60*time.Second)
	for i := 0; i < 300; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("x", 100))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p := b.srv.parts.Get("tiered", 0)
	var sealed int
	for _, s := range p.Log().Segments() {
		if s.Sealed {
			sealed++
		}
	}
	if sealed < 3 {
		t.Fatalf("only %d sealed segments: the test needs rolls", sealed)
	}
	waitFor(t, "uploads", 20*time.Second, func() bool {
		recs, err := b.srv.store.RemoteSegments(ctx, p.TopicID(), 0)
		if err != nil {
			return false
		}
		finished := 0
		for _, r := range recs {
			if r.State == string(tier.CopyFinished) {
				finished++
			}
		}
		if finished != sealed {
			return false
		}
		// The manifest is rewritten after the records reach COPY_FINISHED.
		m, err := tier.ReadManifest(ctx, store, tier.TopicIDText(p.TopicID()), 0)
		return err == nil && len(m.Segments) == sealed
	})
	recs := finishedRecords(t, b, p)
	end := int64(-1)
	for _, r := range recs {
		if r.BaseOffset != end+1 {
			t.Fatalf("remote segments not contiguous: %d after end %d", r.BaseOffset, end)
		}
		end = r.EndOffset
	}
	if active := p.Log().Segments()[len(p.Log().Segments())-1]; end+1 != active.BaseOffset {
		t.Fatalf("remote end %d; the active segment starts at %d", end, active.BaseOffset)
	}
	m, err := tier.ReadManifest(context.Background(), store, tier.TopicIDText(p.TopicID()), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Segments) != sealed {
		t.Fatalf("manifest lists %d segments, want %d", len(m.Segments), sealed)
	}
	for _, s := range m.Segments {
		if s.Compression != compression {
			t.Fatalf("manifest records compression %q, want %q", s.Compression, compression)
		}
	}
	var objects int
	store.List(ctx, "", func(string, int64) error { objects++; return nil })
	if objects < 3*sealed {
		t.Fatalf("%d objects for %d segments", objects, sealed)
	}

	// local.retention.bytes=0: uploaded segments leave the local disk at the
	// next retention check; the active segment stays.
	zero := "0"
	if _, err := b.admin().AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "local.retention.bytes", Value: &zero}}, "tiered"); err != nil {
		t.Fatal(err)
	}
	activeBase := p.Log().Segments()[len(p.Log().Segments())-1].BaseOffset
	waitFor(t, "local segments below the uploaded end to go", 10*time.Second, func() bool {
		return p.Log().LogStartOffset() == activeBase && len(p.Log().Segments()) == 1
	})
	if recs := finishedRecords(t, b, p); len(recs) != sealed {
		t.Fatalf("local retention touched the tier: %d remote segments, want %d", len(recs), sealed)
	}

	// A consumer from offset 0 reads the history from the tier and the tail
	// locally, the same records it would have read from local disk.
	so, err := b.admin().ListStartOffsets(ctx, "tiered")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := so.Lookup("tiered", 0); o.Offset != 0 {
		t.Fatalf("earliest offset %d with the history in the tier, want 0", o.Offset)
	}
	c := b.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"tiered": {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxPartitionBytes(3000))
	want := strings.Repeat("x", 100)
	for next := int64(0); next < 300; {
		fs := c.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next || string(r.Value) != want {
				t.Fatalf("offset %d (want %d): %q", r.Offset, next, r.Value)
			}
			next++
		})
	}
}

// finishedRecords lists p's COPY_FINISHED records (a cleaned-up upload's
// DELETE_FINISHED record may wait out its grace period beside them).
func finishedRecords(t *testing.T, b *testBroker, p *partition.Partition) []meta.RemoteSegmentRecord {
	t.Helper()
	recs, err := b.srv.store.RemoteSegments(context.Background(), p.TopicID(), p.Index())
	if err != nil {
		t.Fatal(err)
	}
	var out []meta.RemoteSegmentRecord
	for _, r := range recs {
		if r.State == string(tier.CopyFinished) {
			out = append(out, r)
		}
	}
	return out
}

// flakyStore fails every Put while down is set.
type flakyStore struct {
	tier.ObjectStore
	down atomic.Bool
}

func (f *flakyStore) Put(ctx context.Context, key string, r io.ReaderAt, size int64) error {
	if f.down.Load() {
		return errors.New("object store unavailable (test)")
	}
	return f.ObjectStore.Put(ctx, key, r, size)
}

// TestTieringStallsAndDrains: with the object store down, produce goes on,
// the broker reports tiering stalled, and once the store is back the backlog
// of sealed segments is uploaded.
func TestTieringStallsAndDrains(t *testing.T) {
	fs, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &flakyStore{ObjectStore: fs}
	store.down.Store(true)
	b := startNode(t, t.TempDir(), 1, nil, func(c *Config) {
		c.TierUploadInterval = 50 * time.Millisecond
	}, func(d *Deps) { d.Tier = store })
	segBytes := "4096"
	b.createTopic("stall", 1, map[string]*string{"segment.bytes": &segBytes})
	cl := b.client(kgo.DefaultProduceTopic("stall"), kgo.ProducerBatchMaxBytes(2048))
	ctx := ctxT(t, 60*time.Second)
	for i := 0; i < 200; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("y", 100))}).FirstErr(); err != nil {
			t.Fatalf("produce with the object store down: %v", err)
		}
	}
	waitFor(t, "tiering reported stalled", 10*time.Second, b.srv.TieringStalled)
	p := b.srv.parts.Get("stall", 0)
	if recs, _ := b.srv.store.RemoteSegments(ctx, p.TopicID(), 0); len(recs) > 0 && recs[0].State == string(tier.CopyFinished) {
		t.Fatal("a segment was marked uploaded while the store was down")
	}
	store.down.Store(false)
	waitFor(t, "backlog drained", 30*time.Second, func() bool {
		if b.srv.TieringStalled() {
			return false
		}
		recs, err := b.srv.store.RemoteSegments(ctx, p.TopicID(), 0)
		if err != nil || len(recs) == 0 {
			return false
		}
		sealed := 0
		for _, s := range p.Log().Segments() {
			if s.Sealed {
				sealed++
			}
		}
		finished := 0
		for _, r := range recs {
			if r.State == string(tier.CopyFinished) {
				finished++
			}
		}
		return finished == sealed
	})
}

// TestRemoteRetention: segments past retention.ms leave the tier (objects and
// metadata) once uploaded, as well as local disk; the active segment stays.
func TestRemoteRetention(t *testing.T) {
	store, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, t.TempDir(), 1, nil, func(c *Config) {
		c.TierUploadInterval = 100 * time.Millisecond
		c.RetentionCheckInterval = 200 * time.Millisecond
	}, func(d *Deps) { d.Tier = store })
	segBytes, retention := "4096", "1800000" // 30 minutes
	b.createTopic("expiring", 1, map[string]*string{"segment.bytes": &segBytes, "retention.ms": &retention})
	cl := b.client(kgo.DefaultProduceTopic("expiring"), kgo.ProducerBatchMaxBytes(2048))
	ctx := ctxT(t, 60*time.Second)
	old := time.Now().Add(-time.Hour)
	for i := 0; i < 200; i++ {
		r := &kgo.Record{Value: []byte(strings.Repeat("z", 100)), Timestamp: old}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p := b.srv.parts.Get("expiring", 0)
	waitFor(t, "expired segments to leave the tier and the disk", 20*time.Second, func() bool {
		recs, err := b.srv.store.RemoteSegments(ctx, p.TopicID(), 0)
		return err == nil && len(recs) == 0 && len(p.Log().Segments()) == 1 && p.RemoteEnd() > 0
	})
	var objects []string
	store.List(ctx, "", func(k string, _ int64) error {
		if !strings.HasPrefix(k, "manifests/") {
			objects = append(objects, k)
		}
		return nil
	})
	if len(objects) != 0 {
		t.Fatalf("segment objects left after remote retention: %v", objects)
	}
	so, err := b.admin().ListStartOffsets(ctx, "expiring")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := so.Lookup("expiring", 0); o.Offset != p.Log().LogStartOffset() || o.Offset == 0 {
		t.Fatalf("earliest offset %d after retention; local log start %d", o.Offset, p.Log().LogStartOffset())
	}
}

// A topic with remote.storage.enable=false uploads nothing; switching it on
// starts its leader's uploader within the same term.
func TestTieringFollowsTopicConfig(t *testing.T) {
	store, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, t.TempDir(), 1, nil, func(c *Config) {
		c.TierUploadInterval = 100 * time.Millisecond
	}, func(d *Deps) { d.Tier = store })
	segBytes, off := "4096", "false"
	b.createTopic("local", 1, map[string]*string{"segment.bytes": &segBytes, "remote.storage.enable": &off})
	cl := b.client(kgo.DefaultProduceTopic("local"), kgo.ProducerBatchMaxBytes(2048))
	ctx := ctxT(t, 60*time.Second)
	for range 200 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("x", 100))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p := b.srv.parts.Get("local", 0)
	time.Sleep(time.Second) // ten upload intervals: long enough for an uploader to have uploaded
	if recs := finishedRecords(t, b, p); len(recs) != 0 {
		t.Fatalf("%d segments of a topic with remote.storage.enable=false were uploaded", len(recs))
	}
	on := "true"
	if _, err := b.admin().AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "remote.storage.enable", Value: &on}}, "local"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "uploads once remote.storage.enable=true", 30*time.Second, func() bool { return len(finishedRecords(t, b, p)) > 0 })
}

// TestUploadsStageUnderDataDir: the compressed copies of segments being
// uploaded are staged below the data directory, so tiering works where
// os.TempDir() does not exist (a FROM scratch container has no /tmp).
func TestUploadsStageUnderDataDir(t *testing.T) {
	dataDir, tierDir := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	fs, err := file.New(tierDir)
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, dataDir, 1, nil, func(c *Config) {
		c.TierUploadInterval = 100 * time.Millisecond
		c.RetentionCheckInterval = 200 * time.Millisecond
		c.TierUpload.Compression = tier.CompressionZstdFrames // staged compressed
	}, func(d *Deps) { d.Tier = fs })
	segBytes, zero := "2048", "0"
	b.createTopic("staged", 1, map[string]*string{"segment.bytes": &segBytes, "local.retention.bytes": &zero})
	produceN(t, b, "staged", 1, 60, nil)
	waitTiered(t, b, "staged", 1)
	if _, err := os.Stat(filepath.Join(dataDir, "tier-upload")); err != nil {
		t.Fatalf("no staging directory below the data directory: %v", err)
	}
}
