package tier

// objectHints is how many read ends an object remembers: one per consumer reading it
// sequentially at once, about.
const objectHints = 4

// readHint says that the batch at position pos has base offset next: where a sequential
// read that ended just before it goes on. Without it the next read would start at the
// index entry at or below next, which names the batch before (entries key a batch's last
// offset), whose chunk the reader has already passed and may have let go.
type readHint struct{ next, pos int64 }

// hint returns the position of the batch with base offset next, if a read ended there.
func (o *remoteObject) hint(next int64) (int64, bool) {
	o.hintMu.Lock()
	defer o.hintMu.Unlock()
	for _, h := range o.hints {
		if h.next == next && h.pos > 0 {
			return h.pos, true
		}
	}
	return 0, false
}

// passedByAll reports whether the reads that left hints have all gone past chunk i (and
// some did): a read-ahead of it would be wasted.
func (o *remoteObject) passedByAll(i int) bool {
	o.hintMu.Lock()
	defer o.hintMu.Unlock()
	some := false
	for _, h := range o.hints {
		if h.pos <= 0 {
			continue
		}
		if h.pos < o.size && o.chunkOf(h.pos) <= i {
			return false
		}
		some = true
	}
	return some
}

// setHint records that a read from offset from ended at pos, where the batch at next
// starts. The read that left a hint at from moves it on: one slot per sequential reader.
func (o *remoteObject) setHint(from, next, pos int64) {
	o.hintMu.Lock()
	defer o.hintMu.Unlock()
	for i, h := range o.hints {
		if h.next == from || h.next == next {
			o.hints[i] = readHint{next: next, pos: pos}
			return
		}
	}
	o.hints[o.hintAt] = readHint{next: next, pos: pos}
	o.hintAt = (o.hintAt + 1) % objectHints
}
