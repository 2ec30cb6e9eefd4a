package segment

import (
	"hash/maphash"
	"math/bits"
)

// OffsetMap is the cleaner's key → latest offset map (Kafka's SkimpyOffsetMap): a fixed
// array of slots, each a 128-bit hash of a key and an offset, filled by linear probing up
// to a load factor. Its memory is fixed when it is made (log.cleaner.dedupe.buffer.size),
// whatever the log holds: a clean that would need more keys cleans the log only up to
// where the map filled, and the next clean goes on from there.
//
// Keys are hashed with two independently seeded maphash functions: 128 bits make a
// collision (which would delete a live key's last record) as unlikely as Kafka's MD5, and
// the seeds are random per map, so keys cannot be crafted to collide.
//
// Not safe for concurrent use: one cleaner owns a map and reuses it for every clean.
type OffsetMap struct {
	slots  []mapSlot
	used   int
	limit  int   // used may not exceed it: len(slots) × offsetMapLoadFactor
	latest int64 // the largest offset the map covers (every key below it is in the map)
	s1, s2 maphash.Seed
}

type mapSlot struct {
	h1, h2 uint64
	off    int64 // the offset plus one: 0 marks an empty slot
}

// offsetMapSlotSize is the memory of one slot: two hash words and an offset.
const offsetMapSlotSize = 24

// offsetMapLoadFactor is Kafka's log.cleaner.io.buffer.load.factor default.
const offsetMapLoadFactor = 0.9

// NewOffsetMap returns a map using about bytes of memory (at least one slot's worth).
func NewOffsetMap(bytes int64) *OffsetMap {
	n := max(bytes/offsetMapSlotSize, 2)
	m := &OffsetMap{slots: make([]mapSlot, n), s1: maphash.MakeSeed(), s2: maphash.MakeSeed()}
	m.limit = max(int(float64(n)*offsetMapLoadFactor), 1)
	m.reset(-1)
	return m
}

// Bytes is the map's memory.
func (m *OffsetMap) Bytes() int64 { return int64(len(m.slots)) * offsetMapSlotSize }

// Slots is how many keys the map can hold.
func (m *OffsetMap) Slots() int { return m.limit }

// Utilization is the fraction of the map's usable slots the last clean filled.
func (m *OffsetMap) Utilization() float64 { return float64(m.used) / float64(m.limit) }

// reset empties the map; latest starts just below the first offset it will cover.
func (m *OffsetMap) reset(latest int64) {
	if m.used > 0 {
		clear(m.slots)
	}
	m.used = 0
	m.latest = latest
}

func (m *OffsetMap) hash(key []byte) (uint64, uint64) {
	return maphash.Bytes(m.s1, key), maphash.Bytes(m.s2, key)
}

// slot returns the index of key's slot, or of the empty slot where it would go.
func (m *OffsetMap) slot(h1, h2 uint64) int {
	hi, _ := bits.Mul64(h1, uint64(len(m.slots))) // h1 scaled onto [0, len)
	for i := int(hi); ; {
		s := &m.slots[i]
		if s.off == 0 || (s.h1 == h1 && s.h2 == h2) {
			return i
		}
		if i++; i == len(m.slots) {
			i = 0
		}
	}
}

// put records offset as key's latest. It returns false, changing nothing, when key is new
// and the map is full.
func (m *OffsetMap) put(key []byte, offset int64) bool {
	h1, h2 := m.hash(key)
	s := &m.slots[m.slot(h1, h2)]
	if s.off == 0 {
		if m.used >= m.limit {
			return false
		}
		m.used++
		s.h1, s.h2 = h1, h2
	}
	s.off = offset + 1
	m.latest = max(m.latest, offset)
	return true
}

// get returns key's latest offset, or -1 when the map does not have it.
func (m *OffsetMap) get(key []byte) int64 {
	h1, h2 := m.hash(key)
	return m.slots[m.slot(h1, h2)].off - 1
}
