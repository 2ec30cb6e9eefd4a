package tier

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sedimentio/sediment/segment"
)

// ErrFenced is wrapped by Metadata errors (and so by the Uploader's) when a write was
// refused because this broker no longer leads the partition under the term it started
// with. The broker stops the uploader; retrying cannot succeed.
var ErrFenced = errors.New("tier: fenced: partition leadership changed")

// SegmentSource is what the uploader needs of a partition's local log. segment.Log and the
// partition's leader-epoch cache satisfy it through a small adapter in the broker.
type SegmentSource interface {
	// Segments lists the local segments, oldest first (segment.Log.Segments).
	Segments() []segment.SegmentInfo
	// EpochsFor returns the leader-epoch entries covering [base, next), ascending: the
	// entry in force at base (its start offset may be below base) and those starting in
	// the range.
	EpochsFor(base, next int64) []EpochEntry
}

// StoredSegment is a RemoteSegment as read from the metadata store, with the revision
// that a compare-and-swap of it must name.
type StoredSegment struct {
	RemoteSegment
	Revision int64
}

// Metadata is the remote segment metadata of one partition (etcd's tier/<topic-id>/<p>/
// keys through meta.Store in the broker). Every write is fenced by the leadership the
// uploader runs under: a refused fence is reported as an error wrapping ErrFenced.
type Metadata interface {
	// List returns every record of the partition in any state, sorted by base offset.
	List(ctx context.Context) ([]StoredSegment, error)
	// Start creates the COPY_STARTED record of a new upload; it fails if it exists.
	Start(ctx context.Context, seg RemoteSegment) (StoredSegment, error)
	// Transition moves seg to state by compare-and-swap on seg.Revision: COPY_STARTED →
	// COPY_FINISHED, COPY_STARTED or COPY_FINISHED → DELETE_STARTED, DELETE_STARTED →
	// DELETE_FINISHED. Nothing else of seg changes, except that the DELETE_FINISHED write
	// also records seg.DeletedAtMs.
	Transition(ctx context.Context, seg StoredSegment, state SegmentState) (StoredSegment, error)
	// Remove deletes a DELETE_FINISHED record (compare-and-swap on seg.Revision).
	Remove(ctx context.Context, seg StoredSegment) error
}

// UploaderConfig configures the uploader of one partition.
type UploaderConfig struct {
	TopicID     [16]byte
	Topic       string // topic name, for metric labels and logs
	Partition   int32
	LeaderEpoch int32 // this broker's leader epoch for the partition: recorded in every upload
	// Compression of the .log object: CompressionNone, CompressionZstdFrames, or
	// CompressionAuto (zstd frames for segments of uncompressed batches, none otherwise).
	Compression string
	// FrameSize is the input bytes per zstd frame (cut at the next batch boundary).
	FrameSize int
	// TempDir holds compressed .log files while they upload ("" = os.TempDir()).
	TempDir string
	// UploadTimeout bounds the object Puts of one upload, counted from just before its
	// COPY_STARTED record is written: no Put of the upload starts later, and Puts still
	// running are cancelled. It bounds how long a deposed (or partitioned) leader can
	// keep putting objects under a record that a new leader has already cleaned up.
	UploadTimeout time.Duration
	// DeleteGrace is how long the DELETE_FINISHED record of an upload that never
	// finished (COPY_STARTED or DELETE_STARTED when cleaned up) is kept before its
	// objects are deleted once more and the record is removed, so that an object its
	// uploader put after the first deletion does not outlive every record naming it.
	// It must exceed UploadTimeout, with a margin for a request landing after its
	// cancellation and for clock skew between brokers (REMOTE.md).
	DeleteGrace time.Duration
	// Now is the clock of DELETE_FINISHED stamps and of DeleteGrace (nil: time.Now).
	Now func() time.Time
}

// Defaults of UploaderConfig. With tier/s3's defaults one PutObject may take over ten
// minutes (5 attempts of up to 2 minutes each, plus backoff) and a multipart upload
// longer, so UploadTimeout is what bounds an upload; DeleteGrace leaves a wide margin.
const (
	DefaultUploadTimeout = 15 * time.Minute
	DefaultDeleteGrace   = 30 * time.Minute
)

// DefaultUploaderConfig returns a config without compression; the caller sets the
// partition fields.
func DefaultUploaderConfig() UploaderConfig {
	return UploaderConfig{Compression: CompressionNone, FrameSize: DefaultFrameSize,
		UploadTimeout: DefaultUploadTimeout, DeleteGrace: DefaultDeleteGrace}
}

// Validate checks the config.
func (c UploaderConfig) Validate() error {
	if c.TopicID == ([16]byte{}) {
		return errors.New("tier: uploader config: zero topic id")
	}
	if c.Partition < 0 || c.LeaderEpoch < 0 {
		return fmt.Errorf("tier: uploader config: partition %d, leader epoch %d", c.Partition, c.LeaderEpoch)
	}
	// One rule, one message naming both flags: the grace is what makes the timeout safe.
	if c.UploadTimeout <= 0 || c.DeleteGrace <= c.UploadTimeout {
		return fmt.Errorf("tier: uploader config: upload timeout %v (--tier-upload-timeout) and orphan grace %v (--tier-orphan-grace): want 0 < upload timeout < orphan grace",
			c.UploadTimeout, c.DeleteGrace)
	}
	switch c.Compression {
	case CompressionNone:
	case CompressionZstdFrames, CompressionAuto:
		if c.FrameSize < 4096 || c.FrameSize > 64<<20 {
			return fmt.Errorf("tier: uploader config: frame size %d outside [4 KiB, 64 MiB]", c.FrameSize)
		}
	default:
		return fmt.Errorf("tier: uploader config: unknown compression %q", c.Compression)
	}
	return nil
}

// Uploader copies a led partition's sealed segments to object storage and applies remote
// retention (REMOTE.md). The broker creates one per partition it leads and calls its
// methods from the partition's tiering goroutine under a context cancelled when leadership
// is lost, retrying errors with backoff; it must wait for a previous uploader of the same
// partition to return before starting a new one. It never deletes local files.
//
// UploadEligible, DeleteBefore and ApplyRemoteRetention are serialised by an internal
// lock; RemoteEnd and RemoteLogStart are safe to call concurrently with anything.
type Uploader struct {
	cfg     UploaderConfig
	topicID string // text form
	store   ObjectStore
	src     SegmentSource
	md      Metadata
	m       *uploaderSeries
	log     *slog.Logger

	mu            sync.Mutex // serialises operations; guards the fields below
	copiedEnd     int64      // highest COPY_FINISHED end offset seen, -1 before any; never decreases
	manifestDirty bool       // the manifest may not match the COPY_FINISHED records

	remoteEnd   atomic.Int64
	remoteStart atomic.Int64
}

func (u *Uploader) now() time.Time {
	if u.cfg.Now != nil {
		return u.cfg.Now()
	}
	return time.Now()
}

// NewUploader returns the uploader of one partition. metrics may be nil (no metrics).
func NewUploader(cfg UploaderConfig, store ObjectStore, src SegmentSource, md Metadata, metrics *UploaderMetrics, logger *slog.Logger) (*Uploader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	if metrics == nil {
		metrics = newUploaderMetrics()
	}
	topic := cfg.Topic
	if topic == "" {
		topic = TopicIDText(cfg.TopicID)
	}
	u := &Uploader{
		cfg: cfg, topicID: TopicIDText(cfg.TopicID), store: store, src: src, md: md,
		m:   metrics.series(topic, cfg.Partition),
		log: logger.With("topic", topic, "partition", cfg.Partition, "leader_epoch", cfg.LeaderEpoch),

		copiedEnd: -1, manifestDirty: true,
	}
	u.remoteEnd.Store(-1)
	u.remoteStart.Store(-1)
	return u, nil
}

// Close removes the partition's gauges from the metrics; call it when leadership ends.
func (u *Uploader) Close() { u.m.remove() }

// RemoteEnd is the offset after the highest COPY_FINISHED segment seen (every offset below
// it has been copied), or -1 before the first successful call or when nothing has been
// copied. It never decreases during the uploader's life, even when remote retention deletes
// segments: offsets below it were copied, which is what local retention needs to know.
func (u *Uploader) RemoteEnd() int64 { return u.remoteEnd.Load() }

// RemoteLogStart is the base offset of the oldest COPY_FINISHED segment, or -1 if none is
// known.
func (u *Uploader) RemoteLogStart() int64 { return u.remoteStart.Load() }

// UploadEligible first cleans up unfinished uploads and deletions (of crashed or deposed
// predecessors) and purges the records of cleaned-up uploads past DeleteGrace, then
// uploads, oldest first, every sealed segment whose last offset is below highWatermark and
// above the highest COPY_FINISHED end offset, and rewrites the manifest after each. It
// returns how many segments it uploaded; on an error the rest are left for the next call.
func (u *Uploader) UploadEligible(ctx context.Context, highWatermark int64) (uploaded int, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	finished, err := u.syncLocked(ctx)
	if err != nil {
		return 0, err
	}
	for {
		cands := eligible(u.src.Segments(), highWatermark, u.copiedEnd)
		u.m.setLag(cands)
		if len(cands) == 0 {
			return uploaded, u.writeManifestLocked(ctx, finished)
		}
		st, err := u.uploadLocked(ctx, cands[0])
		if err != nil {
			u.m.copyErrors.Inc()
			return uploaded, err
		}
		uploaded++
		finished = append(finished, st)
		u.observeLocked(finished)
		u.manifestDirty = true
		if err := u.writeManifestLocked(ctx, finished); err != nil {
			return uploaded, err
		}
	}
}

// eligible returns the sealed, non-empty segments whose last offset is below hw and above
// copiedEnd. After a leader change a segment may straddle copiedEnd (the new leader's
// boundaries differ): it is uploaded whole, overlapping the previous upload (REMOTE.md).
func eligible(segs []segment.SegmentInfo, hw, copiedEnd int64) []segment.SegmentInfo {
	var out []segment.SegmentInfo
	for _, s := range segs {
		if s.Sealed && s.NextOffset > s.BaseOffset && s.NextOffset <= hw && s.NextOffset-1 > copiedEnd {
			out = append(out, s)
		}
	}
	return out
}

// syncLocked lists the metadata, cleans up every COPY_STARTED and DELETE_STARTED record
// (a COPY_STARTED record is an upload that can never finish: its uploader crashed, failed
// or was deposed, and is fenced) down to a DELETE_FINISHED record kept for DeleteGrace,
// purges the DELETE_FINISHED records past it, and returns the COPY_FINISHED records.
func (u *Uploader) syncLocked(ctx context.Context) ([]StoredSegment, error) {
	recs, err := u.md.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("tier: listing remote segments: %w", err)
	}
	var finished []StoredSegment
	now := u.now()
	for _, r := range recs {
		switch r.State {
		case CopyFinished:
			finished = append(finished, r)
		case DeleteFinished:
			if !u.graceOver(r.RemoteSegment, now) {
				continue // its objects are gone; it waits for stragglers
			}
			u.manifestDirty = true // it may have been COPY_FINISHED, and listed
			if err := u.purgeLocked(ctx, r); err != nil {
				return nil, err
			}
		default:
			u.log.Info("cleaning up unfinished remote segment", "base_offset", r.BaseOffset, "upload_id", r.UploadID,
				"state", r.State, "upload_leader_epoch", r.LeaderEpoch)
			u.manifestDirty = true // it may have been COPY_FINISHED, and listed
			if err := u.deleteLocked(ctx, r); err != nil {
				return nil, err
			}
		}
	}
	sortStored(finished)
	u.observeLocked(finished)
	return finished, nil
}

// observeLocked updates copiedEnd, RemoteEnd and RemoteLogStart from the COPY_FINISHED
// records.
func (u *Uploader) observeLocked(finished []StoredSegment) {
	start := int64(-1)
	for _, r := range finished {
		u.copiedEnd = max(u.copiedEnd, r.EndOffset)
		if start < 0 || r.BaseOffset < start {
			start = r.BaseOffset
		}
	}
	if u.copiedEnd >= 0 {
		u.remoteEnd.Store(u.copiedEnd + 1)
	}
	u.remoteStart.Store(start)
}

func (u *Uploader) writeManifestLocked(ctx context.Context, finished []StoredSegment) error {
	if !u.manifestDirty {
		return nil
	}
	if err := writeManifest(ctx, u.store, u.cfg.TopicID, u.cfg.Partition, u.cfg.LeaderEpoch, finished); err != nil {
		return err
	}
	u.manifestDirty = false
	return nil
}

// newUploadID returns 16 random bytes as 22 characters of URL-safe base64.
func newUploadID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// clampEpochs keeps the entries covering [base, next): the last one starting at or below
// base (clamped up to base, as Kafka's segmentLeaderEpochs) and those starting in the range.
func clampEpochs(in []EpochEntry, base, next int64) []EpochEntry {
	out := []EpochEntry{}
	for _, e := range in {
		if e.StartOffset >= next {
			break
		}
		if e.StartOffset <= base {
			out = out[:0]
			e.StartOffset = base
		}
		out = append(out, e)
	}
	return out
}

// EncodeEpochs writes the epochs object: Kafka's leader-epoch-checkpoint text format.
func EncodeEpochs(entries []EpochEntry) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return b.Bytes()
}

// ParseEpochs reads an epochs object. It never panics; accepted input re-encodes
// identically by EncodeEpochs when it is in canonical form.
func ParseEpochs(b []byte) ([]EpochEntry, error) {
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) < 2 || string(lines[0]) != "0" {
		return nil, errors.New("tier: epochs object: bad header")
	}
	n, err := strconv.Atoi(string(lines[1]))
	if err != nil || n != len(lines)-2 {
		return nil, fmt.Errorf("tier: epochs object: count %q for %d lines", lines[1], len(lines)-2)
	}
	out := make([]EpochEntry, 0, n)
	for _, l := range lines[2:] {
		ep, off, ok := bytes.Cut(l, []byte(" "))
		e, err1 := strconv.ParseInt(string(ep), 10, 32)
		o, err2 := strconv.ParseInt(string(off), 10, 64)
		if !ok || err1 != nil || err2 != nil || e < 0 || o < 0 || (len(out) > 0 && (int32(e) <= out[len(out)-1].Epoch || o < out[len(out)-1].StartOffset)) {
			return nil, fmt.Errorf("tier: epochs object: bad entry %q", l)
		}
		out = append(out, EpochEntry{Epoch: int32(e), StartOffset: o})
	}
	return out, nil
}

// localObject is one object of an upload read from a local file or memory.
type localObject struct {
	kind string
	r    io.ReaderAt
	size int64
}

// uploadLocked uploads one sealed segment: COPY_STARTED, objects, COPY_FINISHED.
func (u *Uploader) uploadLocked(ctx context.Context, info segment.SegmentInfo) (StoredSegment, error) {
	started := time.Now()
	var objs []localObject
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	// Open every file before writing COPY_STARTED: the open descriptors keep the bytes
	// readable even if local retention removes the files meanwhile.
	open := func(path string, optional bool) (*os.File, int64, error) {
		f, err := os.Open(path)
		if err != nil {
			if optional && errors.Is(err, os.ErrNotExist) {
				return nil, 0, nil
			}
			return nil, 0, fmt.Errorf("tier: opening %s: %w", path, err)
		}
		closers = append(closers, func() { f.Close() })
		fi, err := f.Stat()
		if err != nil {
			return nil, 0, fmt.Errorf("tier: %s: %w", path, err)
		}
		return f, fi.Size(), nil
	}
	logf, logSize, err := open(info.LogPath, false)
	if err != nil {
		return StoredSegment{}, err
	}
	if logSize < info.Size {
		return StoredSegment{}, fmt.Errorf("tier: %s has %d bytes, the segment %d", info.LogPath, logSize, info.Size)
	}
	for _, o := range []struct{ kind, path string }{{KindIndex, info.IndexPath}, {KindTimeIndex, info.TimeIndexPath}} {
		f, size, err := open(o.path, false)
		if err != nil {
			return StoredSegment{}, err
		}
		objs = append(objs, localObject{o.kind, f, size})
	}
	epochs := clampEpochs(u.src.EpochsFor(info.BaseOffset, info.NextOffset), info.BaseOffset, info.NextOffset)
	eb := EncodeEpochs(epochs)
	objs = append(objs, localObject{KindEpochs, bytes.NewReader(eb), int64(len(eb))})
	// The producer snapshot written when the segment rolled is named by its next offset.
	snapPath := filepath.Join(filepath.Dir(info.LogPath), fmt.Sprintf("%020d.snapshot", info.NextOffset))
	if f, size, err := open(snapPath, true); err != nil {
		return StoredSegment{}, err
	} else if f != nil {
		objs = append(objs, localObject{KindSnapshot, f, size})
	}
	// The aborted-transaction index, when the segment has one with entries: read whole (34
	// bytes an aborted transaction) and checked as a reader will, so that a bad local file
	// fails this upload instead of every read_committed read of the copy.
	hasTxnIndex := false
	if info.HasTxnIndex {
		f, size, err := open(info.TxnIndexPath, false)
		if err != nil {
			return StoredSegment{}, err
		}
		if size > maxMetaObject {
			return StoredSegment{}, fmt.Errorf("tier: %s: %d bytes, more than %d", info.TxnIndexPath, size, maxMetaObject)
		}
		b := make([]byte, size)
		if _, err := f.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && size == 0) {
			return StoredSegment{}, fmt.Errorf("tier: reading %s: %w", info.TxnIndexPath, err)
		}
		if _, err := ParseTxnIndex(b, RemoteSegment{BaseOffset: info.BaseOffset, EndOffset: info.NextOffset - 1}); err != nil {
			return StoredSegment{}, fmt.Errorf("tier: %s: %w", info.TxnIndexPath, err)
		}
		if size > 0 { // an emptied file (truncation) is no index
			objs = append(objs, localObject{KindTxnIndex, bytes.NewReader(b), size})
			hasTxnIndex = true
		}
	}
	compression := u.cfg.Compression
	if compression == CompressionAuto {
		if compression, err = autoCompression(logf, info.Size); err != nil {
			return StoredSegment{}, fmt.Errorf("tier: %s: %w", info.LogPath, err)
		}
	}
	if compression == CompressionZstdFrames {
		zf, x, cleanup, err := compressToTemp(u.cfg.TempDir, logf, info.Size, u.cfg.FrameSize)
		if err != nil {
			return StoredSegment{}, err
		}
		closers = append(closers, cleanup)
		fb := x.Encode()
		objs = append(objs, localObject{KindFrames, bytes.NewReader(fb), int64(len(fb))},
			localObject{KindLog, zf, x.CompressedSize})
	} else {
		objs = append(objs, localObject{KindLog, logf, info.Size})
	}

	seg := RemoteSegment{
		V: 1, TopicID: u.cfg.TopicID, Partition: u.cfg.Partition, UploadID: newUploadID(),
		BaseOffset: info.BaseOffset, EndOffset: info.NextOffset - 1, LeaderEpoch: u.cfg.LeaderEpoch,
		Epochs: epochs, MaxTimestamp: info.MaxTimestamp, Size: info.Size, Compression: compression,
		TxnIndex: hasTxnIndex, State: CopyStarted,
	}
	u.m.copyRequests.Inc()
	// The deadline starts before COPY_STARTED is written, so no Put of this upload runs
	// later than UploadTimeout after the record exists: a new leader's cleanup keeps the
	// record longer than that (DeleteGrace) and deletes whatever landed meanwhile.
	putCtx, cancel := context.WithTimeout(ctx, u.cfg.UploadTimeout)
	defer cancel()
	st, err := u.md.Start(ctx, seg)
	if err != nil {
		return StoredSegment{}, fmt.Errorf("tier: starting upload of segment %d: %w", info.BaseOffset, err)
	}
	var total int64
	for _, o := range objs {
		key := SegmentObjectKey(seg, o.kind)
		if err := putCtx.Err(); err != nil { // a store may not check it before writing
			return StoredSegment{}, fmt.Errorf("tier: uploading %s: upload timeout %v: %w", key, u.cfg.UploadTimeout, err)
		}
		if err := u.store.Put(putCtx, key, o.r, o.size); err != nil {
			return StoredSegment{}, fmt.Errorf("tier: uploading %s: %w", key, err)
		}
		total += o.size
		u.m.copyBytes.Add(float64(o.size))
	}
	st, err = u.md.Transition(ctx, st, CopyFinished)
	if err != nil {
		if errors.Is(err, ErrFenced) {
			// Refused for certain (not an ambiguous failure that may have committed): nothing
			// will ever name these objects. Delete them now, even though ctx is probably
			// cancelled with the lost leadership, so that a new leader's cleanup, which may
			// already have run, leaves no orphans behind.
			u.deleteObjectsAfterFence(ctx, seg)
		}
		return StoredSegment{}, fmt.Errorf("tier: finishing upload of segment %d: %w", info.BaseOffset, err)
	}
	u.log.Debug("uploaded segment", "base_offset", seg.BaseOffset, "end_offset", seg.EndOffset,
		"upload_id", seg.UploadID, "bytes", total, "took", time.Since(started))
	return st, nil
}

// graceOver reports whether a DELETE_FINISHED record is old enough to be purged: its
// DeletedAtMs is DeleteGrace or more before now. A record without a stamp (written before
// the field existed, which removed such records at once) is over; so is one stamped more
// than DeleteGrace in the future (a clock that far off would otherwise keep it forever).
func (u *Uploader) graceOver(seg RemoteSegment, now time.Time) bool {
	grace := u.cfg.DeleteGrace.Milliseconds()
	age := now.UnixMilli() - seg.DeletedAtMs
	if seg.DeletedAtMs > 0 && age < -grace {
		u.log.Warn("remote segment deleted in the future: clocks disagree; removing it now",
			"base_offset", seg.BaseOffset, "upload_id", seg.UploadID, "deleted_at_ms", seg.DeletedAtMs)
		return true
	}
	return seg.DeletedAtMs <= 0 || age >= grace
}

// deleteObjects deletes every object kind of an upload, present or not: a crashed upload
// may have put any subset, and a deposed one may put more later.
func (u *Uploader) deleteObjects(ctx context.Context, seg RemoteSegment) error {
	for _, kind := range segmentKinds {
		if err := u.store.Delete(ctx, SegmentObjectKey(seg, kind)); err != nil {
			return err
		}
	}
	return nil
}

// purgeLocked ends a DELETE_FINISHED record past DeleteGrace: every object of the upload
// is deleted again (any a straggler put after the first deletion), then the record is
// removed.
func (u *Uploader) purgeLocked(ctx context.Context, st StoredSegment) error {
	fail := func(what string, err error) error {
		u.m.deleteErrors.Inc()
		return fmt.Errorf("tier: purging deleted remote segment %d (upload %s): %s: %w", st.BaseOffset, st.UploadID, what, err)
	}
	if err := u.deleteObjects(ctx, st.RemoteSegment); err != nil {
		return fail("objects", err)
	}
	if err := u.md.Remove(ctx, st); err != nil {
		return fail("removing the record", err)
	}
	u.log.Debug("purged deleted remote segment", "base_offset", st.BaseOffset, "upload_id", st.UploadID,
		"deleted_at_ms", st.DeletedAtMs)
	return nil
}

// deleteObjectsAfterFence deletes the objects of an upload whose COPY_FINISHED write was
// fenced, best effort, within a short timeout of its own.
func (u *Uploader) deleteObjectsAfterFence(ctx context.Context, seg RemoteSegment) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := u.deleteObjects(ctx, seg); err != nil {
		// The new leader deletes them again once DeleteGrace after its cleanup is over.
		u.log.Warn("deleting an object of a fenced upload", "base_offset", seg.BaseOffset, "upload_id", seg.UploadID, "err", err)
	}
}

// deleteLocked takes one COPY_STARTED, COPY_FINISHED or DELETE_STARTED upload through
// DELETE_STARTED, the deletion of its objects and DELETE_FINISHED (stamped with
// DeletedAtMs). The record of a COPY_FINISHED upload is then removed at once: its
// uploader put every object before finishing, so nothing can land later. Any other is
// kept until DeleteGrace is over (purgeLocked): its uploader, deposed or crashed, may
// still have had a Put in flight. (DELETE_STARTED may be either; it is kept.)
func (u *Uploader) deleteLocked(ctx context.Context, st StoredSegment) error {
	u.m.deleteRequests.Inc()
	fail := func(what string, err error) error {
		u.m.deleteErrors.Inc()
		return fmt.Errorf("tier: deleting remote segment %d (upload %s): %s: %w", st.BaseOffset, st.UploadID, what, err)
	}
	finishedCopy := st.State == CopyFinished
	switch st.State {
	case CopyStarted, CopyFinished:
		next, err := u.md.Transition(ctx, st, DeleteStarted)
		if err != nil {
			return fail("starting", err)
		}
		st = next
	case DeleteStarted:
	default:
		return fail("state", fmt.Errorf("unexpected state %s", st.State))
	}
	if err := u.deleteObjects(ctx, st.RemoteSegment); err != nil {
		return fail("objects", err)
	}
	st.DeletedAtMs = u.now().UnixMilli()
	next, err := u.md.Transition(ctx, st, DeleteFinished)
	if err != nil {
		return fail("finishing", err)
	}
	st = next
	if !finishedCopy {
		return nil // purged by a sync once DeleteGrace is over
	}
	if err := u.md.Remove(ctx, st); err != nil {
		return fail("removing the record", err)
	}
	u.m.deleteBytes.Add(float64(st.Size))
	return nil
}

// DeleteBefore deletes the remote segments whose last offset is below offset (DeleteRecords
// or a log start offset moved by the broker), whole segments only, oldest first, then
// rewrites the manifest. It returns how many it deleted.
func (u *Uploader) DeleteBefore(ctx context.Context, offset int64) (int, error) {
	return u.deleteWhile(ctx, func(s StoredSegment, _ int64) bool { return s.EndOffset < offset })
}

// ApplyRemoteRetention deletes the oldest remote segments, whole, while they breach
// retention.ms (max timestamp at or before now-retentionMs) or retention.bytes (the log's
// total size, local segments not yet copied plus remote ones, stays at or above
// retentionBytes without the segment), as Kafka's RemoteLogManager does; -1 disables either
// limit. It stops at the first segment breaching neither and returns how many it deleted.
func (u *Uploader) ApplyRemoteRetention(ctx context.Context, retentionMs, retentionBytes int64, now time.Time) (int, error) {
	cutoff := now.UnixMilli() - retentionMs
	return u.deleteWhile(ctx, func(s StoredSegment, total int64) bool {
		byTime := retentionMs >= 0 && s.MaxTimestamp <= cutoff
		bySize := retentionBytes >= 0 && total-s.Size >= retentionBytes
		return byTime || bySize
	})
}

// deleteWhile deletes COPY_FINISHED segments in base-offset order while del holds; total is
// the log's size before deleting the segment.
func (u *Uploader) deleteWhile(ctx context.Context, del func(s StoredSegment, total int64) bool) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	finished, err := u.syncLocked(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, s := range finished {
		total += s.Size
	}
	for _, s := range u.src.Segments() {
		if s.NextOffset-1 > u.copiedEnd { // not copied yet (the active segment too)
			total += s.Size
		}
	}
	deleted := 0
	var werr error
	for len(finished) > 0 && del(finished[0], total) {
		s := finished[0]
		u.manifestDirty = true
		if werr = u.deleteLocked(ctx, s); werr != nil {
			break
		}
		deleted++
		total -= s.Size
		finished = finished[1:]
		u.log.Info("deleted remote segment", "base_offset", s.BaseOffset, "end_offset", s.EndOffset, "upload_id", s.UploadID)
	}
	u.observeLocked(finished)
	if werr != nil {
		return deleted, werr
	}
	return deleted, u.writeManifestLocked(ctx, finished)
}

// sortStored sorts records by base offset, then upload id.
func sortStored(s []StoredSegment) {
	slices.SortStableFunc(s, func(a, b StoredSegment) int {
		switch {
		case a.BaseOffset < b.BaseOffset:
			return -1
		case a.BaseOffset > b.BaseOffset:
			return 1
		case a.UploadID < b.UploadID:
			return -1
		case a.UploadID > b.UploadID:
			return 1
		}
		return 0
	})
}
