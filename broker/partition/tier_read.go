package partition

// Answers that reach below the local log start into the tier (KIP-405):
// fetches, ListOffsets by timestamp and OffsetForLeaderEpoch. The tier holds
// finished copies listed in remoteSegs; copies of a deposed leader and of its
// successor may overlap (their segment boundaries differ), so walks keep the
// lowest offset not yet covered.

import (
	"cmp"
	"context"
	"slices"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/tier"
)

// ReadRemote serves a fetch below the local log start from the tier (after
// Read said InTier). Errors: segment.ErrOffsetOutOfRange or tier.ErrNotExist
// when remote retention deleted the offset meanwhile, ctx's error, and the
// tier's read errors.
func (p *Partition) ReadRemote(ctx context.Context, offset int64, maxBytes int, minOne bool) ([]byte, error) {
	if p.m.tierReader == nil {
		return nil, segment.ErrOffsetOutOfRange
	}
	seg, ok := p.remoteSegmentFor(offset)
	if !ok {
		return nil, segment.ErrOffsetOutOfRange
	}
	var next *tier.RemoteSegment
	if n, ok := p.remoteSegmentFor(seg.EndOffset + 1); ok {
		next = &n // a catching-up consumer reads on into it
	}
	return p.m.tierReader.ReadThen(ctx, seg, next, offset, maxBytes, minOne)
}

// remoteSegmentFor picks the finished copy holding offset: of overlapping
// copies the one reaching furthest.
func (p *Partition) remoteSegmentFor(offset int64) (tier.RemoteSegment, bool) {
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

// remoteBelowLocal returns the finished copies holding offsets in
// [LogStart, local log start), ordered by base offset.
func (p *Partition) remoteBelowLocal() []tier.RemoteSegment {
	segs := p.remoteSegs.Load()
	if segs == nil {
		return nil
	}
	localStart, start := p.log.LogStartOffset(), p.LogStart()
	var out []tier.RemoteSegment
	for _, s := range *segs {
		if s.EndOffset >= start && s.BaseOffset < localStart {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b tier.RemoteSegment) int {
		// By base offset; of copies with one base, the longer first.
		return cmp.Or(cmp.Compare(a.BaseOffset, b.BaseOffset), cmp.Compare(b.EndOffset, a.EndOffset))
	})
	return out
}

// offsetForTimestamp is ListOffsets by timestamp over the whole log: the
// tier below the local log start first, then the local log.
func (p *Partition) offsetForTimestamp(ctx context.Context, ts int64) (int64, int64, bool, error) {
	if r := p.m.tierReader; r != nil {
		next, localStart := p.LogStart(), p.log.LogStartOffset()
		for _, seg := range p.remoteBelowLocal() {
			if seg.EndOffset < next {
				continue // covered by an overlapping copy already searched
			}
			if next >= localStart {
				break
			}
			off, fts, ok, err := r.OffsetForTimestamp(ctx, seg, ts, next)
			if err != nil || (ok && off < localStart) {
				return off, fts, ok, err
			}
			next = seg.EndOffset + 1
		}
	}
	return p.log.OffsetForTimestamp(ts)
}

// endOffsetForEpoch is OffsetForLeaderEpoch over the whole log: the local
// leader-epoch cache, preceded by the epochs recorded with the copies in the
// tier for the offsets below the local log start (local retention trims the
// local cache, and a broker that started on an empty directory never had
// those entries).
func (p *Partition) endOffsetForEpoch(epoch int32) (int32, int64) {
	local := p.log.LeaderEpochs()
	remote := p.remoteBelowLocal()
	if len(remote) == 0 || (len(local) > 0 && epoch >= local[0].Epoch) {
		return p.log.EndOffsetForEpoch(epoch)
	}
	// Epoch starts below the first local entry, from the copies: an epoch's
	// start is the lowest start any copy records for it. The first local
	// entry's start may be the local log start only (retention trims the
	// cache to it), so the copies correct it too.
	var entries []segment.EpochEntry
	for _, seg := range remote {
		for _, e := range seg.Epochs {
			if len(local) > 0 && e.Epoch > local[0].Epoch {
				continue
			}
			i := slices.IndexFunc(entries, func(x segment.EpochEntry) bool { return x.Epoch == e.Epoch })
			switch {
			case i < 0:
				entries = append(entries, segment.EpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset})
			case e.StartOffset < entries[i].StartOffset:
				entries[i].StartOffset = e.StartOffset
			}
		}
	}
	slices.SortFunc(entries, func(a, b segment.EpochEntry) int { return cmp.Compare(a.Epoch, b.Epoch) })
	if len(local) > 0 {
		if n := len(entries); n > 0 && entries[n-1].Epoch == local[0].Epoch {
			local[0].StartOffset = min(local[0].StartOffset, entries[n-1].StartOffset)
			entries = entries[:n-1]
		}
		entries = append(entries, local...)
	}
	return segment.EndOffsetForEpochIn(entries, epoch, p.log.LogEndOffset())
}
