package segment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sedimentio/sediment/segment/vfs"
)

// Swapping cleaned segments in, crash-safely (Kafka's replaceSegments protocol).
//
// A group of old segments O1..Ok (bases b1 < ... < bk) is rewritten into one new segment N
// with base b1, so N's final names are O1's. Its files go through three names:
//
//  1. rewrite: %020d.log.cleaned, .index.cleaned, .timeindex.cleaned, .txnindex.cleaned, written and
//     fdatasync'ed. A crash leaves .cleaned files, which Open deletes: rolled back.
//  2. commit (append lock held from here): the index files, then the log, are renamed to
//     .swap and the directory is synced. From the moment <b1>.log.swap is durable the swap
//     will complete.
//  3. N replaces O1..Ok in the published segment list; O2..Ok's files are removed and the
//     directory synced (O1's are replaced by the renames of step 4).
//  4. the .swap files are renamed to their final names, the log last, replacing O1's.
//
// Open completes an interrupted swap: for each <b>.log.swap it reads the swap segment's
// end offset e and deletes every segment whose base lies in (b, e) (the old segments: N
// keeps the last batch of the segments it replaces, so it ends exactly where Ok ended),
// syncs the directory, then renames the .swap files into place, replacing O1's files at b
// (those already renamed before the crash are N's and stay). A crash during that is completed by the next Open the same way. So after
// any crash the log holds either the old segments or N, never both (no duplicate) and
// never neither (no loss).

const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

// segmentSuffixes are the files of a segment, index files first: the log's rename is
// what commits a swap and what completes it. A cleaned segment always has a .txnindex
// (maybe empty); an old one may have none.
var segmentSuffixes = []string{indexSuffix, timeIndexSuffix, txnIndexSuffix, logSuffix}

// removeCleaned deletes the .cleaned files of the segment at base (a clean that failed).
func removeCleaned(fsys vfs.FS, dir string, base int64) {
	for _, suf := range segmentSuffixes {
		fsys.Remove(fileName(dir, base, suf) + cleanedSuffix)
	}
}

// swapIn replaces the group of old segments with ns (written by rewrite, its files
// .cleaned) as the top of swap.go describes. It returns ErrCleanAborted, deleting ns's
// files, when the log changed since the clean planned (gen), the group is no longer in the
// log, or the log is closed.
func (l *Log) swapIn(ns *segment, old []*segment, gen int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	abort := func(err error) error {
		ns.release()
		removeCleaned(l.fs, l.dir, ns.base)
		for _, suf := range segmentSuffixes {
			l.fs.Remove(fileName(l.dir, ns.base, suf) + swapSuffix)
		}
		return err
	}
	if err := l.writableLocked(); err != nil {
		return abort(err)
	}
	segs := *l.segs.Load()
	at := -1
	for i, s := range segs {
		if s == old[0] {
			at = i
			break
		}
	}
	if l.cl.gen != gen || at < 0 || at+len(old) >= len(segs) {
		return abort(ErrCleanAborted)
	}
	for j, s := range old {
		if segs[at+j] != s {
			return abort(ErrCleanAborted)
		}
	}

	if l.cl.naiveSwap {
		return l.naiveSwapLocked(ns, old, at)
	}

	// 2. Commit.
	for _, suf := range segmentSuffixes {
		name := fileName(l.dir, ns.base, suf)
		if err := l.fs.Rename(name+cleanedSuffix, name+swapSuffix); err != nil {
			return abort(fmt.Errorf("segment: swap in cleaned segment: %w", err))
		}
	}
	if err := l.syncDir(); err != nil {
		// Whether the swap is durable is unknown: the next Open decides (it completes
		// the swap if <base>.log.swap made it to disk). Nothing may change meanwhile.
		ns.release()
		return l.failLocked(err)
	}

	// 3. Publish, and remove the old files that N does not replace by name.
	if err := l.replaceLocked(ns, old, at); err != nil {
		return err
	}

	// 4. Final names. Not synced: until a later directory sync, a crash leaves the .swap
	// names, and Open completes the swap.
	for _, suf := range segmentSuffixes {
		name := fileName(l.dir, ns.base, suf)
		if err := l.fs.Rename(name+swapSuffix, name); err != nil {
			return l.failLocked(fmt.Errorf("segment: swap in cleaned segment: %w", err))
		}
	}
	for _, s := range old {
		s.release() // open Slices keep reading the unlinked files
	}
	return nil
}

// recoverSwaps finishes what a crash interrupted in the cleaner's files: .cleaned files
// (a rewrite not committed) are deleted, swaps committed (<base>.log.swap) are completed
// as the top of swap.go describes, and index .swap files without a log .swap (a commit
// cut short) are deleted. Open calls it first.
func (l *Log) recoverSwaps() error {
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("segment: open %s: %w", l.dir, err)
	}
	var logs []int64 // bases of segment .log files
	var swaps []int64
	other := map[int64]bool{} // bases with index .swap files
	changed := false
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, cleanedSuffix):
			l.fs.Remove(filepath.Join(l.dir, name))
			changed = true
		case strings.HasSuffix(name, swapSuffix):
			base, ok := parseFileName(strings.TrimSuffix(name, swapSuffix), logSuffix)
			if ok {
				swaps = append(swaps, base)
			} else if b, ok := parseFileName(strings.TrimSuffix(name, swapSuffix), indexSuffix); ok {
				other[b] = true
			} else if b, ok := parseFileName(strings.TrimSuffix(name, swapSuffix), timeIndexSuffix); ok {
				other[b] = true
			} else if b, ok := parseFileName(strings.TrimSuffix(name, swapSuffix), txnIndexSuffix); ok {
				other[b] = true
			}
		default:
			if b, ok := parseFileName(name, logSuffix); ok {
				logs = append(logs, b)
			}
		}
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i] < logs[j] })
	for _, base := range swaps {
		end, err := l.swapEnd(base)
		if err != nil {
			return err
		}
		l.logger.Warn("segment: completing an interrupted swap of cleaned segments", "segment", fileName(l.dir, base, logSuffix), "end_offset", end)
		for _, b := range logs {
			// base's own files are replaced by the renames below, and must not be
			// removed: a crash during the renames may have left some of them renamed
			// already, and those are N's (its .txnindex cannot be rebuilt).
			if b > base && b < end {
				for _, suf := range segmentSuffixes {
					if err := l.fs.Remove(fileName(l.dir, b, suf)); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("segment: complete swap: %w", err)
					}
				}
			}
		}
		if err := l.syncDir(); err != nil {
			return err
		}
		for _, suf := range segmentSuffixes { // the log last
			name := fileName(l.dir, base, suf)
			if err := l.fs.Rename(name+swapSuffix, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("segment: complete swap: %w", err)
			}
		}
		delete(other, base)
		changed = true
	}
	for b := range other { // a commit cut short before the log's rename: roll back
		for _, suf := range segmentSuffixes {
			l.fs.Remove(fileName(l.dir, b, suf) + swapSuffix)
		}
		changed = true
	}
	if changed {
		return l.syncDir()
	}
	return nil
}

// swapEnd returns the offset after the last batch of the swap segment at base, reading
// its batch headers (it was synced before it was committed: a bad batch is corruption).
func (l *Log) swapEnd(base int64) (int64, error) {
	path := fileName(l.dir, base, logSuffix) + swapSuffix
	f, err := l.fs.Open(path)
	if err != nil {
		return 0, fmt.Errorf("segment: open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := base
	sc := newScanner(f, 0, st.Size())
	for {
		h, pos, err := sc.next(false)
		if err == io.EOF {
			return end, nil
		}
		if err != nil {
			return 0, &CorruptionError{Segment: path, Offset: pos, Err: err}
		}
		end = h.NextOffset()
	}
}

// naiveSwapLocked is swapIn without the .swap commit, for tests only (cleanerState.naiveSwap):
// the cleaned files replace O1's by rename, then O2..Ok are removed. A crash in between
// leaves the cleaned segment overlapping the old ones. mu held.
func (l *Log) naiveSwapLocked(ns *segment, old []*segment, at int) error {
	for _, suf := range segmentSuffixes {
		name := fileName(l.dir, ns.base, suf)
		if err := l.fs.Rename(name+cleanedSuffix, name); err != nil {
			return l.failLocked(err)
		}
	}
	if err := l.replaceLocked(ns, old, at); err != nil {
		return err
	}
	for _, s := range old {
		s.release()
	}
	return nil
}

// replaceLocked publishes the segment list with ns in place of old (at index at), then
// removes the files of old[1:] (ns takes old[0]'s names) and syncs the directory. mu held.
func (l *Log) replaceLocked(ns *segment, old []*segment, at int) error {
	segs := *l.segs.Load()
	nsegs := make([]*segment, 0, len(segs)-len(old)+1)
	nsegs = append(append(append(nsegs, segs[:at]...), ns), segs[at+len(old):]...)
	l.publishSegsLocked(nsegs)
	for _, s := range old[1:] {
		if err := l.removeSegmentFiles(s); err != nil {
			return l.failLocked(err)
		}
	}
	if err := l.syncDir(); err != nil {
		return l.failLocked(err)
	}
	return nil
}
