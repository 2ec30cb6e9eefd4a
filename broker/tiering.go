package broker

// Tiering (KIP-405 in spirit): with an object store configured (--tier), the
// leader of every partition uploads its sealed segments below the high
// watermark (tier.Uploader), recording them in etcd and in the bucket's
// manifest. The uploader of a partition runs under a context cancelled when
// this broker stops leading it, and every metadata write is fenced by the
// leadership term as etcd records it. Local retention of a tiered topic only
// deletes segments whose copy finished (partitions.go); fetches below the
// local log start read the tier through tier.Reader (01_fetch.go).

import (
	"context"
	"errors"
	"time"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/tier"
)

// startUploader runs p's uploader while this broker leads it in epoch.
func (pm *partitionManager) startUploader(p *partition, epoch int32) {
	s := pm.s
	if s.tierStore == nil {
		return
	}
	pm.stopUploader(p)
	p.remoteLoaded.Store(false) // a new term reads the tier's state afresh
	ctx, cancel := context.WithCancel(pm.flushCx)
	done := make(chan struct{})
	p.uploadStop = func() { cancel(); <-done }
	pm.wg.Add(1)
	go func() {
		defer pm.wg.Done()
		defer close(done)
		s.runUploader(ctx, p, epoch)
	}()
}

func (pm *partitionManager) stopUploader(p *partition) {
	if p.uploadStop != nil {
		p.uploadStop()
		p.uploadStop = nil
		pm.s.setStalled(p, false)
	}
}

func (s *Server) runUploader(ctx context.Context, p *partition, epoch int32) {
	md := &tierMeta{s: s, id: p.id, p: p.index, epoch: epoch}
	cfg := s.cfg.TierUpload
	cfg.TopicID, cfg.Topic, cfg.Partition, cfg.LeaderEpoch = p.id, p.topic, p.index, epoch
	up, err := tier.NewUploader(cfg, s.tierStore, logSource{p.log}, md, s.tierMetrics, s.log.With("partition", p.String()))
	if err != nil {
		s.log.Error("tiering disabled for partition", "partition", p.String(), "err", err)
		return
	}
	defer up.Close()
	tick := time.NewTicker(s.cfg.TierUploadInterval)
	defer tick.Stop()
	backoff := s.cfg.TierUploadInterval
	var lastRetention time.Time
	// First what the tier holds (fetches below the local log start wait
	// for it), then uploads. The uploaded end is raised only from the
	// records read back, so local retention never deletes a segment whose
	// copy the reads cannot find yet.
	s.refreshRemoteBounds(ctx, p)
	for {
		n, err := up.UploadEligible(ctx, p.hw.Load())
		if n > 0 || !p.remoteLoaded.Load() || p.remoteEnd.Load() < up.RemoteEnd() {
			if rerr := s.refreshRemoteBounds(ctx, p); rerr != nil && ctx.Err() == nil {
				s.log.Warn("reading remote segment metadata failed", "partition", p.String(), "err", rerr)
			}
		}
		if err == nil && time.Since(lastRetention) >= s.cfg.RetentionCheckInterval {
			// Only the leader deletes remote segments, and only once its
			// uploader has read every finished copy (a new leader must not
			// delete data still in retention).
			lastRetention = time.Now()
			if t, ok := s.cache.TopicByID(p.id); ok {
				if cfg, cerr := s.logConfig(t.Configs); cerr == nil {
					d, rerr := up.ApplyRemoteRetention(ctx, durMs(cfg.RetentionMs), cfg.RetentionBytes, time.Now())
					if rerr != nil && ctx.Err() == nil {
						s.log.Warn("remote retention failed", "partition", p.String(), "err", rerr)
					} else if d > 0 {
						s.log.Info("remote retention deleted segments", "partition", p.String(), "segments", d)
						s.refreshRemoteBounds(ctx, p)
					}
				}
			}
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, tier.ErrFenced):
			// The term in etcd moved on; the role change that follows
			// cancels this uploader (or a stale cache catches up).
			s.log.Debug("upload fenced", "partition", p.String(), "err", err)
		case err != nil:
			s.setStalled(p, true)
			s.log.Warn("uploading segments failed; retrying", "partition", p.String(), "err", err, "retry_in", backoff)
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		default:
			s.setStalled(p, false)
			backoff = s.cfg.TierUploadInterval
			if n > 0 {
				s.log.Info("uploaded segments", "partition", p.String(), "segments", n, "remote_end", up.RemoteEnd())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// refreshRemoteBounds reads the partition's finished copies from etcd.
func (s *Server) refreshRemoteBounds(ctx context.Context, p *partition) error {
	p.remoteMu.Lock()
	defer p.remoteMu.Unlock()
	recs, err := s.store.RemoteSegments(ctx, p.id, p.index)
	if err != nil {
		return err
	}
	defer p.remoteLoaded.Store(true)
	start, end := int64(-1), int64(-1)
	for _, r := range recs {
		if r.State != string(tier.CopyFinished) {
			continue
		}
		if start < 0 || r.BaseOffset < start {
			start = r.BaseOffset
		}
		end = max(end, r.EndOffset+1)
	}
	p.remoteStart.Store(start)
	// The uploaded end never moves back: remote retention removing copies
	// does not make their local segments un-uploaded.
	p.raiseRemoteEnd(end)
	var segs []tier.RemoteSegment
	for _, r := range recs {
		if r.State == string(tier.CopyFinished) {
			segs = append(segs, fromRecord(r).RemoteSegment)
		}
	}
	p.remoteSegs.Store(&segs)
	return nil
}

// ensureRemote reads the tier's state of p from etcd unless it was read in
// p's current role: a new leader must not answer ListOffsets or fetches below
// its local log start before it knows what the tier holds.
func (s *Server) ensureRemote(ctx context.Context, p *partition) error {
	if s.tierStore == nil || p.remoteLoaded.Load() {
		return nil
	}
	return s.refreshRemoteBounds(ctx, p)
}

// raiseRemoteEnd moves the uploaded end forward, never back.
func (p *partition) raiseRemoteEnd(end int64) {
	for {
		cur := p.remoteEnd.Load()
		if end <= cur || p.remoteEnd.CompareAndSwap(cur, end) {
			return
		}
	}
}

// remoteSegmentFor picks the finished copy holding offset: of overlapping
// copies (boundaries differ after a leader change) the one reaching furthest.
func (p *partition) remoteSegmentFor(offset int64) (tier.RemoteSegment, bool) {
	segs := p.remoteSegs.Load()
	if segs == nil {
		return tier.RemoteSegment{}, false
	}
	var (
		best  tier.RemoteSegment
		found bool
	)
	for _, s := range *segs {
		if s.BaseOffset <= offset && offset <= s.EndOffset && (!found || s.EndOffset > best.EndOffset) {
			best, found = s, true
		}
	}
	return best, found
}

// logStart is the partition's log start offset as clients see it: the
// oldest offset in the tier when there is one, else the local log start.
func (p *partition) logStart() int64 {
	if rs := p.remoteStart.Load(); rs >= 0 && rs < p.log.LogStartOffset() {
		return rs
	}
	return p.log.LogStartOffset()
}

// readRemote serves a fetch below the local log start from the tier.
func (s *Server) readRemote(ctx context.Context, p *partition, offset int64, maxBytes int, minOne bool) ([]byte, error) {
	seg, ok := p.remoteSegmentFor(offset)
	if !ok {
		return nil, segment.ErrOffsetOutOfRange
	}
	var next *tier.RemoteSegment
	if n, ok := p.remoteSegmentFor(seg.EndOffset + 1); ok {
		next = &n // a catching-up consumer reads on into it
	}
	return s.tierReader.ReadThen(ctx, seg, next, offset, maxBytes, minOne)
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
	s     *Server
	id    meta.TopicID
	p     int32
	epoch int32
}

func (m *tierMeta) fence() (meta.Fence, error) {
	st, ok := m.s.cache.Partition(m.id, m.p)
	if !ok || st.Leader != m.s.cfg.NodeID || st.LeaderEpoch != m.epoch {
		return meta.Fence{}, tier.ErrFenced
	}
	return m.s.store.PartitionUnchanged(m.id, m.p, st.Revision), nil
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

func (m *tierMeta) List(ctx context.Context) ([]tier.StoredSegment, error) {
	recs, err := m.s.store.RemoteSegments(ctx, m.id, m.p)
	if err != nil {
		return nil, err
	}
	out := make([]tier.StoredSegment, len(recs))
	for i, r := range recs {
		out[i] = fromRecord(r)
	}
	return out, nil
}

func (m *tierMeta) Start(ctx context.Context, seg tier.RemoteSegment) (tier.StoredSegment, error) {
	f, err := m.fence()
	if err != nil {
		return tier.StoredSegment{}, err
	}
	rev, err := m.s.store.PutRemoteSegment(ctx, toRecord(seg, 0), f)
	if err != nil {
		return tier.StoredSegment{}, fenced(err)
	}
	return tier.StoredSegment{RemoteSegment: seg, Revision: rev}, nil
}

func (m *tierMeta) Transition(ctx context.Context, st tier.StoredSegment, state tier.SegmentState) (tier.StoredSegment, error) {
	f, err := m.fence()
	if err != nil {
		return tier.StoredSegment{}, err
	}
	st.State = state
	rev, err := m.s.store.PutRemoteSegment(ctx, toRecord(st.RemoteSegment, st.Revision), f)
	if err != nil {
		return tier.StoredSegment{}, fenced(err)
	}
	st.Revision = rev
	return st, nil
}

func (m *tierMeta) Remove(ctx context.Context, st tier.StoredSegment) error {
	f, err := m.fence()
	if err != nil {
		return err
	}
	return fenced(m.s.store.DeleteRemoteSegment(ctx, toRecord(st.RemoteSegment, st.Revision), f))
}

func toRecord(seg tier.RemoteSegment, rev int64) meta.RemoteSegmentRecord {
	r := meta.RemoteSegmentRecord{TopicID: meta.TopicID(seg.TopicID), Partition: seg.Partition, UploadID: seg.UploadID,
		BaseOffset: seg.BaseOffset, EndOffset: seg.EndOffset, LeaderEpoch: seg.LeaderEpoch, MaxTimestamp: seg.MaxTimestamp,
		Size: seg.Size, Compression: seg.Compression, State: string(seg.State), DeletedAtMs: seg.DeletedAtMs, Revision: rev}
	for _, e := range seg.Epochs {
		r.Epochs = append(r.Epochs, meta.RemoteEpoch{Epoch: e.Epoch, StartOffset: e.StartOffset})
	}
	return r
}

func fromRecord(r meta.RemoteSegmentRecord) tier.StoredSegment {
	seg := tier.RemoteSegment{V: 1, TopicID: r.TopicID, Partition: r.Partition, UploadID: r.UploadID,
		BaseOffset: r.BaseOffset, EndOffset: r.EndOffset, LeaderEpoch: r.LeaderEpoch, Epochs: []tier.EpochEntry{},
		MaxTimestamp: r.MaxTimestamp, Size: r.Size, Compression: r.Compression, State: tier.SegmentState(r.State),
		DeletedAtMs: r.DeletedAtMs}
	for _, e := range r.Epochs {
		seg.Epochs = append(seg.Epochs, tier.EpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset})
	}
	return tier.StoredSegment{RemoteSegment: seg, Revision: r.Revision}
}
