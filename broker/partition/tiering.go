package partition

// Tiering (KIP-405 in spirit): with an object store configured, the leader of
// every partition uploads its sealed segments below the high watermark
// (tier.Uploader), recording them in etcd and in the bucket's manifest. The
// uploader runs under its term's context, and every metadata write is fenced
// by the leadership term as etcd records it. Local retention of a tiered
// topic only deletes segments whose copy finished (upkeep.go); reads below
// the local log start go to the tier (tier_read.go).

import (
	"context"
	"errors"
	"time"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/tier"
)

func (m *Manager) runUploader(ctx context.Context, p *Partition, epoch int32) {
	md := &tierMeta{m: m, p: p, epoch: epoch}
	cfg := m.cfg.TierUpload
	cfg.TopicID, cfg.Topic, cfg.Partition, cfg.LeaderEpoch = p.id, p.topic, p.index, epoch
	up, err := tier.NewUploader(cfg, m.tierStore, logSource{p.log}, md, m.tierMetrics, m.log.With("partition", p.String()))
	if err != nil {
		m.log.Error("tiering disabled for partition", "partition", p.String(), "err", err)
		return
	}
	defer up.Close()
	tick := time.NewTicker(m.cfg.TierUploadInterval)
	defer tick.Stop()
	backoff := m.cfg.TierUploadInterval
	var lastRetention time.Time
	// First what the tier holds (reads below the local log start wait for
	// it), then uploads. The uploaded end is raised only from the records
	// read back, so local retention never deletes a segment whose copy the
	// reads cannot find yet.
	_ = m.refreshRemoteBounds(ctx, p)
	for {
		// Below the last stable offset: an upload never holds a
		// transaction still undecided (KIP-405 with KIP-98).
		n, err := up.UploadEligible(ctx, p.LastStable())
		if n > 0 || !p.remoteLoaded.Load() || p.remoteEnd.Load() < up.RemoteEnd() {
			if rerr := m.refreshRemoteBounds(ctx, p); rerr != nil && ctx.Err() == nil {
				m.log.Warn("reading remote segment metadata failed", "partition", p.String(), "err", rerr)
			}
		}
		if err == nil && time.Since(lastRetention) >= m.cfg.RetentionCheckInterval {
			lastRetention = time.Now()
			m.remoteRetention(ctx, p, up)
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, tier.ErrFenced):
			// The term in etcd moved on; the role change that follows
			// cancels this uploader (or a stale cache catches up).
			m.log.Debug("upload fenced", "partition", p.String(), "err", err)
		case err != nil:
			m.setStalled(p, true)
			m.log.Warn("uploading segments failed; retrying", "partition", p.String(), "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		default:
			m.setStalled(p, false)
			backoff = m.cfg.TierUploadInterval
			if n > 0 {
				m.log.Info("uploaded segments", "partition", p.String(), "segments", n, "remote_end", up.RemoteEnd())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// remoteRetention deletes remote segments past retention.*. Only the leader
// deletes them, and only once its uploader has read every finished copy (a
// new leader must not delete data still in retention).
func (m *Manager) remoteRetention(ctx context.Context, p *Partition, up *tier.Uploader) {
	t, ok := m.cache.TopicConfigsByID(p.id)
	if !ok {
		return
	}
	s, err := m.settings(t)
	if err != nil {
		return
	}
	d, err := up.ApplyRemoteRetention(ctx, durMs(s.Log.RetentionMs), s.Log.RetentionBytes, time.Now())
	switch {
	case err != nil && ctx.Err() == nil:
		m.log.Warn("remote retention failed", "partition", p.String(), "err", err)
	case d > 0:
		m.log.Info("remote retention deleted segments", "partition", p.String(), "segments", d)
		_ = m.refreshRemoteBounds(ctx, p)
	}
}

func durMs(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return d.Milliseconds()
}

// refreshRemoteBounds reads the partition's finished copies from etcd.
func (m *Manager) refreshRemoteBounds(ctx context.Context, p *Partition) error {
	p.remoteMu.Lock()
	defer p.remoteMu.Unlock()
	recs, err := m.store.RemoteSegments(ctx, p.id, p.index)
	if err != nil {
		return err
	}
	defer p.remoteLoaded.Store(true)
	start, end := int64(-1), int64(-1)
	var segs []tier.RemoteSegment
	for _, r := range recs {
		if r.State != string(tier.CopyFinished) {
			continue
		}
		if start < 0 || r.BaseOffset < start {
			start = r.BaseOffset
		}
		end = max(end, r.EndOffset+1)
		segs = append(segs, fromRecord(r).RemoteSegment)
	}
	// The copies first: a read that sees the new start finds them.
	p.remoteSegs.Store(&segs)
	p.remoteStart.Store(start)
	// The uploaded end never moves back: remote retention removing copies
	// does not make their local segments un-uploaded.
	p.raiseRemoteEnd(end)
	return nil
}

// forgetRemote drops the finished copy uploadID from what reads see (remote
// retention is about to delete it), raising the remote start first: a read
// that sees the old start still finds the copy.
func (p *Partition) forgetRemote(uploadID string) {
	p.remoteMu.Lock()
	defer p.remoteMu.Unlock()
	cur := p.remoteSegs.Load()
	if cur == nil {
		return
	}
	start := int64(-1)
	segs := make([]tier.RemoteSegment, 0, len(*cur))
	for _, s := range *cur {
		if s.UploadID == uploadID {
			continue
		}
		segs = append(segs, s)
		if start < 0 || s.BaseOffset < start {
			start = s.BaseOffset
		}
	}
	if len(segs) == len(*cur) {
		return
	}
	p.remoteStart.Store(start)
	p.remoteSegs.Store(&segs)
}

// ensureRemote reads the tier's state of p from etcd unless it was read in
// p's current role: a new leader must not answer ListOffsets or fetches below
// its local log start before it knows what the tier holds.
func (p *Partition) ensureRemote(ctx context.Context) error {
	if p.m.tierStore == nil || p.remoteLoaded.Load() {
		return nil
	}
	return p.m.refreshRemoteBounds(ctx, p)
}

// raiseRemoteEnd moves the uploaded end forward, never back.
func (p *Partition) raiseRemoteEnd(end int64) {
	for {
		cur := p.remoteEnd.Load()
		if end <= cur || p.remoteEnd.CompareAndSwap(cur, end) {
			return
		}
	}
}

// logSource adapts a local log to tier.SegmentSource.
type logSource struct{ l *segment.Log }

func (s logSource) Segments() []segment.SegmentInfo { return s.l.Segments() }

func (s logSource) EpochsFor(base, next int64) []tier.EpochEntry {
	all := s.l.LeaderEpochs()
	var out []tier.EpochEntry
	for i, e := range all {
		if e.StartOffset < next && (i+1 == len(all) || all[i+1].StartOffset > base) {
			out = append(out, tier.EpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset})
		}
	}
	return out
}

// tierMeta adapts meta.Store to tier.Metadata for one partition and one
// leadership term. Writes are fenced on the partition key as this broker
// last saw it, and only while that state names this broker as leader in the
// uploader's epoch: the leader's own ISR changes do not fence it, a new term
// does.
type tierMeta struct {
	m     *Manager
	p     *Partition
	epoch int32
}

func (t *tierMeta) fence() (meta.Fence, error) {
	st, ok := t.m.cache.Partition(t.p.id, t.p.index)
	if !ok || st.Leader != t.m.cfg.NodeID || st.LeaderEpoch != t.epoch {
		return meta.Fence{}, tier.ErrFenced
	}
	return t.m.store.PartitionUnchanged(t.p.id, t.p.index, st.Revision), nil
}

// fenced marks a refused metadata write as fenced: a broken fence, or a
// record changed under us (only a newer leader's cleanup changes a record
// this uploader wrote), means this uploader's term is over.
func fenced(err error) error {
	if errors.Is(err, meta.ErrFenced) || errors.Is(err, meta.ErrConflict) {
		return errors.Join(tier.ErrFenced, err)
	}
	return err
}

func (t *tierMeta) List(ctx context.Context) ([]tier.StoredSegment, error) {
	recs, err := t.m.store.RemoteSegments(ctx, t.p.id, t.p.index)
	if err != nil {
		return nil, err
	}
	out := make([]tier.StoredSegment, len(recs))
	for i, r := range recs {
		out[i] = fromRecord(r)
	}
	return out, nil
}

func (t *tierMeta) Start(ctx context.Context, seg tier.RemoteSegment) (tier.StoredSegment, error) {
	f, err := t.fence()
	if err != nil {
		return tier.StoredSegment{}, err
	}
	rev, err := t.m.store.PutRemoteSegment(ctx, toRecord(seg, 0), f)
	if err != nil {
		return tier.StoredSegment{}, fenced(err)
	}
	return tier.StoredSegment{RemoteSegment: seg, Revision: rev}, nil
}

func (t *tierMeta) Transition(ctx context.Context, st tier.StoredSegment, state tier.SegmentState) (tier.StoredSegment, error) {
	f, err := t.fence()
	if err != nil {
		return tier.StoredSegment{}, err
	}
	st.State = state
	rev, err := t.m.store.PutRemoteSegment(ctx, toRecord(st.RemoteSegment, st.Revision), f)
	if err != nil {
		return tier.StoredSegment{}, fenced(err)
	}
	st.Revision = rev
	if state == tier.DeleteStarted {
		// Reads leave the copy before its objects go, as Kafka moves the
		// log start offset before deleting remote segments.
		t.p.forgetRemote(st.UploadID)
	}
	return st, nil
}

func (t *tierMeta) Remove(ctx context.Context, st tier.StoredSegment) error {
	f, err := t.fence()
	if err != nil {
		return err
	}
	return fenced(t.m.store.DeleteRemoteSegment(ctx, toRecord(st.RemoteSegment, st.Revision), f))
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
