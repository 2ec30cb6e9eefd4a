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

// RemoteRead is what ReadRemote read: whole record batches of one remote
// segment, checked, in Records or, when they lie in one chunk of the tier
// reader's on-disk chunk cache, in File (a range of the cache file, sent
// with sendfile like a local segment's; pinned until Release).
type RemoteRead struct {
	Records []byte
	File    segment.Slice
	// Aborted are, for a read_committed read, the aborted transactions whose
	// offsets meet the records (the consumer drops their batches); nil otherwise.
	Aborted []segment.AbortedTxn
	tier    tier.Records
}

// Len returns the bytes of the batches.
func (r RemoteRead) Len() int64 {
	if r.Records != nil {
		return int64(len(r.Records))
	}
	return r.File.Len
}

// Release gives back File's pin of the cache file; nothing for Records.
func (r RemoteRead) Release() { r.tier.Release() }

// ReadRemote serves a fetch below the local log start from the tier (after
// Read said InTier). The caller releases what it returns (RemoteRead.Release). With iso ReadCommitted it also collects the aborted
// transactions among the records, from the txnindex objects of the remote
// segments (and the local log's index, should the search reach it).
// Errors: segment.ErrOffsetOutOfRange or tier.ErrNotExist when remote
// retention deleted the offset meanwhile, ctx's error, and the tier's read
// errors: records are never returned without their aborted transactions.
func (p *Partition) ReadRemote(ctx context.Context, offset int64, maxBytes int, minOne bool, iso Isolation) (RemoteRead, error) {
	if p.m.tierReader == nil {
		return RemoteRead{}, segment.ErrOffsetOutOfRange
	}
	seg, ok := p.remoteSegmentFor(offset)
	if !ok {
		return RemoteRead{}, segment.ErrOffsetOutOfRange
	}
	var next *tier.RemoteSegment
	if n, ok := p.remoteSegmentFor(seg.EndOffset + 1); ok {
		next = &n // a catching-up consumer reads on into it
	}
	if iso != ReadCommitted {
		rec, err := p.m.tierReader.ReadRecords(ctx, seg, next, offset, maxBytes, minOne)
		if err != nil || rec.Bytes != nil || rec.Len == 0 {
			return RemoteRead{Records: rec.Bytes}, err
		}
		return RemoteRead{File: segment.Slice{File: rec.File, Pos: rec.Pos, Len: rec.Len}, tier: rec}, nil
	}
	// read_committed needs the batches' offsets for the aborted transactions:
	// in memory.
	b, err := p.m.tierReader.ReadThen(ctx, seg, next, offset, maxBytes, minOne)
	if err != nil || len(b) == 0 {
		return RemoteRead{Records: b}, err
	}
	aborted, err := p.remoteAborted(ctx, seg, offset, nextOffsetAfter(b))
	if err != nil {
		return RemoteRead{}, err
	}
	return RemoteRead{Records: b, Aborted: aborted}, nil
}

// nextOffsetAfter returns the offset after the last of the record batches b
// (checked by the tier reader), the upper bound of the offsets a fetch
// returns: tighter than Kafka's (the next offset-index entry), never looser.
func nextOffsetAfter(b []byte) int64 {
	next := int64(-1)
	for len(b) > 0 {
		h, err := segment.ParseBatchHeader(b)
		if err != nil || h.Size() > int64(len(b)) {
			break // cannot happen: the reader returns whole, checked batches
		}
		next = h.NextOffset()
		b = b[h.Size():]
	}
	return next
}

// remoteAborted collects the aborted transactions that meet [from, upper)
// for a read of seg, as Kafka's RemoteLogManager does: the txnindex of seg
// and of the remote segments after it, then the local log's indexes, until
// an entry says no transaction open below upper can end later. A
// transaction's marker may lie segments after its first offset, so the walk
// goes past seg; segments without a txnindex object cost nothing (KIP-1058).
// A remote segment starting at or above the local log start is covered by the
// local log. Overlapping copies repeat entries; each is listed once.
func (p *Partition) remoteAborted(ctx context.Context, seg tier.RemoteSegment, from, upper int64) ([]segment.AbortedTxn, error) {
	var out []segment.AbortedTxn
	localStart := p.log.LogStartOffset()
	complete := false
	for ok := true; ok && !complete && seg.BaseOffset < localStart; seg, ok = p.remoteSegmentFor(seg.EndOffset + 1) {
		var got []segment.AbortedTxn
		var err error
		if got, complete, err = p.m.tierReader.AbortedTransactions(ctx, seg, from, upper); err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	if !complete {
		out = append(out, p.log.AbortedTransactions(from, upper)...)
	}
	if len(out) == 0 {
		return nil, nil
	}
	seen := make(map[segment.AbortedTxn]bool, len(out))
	kept := out[:0]
	for _, a := range out {
		if !seen[a] {
			seen[a] = true
			kept = append(kept, a)
		}
	}
	return kept, nil
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
