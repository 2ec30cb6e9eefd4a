package broker

import (
	"math/bits"
	"sync"
)

// bufPool recycles request bodies by power-of-two size class, so the produce
// path neither allocates nor zeroes a fresh buffer for every request. Only
// bodies whose decoded request is dropped when its handler returns may be
// put back (Produce: the log has written the records by then).
type bufPool struct {
	classes [maxPooledShift + 1]sync.Pool
}

const (
	minPooledShift = 12 // 4 KiB
	maxPooledShift = 24 // 16 MiB
)

func sizeClass(n int) int {
	if n <= 1<<minPooledShift {
		return minPooledShift
	}
	return bits.Len(uint(n - 1))
}

// get returns a slice of length n, pooled when n fits a class.
func (p *bufPool) get(n int) []byte {
	c := sizeClass(n)
	if c > maxPooledShift {
		return make([]byte, n)
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<c)
}

// put returns b to its class; b must not be used afterwards.
func (p *bufPool) put(b []byte) {
	c := bits.Len(uint(cap(b))) - 1
	if c < minPooledShift || c > maxPooledShift || cap(b) != 1<<c {
		return
	}
	b = b[:0]
	p.classes[c].Put(&b)
}
