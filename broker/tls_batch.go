package broker

// Writes of TLS connections. Go has no kernel TLS, so a Fetch over SSL or
// SASL_SSL cannot use sendfile: file ranges are read into memory and
// crypto/tls seals them in records of at most 16 KiB, each of which it
// writes to the socket with its own write(2). batchConn sits below
// crypto/tls and gathers the records of one response into writes of up to
// batchMax bytes; the connection's writer flushes it after every response.

import (
	"net"
	"sync"
)

// batchMax bounds the bytes a batchConn holds before it writes them.
const batchMax = 256 << 10

var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, batchMax); return &b }}

// batchConn is the transport under a server-side tls.Conn. Until start is
// called (the handshake done) it writes through: the handshake must not
// wait for a flush. Afterwards writes gather until Flush or until batchMax
// bytes are pending. Safe for concurrent use: crypto/tls may write an alert
// or a key update from the reading goroutine.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	batching bool
	buf      *[]byte // pending bytes, from batchBufs; nil when none
}

func (b *batchConn) start() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return b.Conn.Write(p)
	}
	if b.buf != nil && len(*b.buf)+len(p) > batchMax {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) >= batchMax {
		return b.Conn.Write(p)
	}
	if b.buf == nil {
		b.buf = batchBufs.Get().(*[]byte)
	}
	*b.buf = append(*b.buf, p...)
	return len(p), nil
}

// Flush writes what is pending.
func (b *batchConn) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *batchConn) flushLocked() error {
	if b.buf == nil {
		return nil
	}
	_, err := b.Conn.Write(*b.buf)
	*b.buf = (*b.buf)[:0]
	batchBufs.Put(b.buf)
	b.buf = nil
	return err
}
