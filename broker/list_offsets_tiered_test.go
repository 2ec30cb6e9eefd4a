package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/tier/file"
)

// TestListOffsetsLocalAndTiered: ListOffsets' KIP-405 and KIP-1005
// timestamps over the wire (what `sediment offsets` shows). A tiered
// partition whose history left the local disk answers -2 with 0, -4 with the
// active segment's base and -5 with the last offset of the last uploaded
// segment; before anything is uploaded -5 is -1. A partition that is not
// tiered answers -4 with its log start (moved by DeleteRecords) and -5 with
// -1. The broker advertises ListOffsets v9, the version that carries -5.
func TestListOffsetsLocalAndTiered(t *testing.T) {
	store, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, t.TempDir(), 1, nil, func(c *Config) {
		c.TierUploadInterval = 100 * time.Millisecond
		c.RetentionCheckInterval = 200 * time.Millisecond
	}, func(d *Deps) { d.Tier = store })
	ctx := ctxT(t, 60*time.Second)
	cl := b.client(kgo.ProducerBatchMaxBytes(2048))
	adm := kadm.NewClient(cl)

	versions, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range versions.ApiKeys {
		if k.ApiKey == 2 && k.MaxVersion < 9 {
			t.Fatalf("ListOffsets advertised up to v%d; -5 (LATEST_TIERED) needs v9", k.MaxVersion)
		}
	}

	// offsets lists partition 0 of topic at the four special timestamps.
	offsets := func(topic string) (start, localStart, tiered, hw int64) {
		t.Helper()
		one := func(lo kadm.ListedOffsets, err error) int64 {
			t.Helper()
			if err == nil {
				err = lo.Error()
			}
			if err != nil {
				t.Fatalf("%s: %v", topic, err)
			}
			o, ok := lo.Lookup(topic, 0)
			if !ok {
				t.Fatalf("%s[0] missing from %v", topic, lo)
			}
			return o.Offset
		}
		return one(adm.ListStartOffsets(ctx, topic)), one(adm.ListLocalLogStartOffsets(ctx, topic)),
			one(adm.ListLatestRemoteOffsets(ctx, topic)), one(adm.ListEndOffsets(ctx, topic))
	}

	segBytes, off := "4096", "false"
	b.createTopic("tiered", 1, map[string]*string{"segment.bytes": &segBytes})
	b.createTopic("local", 1, map[string]*string{"segment.bytes": &segBytes, "remote.storage.enable": &off})
	if s, ls, tr, hw := offsets("tiered"); s != 0 || ls != 0 || tr != -1 || hw != 0 {
		t.Fatalf("empty tiered topic: start %d, local start %d, last tiered %d, high watermark %d; want 0, 0, -1, 0", s, ls, tr, hw)
	}
	for _, topic := range []string{"tiered", "local"} {
		for range 300 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(strings.Repeat("x", 100))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The tiered topic: once every sealed segment is uploaded and
	// local.retention.bytes=0 has dropped them, the local log starts at the
	// active segment and the tier ends just below it.
	p := b.srv.parts.Get("tiered", 0)
	segs := p.Log().Segments()
	activeBase := segs[len(segs)-1].BaseOffset
	if activeBase == 0 {
		t.Fatal("no segment rolled: the test needs sealed segments")
	}
	waitFor(t, "the sealed segments to be uploaded", 20*time.Second, func() bool {
		_, _, tr, _ := offsets("tiered")
		return tr == activeBase-1
	})
	zero := "0"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "local.retention.bytes", Value: &zero}}, "tiered"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "local segments below the tier's end to go", 10*time.Second, func() bool {
		return p.Log().LogStartOffset() == activeBase
	})
	recs := finishedRecords(t, b, p)
	if s, ls, tr, hw := offsets("tiered"); s != 0 || ls != activeBase || tr != recs[len(recs)-1].EndOffset || tr != activeBase-1 || hw != 300 {
		t.Fatalf("tiered topic: start %d, local start %d, last tiered %d, high watermark %d; want 0, %d, %d, 300",
			s, ls, tr, hw, activeBase, activeBase-1)
	}

	// The local topic: DeleteRecords moves both starts; nothing is tiered.
	if _, err := adm.DeleteRecords(ctx, kadm.Offsets{"local": {0: {Topic: "local", Partition: 0, At: 120, LeaderEpoch: -1}}}); err != nil {
		t.Fatal(err)
	}
	if s, ls, tr, hw := offsets("local"); s != 120 || ls != 120 || tr != -1 || hw != 300 {
		t.Fatalf("local topic: start %d, local start %d, last tiered %d, high watermark %d; want 120, 120, -1, 300", s, ls, tr, hw)
	}
}
