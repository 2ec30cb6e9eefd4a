package broker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/security"
	"github.com/sedimentio/sediment/segment"
)

// request is one decoded Kafka request.
type request struct {
	key      int16
	version  int16
	corr     int32
	clientID string
	kreq     kmsg.Request
	at       time.Time
}

// pending is what a handler hands to the connection's writer. Exactly one of
// resp and complete is set, unless noResponse (acks=0 produce).
type pending struct {
	req        *request
	resp       kmsg.Response
	complete   func(ctx context.Context) outgoing // runs on the writer goroutine, in request order
	noResponse bool
	// raw, with isRaw, is a SASL token written as a bare size-prefixed
	// frame (after a v0 SaslHandshake) instead of resp.
	raw   []byte
	isRaw bool
	// closeAfter closes the connection once this response is written
	// (failed authentication); the reader stops after queueing it.
	closeAfter bool
}

// outgoing is a response ready to encode. files holds the record bytes whose
// placeholders the response's Records fields carry, in encoding order.
type outgoing struct {
	resp  kmsg.Response
	files []records
}

// records is the value of one Records field written apart from the encoded
// response: a segment file range, sent with sendfile, or bytes read from the
// tier (chunks shared read-only with the reader's cache), written as they are,
// or a range of the tier's chunk cache file, sent with sendfile and given
// back with done.
type records struct {
	file segment.Slice
	mem  []byte
	done func()
}

func (r records) len() int64 {
	if r.mem != nil {
		return int64(len(r.mem))
	}
	return r.file.Len
}

// release gives back a file range's reference.
func (r records) release() {
	if r.mem == nil {
		r.file.Release()
	}
	if r.done != nil {
		r.done()
	}
}

func releaseAll(files []records) {
	for _, f := range files {
		f.release()
	}
}

// conn is one client connection. Its reader goroutine decodes requests and runs
// handlers in arrival order; its writer goroutine completes and writes
// responses in the same order. Not safe for use outside those two goroutines
// except through the pending channel and close.
type conn struct {
	srv    *Server
	nc     net.Conn
	log    *slog.Logger
	br     *bufio.Reader
	queue  chan *pending
	ctx    context.Context // cancelled when the connection dies or the server gives up on shutdown
	cancel context.CancelFunc

	// markers: a per-connection random prefix for record placeholders.
	marker [8]byte

	fetchSessions *fetchSessionCache
	// batch is the transport under a TLS connection, flushed after each
	// response (tls_batch.go); nil without TLS.
	batch     *batchConn
	closeOnce sync.Once

	// principal is who the connection authenticated as: security.Anonymous
	// until a TLS client certificate or a SASL exchange says otherwise.
	// Written only by the reader goroutine (accept path, SaslAuthenticate).
	principal security.Principal
	// host is the peer's IP address (no port, no "/"), as ACLs name hosts.
	host string
	// lis is the listener the connection came in on; sasl is its SASL
	// state, nil on listeners without SASL (sasl_conn.go).
	lis  *listener
	sasl *saslState
}

// Principal is the connection's authenticated principal (User:ANONYMOUS
// before authentication).
func (c *conn) Principal() security.Principal { return c.principal }

// Host is the client's IP address, as Kafka's ACLs match it.
func (c *conn) Host() string { return c.host }

// clientHost is the peer's address as Kafka shows it in group descriptions
// ("/127.0.0.1").
func (c *conn) clientHost() string {
	if a, ok := c.nc.RemoteAddr().(*net.TCPAddr); ok {
		return "/" + a.IP.String()
	}
	return "/" + c.nc.RemoteAddr().String()
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.nc.Close()
	})
}

// serve runs the connection until the peer leaves, a protocol error occurs, or
// the server stops. It returns once both goroutines are done.
func (c *conn) serve() {
	if err := c.handshake(); err != nil {
		// A failed TLS handshake is a failed authentication, which Kafka
		// logs at INFO; a peer that left without a word (a TCP probe) is not.
		level := slog.LevelInfo
		if errors.Is(err, io.EOF) {
			level = slog.LevelDebug
		}
		c.log.Log(c.ctx, level, "closing connection", "err", err)
		c.close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop()
	}()
	c.readLoop()
	wg.Wait()
	c.close()
	c.fetchSessions.closeAll() // their partitions stop signalling this connection
}

// stopReading makes the reader return at its next frame boundary (shutdown:
// stop taking requests, finish those in flight).
func (c *conn) stopReading() {
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) readLoop() {
	defer close(c.queue)
	maxFrame := c.srv.cfg.SocketRequestMaxBytes
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			if !isClosedErr(err) {
				c.log.Debug("read failed", "err", err)
			}
			return
		}
		size := int32(binary.BigEndian.Uint32(hdr[:]))
		// A frame holds at least api key, version and correlation id. The
		// bound is checked before anything is allocated for the frame.
		if size < 8 || size > maxFrame {
			c.srv.metrics.protocolErrors.Inc()
			c.log.Warn("closing connection: request frame size out of range",
				"size", size, "socket.request.max.bytes", maxFrame)
			return
		}
		body, err := c.readBody(int(size))
		if err != nil {
			if !isClosedErr(err) {
				c.log.Debug("read of request body failed", "err", err)
			}
			return
		}
		var p *pending
		if c.sasl != nil && c.sasl.raw {
			p, err = c.rawSASL(body)
		} else {
			p, err = c.dispatch(body)
		}
		if p != nil && p.req.key == produceKey || err != nil {
			// Nothing refers to a produce body once its handler has
			// appended the records.
			c.srv.bodies.put(body)
		}
		if err != nil {
			c.srv.metrics.protocolErrors.Inc()
			c.log.Warn("closing connection: bad request", "err", err)
			return
		}
		select {
		case c.queue <- p:
		case <-c.ctx.Done():
			return
		}
		if p.closeAfter {
			return
		}
	}
}

// dispatch decodes one frame and runs its handler's fast part. An error closes
// the connection, as Kafka does for requests it cannot parse.
func (c *conn) dispatch(body []byte) (*pending, error) {
	req, a, err := decodeRequest(c.srv.apis, body)
	if err != nil {
		return nil, err
	}
	if req.kreq == nil {
		// KIP-511: answer an ApiVersions request of a version we do not
		// serve with our versions in the v0 format so the client can retry.
		return &pending{req: req, resp: c.srv.unsupportedApiVersions()}, nil
	}
	if c.sasl != nil {
		if err := c.saslGate(req.key); err != nil {
			return nil, err
		}
	}
	c.srv.metrics.requests.WithLabelValues(a.name).Inc()
	c.srv.metrics.kafka.counted(req)
	p, err := a.handle(c, req)
	if err != nil {
		return nil, fmt.Errorf("%s v%d: %w", a.name, req.version, err)
	}
	p.req = req
	return p, nil
}

// decodeRequest parses a frame body: the request header, then the body with
// kmsg. It returns a request with a nil kreq for an ApiVersions request of an
// unsupported version (answered in the v0 format); any other problem is an
// error. It never panics and allocates nothing beyond what the frame holds.
func decodeRequest(apis map[int16]api, body []byte) (*request, api, error) {
	rd := kbin.Reader{Src: body}
	req := &request{
		key:     rd.Int16(),
		version: rd.Int16(),
		corr:    rd.Int32(),
		at:      time.Now(),
	}
	if cid := rd.NullableString(); cid != nil {
		req.clientID = *cid
	}
	if !rd.Ok() {
		return nil, api{}, errors.New("truncated request header")
	}
	a, ok := apis[req.key]
	if !ok {
		return nil, api{}, fmt.Errorf("unknown api key %d (version %d, client %q)", req.key, req.version, req.clientID)
	}
	if req.version < a.min || req.version > a.max {
		if req.key == apiVersionsKey {
			req.version = 0
			return req, a, nil
		}
		return nil, api{}, fmt.Errorf("unsupported version %d of %s (supported %d-%d, client %q)",
			req.version, kmsg.NameForKey(req.key), a.min, a.max, req.clientID)
	}
	kreq := kmsg.RequestForKey(req.key)
	kreq.SetVersion(req.version)
	if kreq.IsFlexible() {
		kmsg.SkipTags(&rd)
	}
	if !rd.Ok() {
		return nil, api{}, fmt.Errorf("truncated %s v%d request header", kmsg.NameForKey(req.key), req.version)
	}
	if err := kreq.ReadFrom(rd.Src); err != nil {
		return nil, api{}, fmt.Errorf("decoding %s v%d: %w", kmsg.NameForKey(req.key), req.version, err)
	}
	req.kreq = kreq
	return req, a, nil
}

// readBody reads a frame body of size bytes. Bodies up to the largest pool
// class come from the pool; larger ones grow as their bytes arrive, so a peer
// that announces a big frame and sends little of it holds no more memory than
// it actually sent.
func (c *conn) readBody(size int) ([]byte, error) {
	if size <= 1<<maxPooledShift {
		body := c.srv.bodies.get(size)
		if _, err := io.ReadFull(c.br, body); err != nil {
			c.srv.bodies.put(body)
			return nil, err
		}
		return body, nil
	}
	body := make([]byte, 0, 1<<maxPooledShift)
	for len(body) < size {
		if len(body) == cap(body) {
			body = slices.Grow(body, min(size, 2*cap(body))-len(body))
		}
		chunk := body[len(body):min(cap(body), size)]
		n, err := io.ReadFull(c.br, chunk)
		body = body[:len(body)+n]
		if err != nil {
			return nil, err
		}
	}
	return body, nil
}

func (c *conn) writeLoop() {
	var buf []byte
	for p := range c.queue {
		if p.noResponse {
			if p.closeAfter {
				c.close()
			}
			continue
		}
		if p.isRaw {
			if err := c.writeRaw(p.raw); err != nil || c.flush() != nil {
				c.close()
			}
			continue
		}
		out := outgoing{resp: p.resp}
		if p.complete != nil {
			out = p.complete(c.ctx)
		}
		var err error
		buf, err = c.writeResponse(buf[:0], p.req, out)
		releaseAll(out.files)
		if err == nil {
			err = c.flush()
		}
		if err != nil {
			if !isClosedErr(err) {
				c.log.Debug("write failed", "err", err)
			}
			c.close()
			// Drain so the reader never blocks on a full queue.
			for p := range c.queue {
				if p.complete != nil {
					releaseAll(p.complete(c.ctx).files)
				}
			}
			return
		}
		took := time.Since(p.req.at)
		c.srv.metrics.requestSeconds.WithLabelValues(c.srv.apis[p.req.key].name).Observe(took.Seconds())
		c.srv.metrics.kafka.answered(p.req, took)
		if p.closeAfter {
			c.close()
		}
	}
}

// writeResponse encodes out and writes it. Records placeholders are replaced
// by out.files: file ranges sent with sendfile where possible, bytes in memory
// written with the encoded pieces around them (writev).
func (c *conn) writeResponse(buf []byte, req *request, out outgoing) ([]byte, error) {
	resp := out.resp
	resp.SetVersion(req.version)
	c.listenerEndpoints(resp)
	buf = append(buf, 0, 0, 0, 0) // frame size
	buf = binary.BigEndian.AppendUint32(buf, uint32(req.corr))
	// ApiVersions responses always use header v0 (KIP-511).
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	if len(out.files) == 0 {
		binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
		_, err := c.nc.Write(buf)
		return buf, err
	}
	pieces, err := c.splice(buf, out.files, resp.IsFlexible())
	if err != nil {
		return buf, err
	}
	return buf, c.writePieces(pieces)
}

// piece is a run of bytes or a file range.
type piece struct {
	b    []byte
	file *segment.Slice
}

const markerLen = 16

// placeholder returns the Records value a response carries for files[i].
func (c *conn) placeholder(i int) []byte {
	m := make([]byte, markerLen)
	copy(m, c.marker[:])
	binary.BigEndian.PutUint64(m[8:], uint64(i))
	return m
}

// splice cuts the encoded response at each placeholder (in whatever order
// the encoding put them) and rewrites the length prefix in front of it for the
// real byte count.
func (c *conn) splice(buf []byte, files []records, flexible bool) ([]piece, error) {
	pieces := make([]piece, 0, 3*len(files)+2)
	var (
		rest  = buf[4:]
		total int64
		found int
	)
	for {
		at := bytes.Index(rest, c.marker[:])
		if at < 0 {
			break
		}
		if at+markerLen > len(rest) {
			return nil, errors.New("internal: truncated records placeholder")
		}
		i := binary.BigEndian.Uint64(rest[at+8 : at+markerLen])
		if i >= uint64(len(files)) {
			return nil, fmt.Errorf("internal: records placeholder %d out of range", i)
		}
		head := rest[:at]
		n := files[i].len()
		var prefix []byte
		if flexible {
			// compact bytes: uvarint(len+1); the placeholder's was one byte.
			if len(head) < 1 || head[len(head)-1] != markerLen+1 {
				return nil, errors.New("internal: unexpected compact length before records placeholder")
			}
			head = head[:len(head)-1]
			prefix = binary.AppendUvarint(nil, uint64(n+1))
		} else {
			if len(head) < 4 || binary.BigEndian.Uint32(head[len(head)-4:]) != markerLen {
				return nil, errors.New("internal: unexpected length before records placeholder")
			}
			head = head[:len(head)-4]
			prefix = binary.BigEndian.AppendUint32(nil, uint32(n))
		}
		pieces = append(pieces, piece{b: head}, piece{b: prefix})
		if files[i].mem != nil {
			pieces = append(pieces, piece{b: files[i].mem})
		} else {
			pieces = append(pieces, piece{file: &files[i].file})
		}
		total += int64(len(head)+len(prefix)) + n
		rest = rest[at+markerLen:]
		found++
	}
	if found != len(files) {
		return nil, fmt.Errorf("internal: %d of %d records placeholders found", found, len(files))
	}
	pieces = append(pieces, piece{b: rest})
	total += int64(len(rest))
	if total > 1<<31-1 {
		return nil, fmt.Errorf("response of %d bytes exceeds the frame limit", total)
	}
	size := binary.BigEndian.AppendUint32(nil, uint32(total))
	return append([]piece{{b: size}}, pieces...), nil
}

// flush writes what a TLS connection's transport holds (tls_batch.go).
func (c *conn) flush() error {
	if c.batch == nil {
		return nil
	}
	return c.batch.Flush()
}

func (c *conn) writePieces(pieces []piece) error {
	var bufs net.Buffers
	flush := func() error {
		if len(bufs) == 0 {
			return nil
		}
		var err error
		if c.batch != nil {
			// Under TLS each Write is at least one record: the pieces go
			// as one.
			_, err = c.nc.Write(bytes.Join(bufs, nil))
		} else {
			_, err = bufs.WriteTo(c.nc)
		}
		bufs = nil
		return err
	}
	for _, p := range pieces {
		if p.file == nil {
			if len(p.b) > 0 {
				bufs = append(bufs, p.b)
			}
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if err := sendSlice(c.nc, p.file); err != nil {
			return err
		}
	}
	return flush()
}

// sendSlice writes a file range to the connection: sendfile(2) from an OS file
// (a syscall.Conn) to TCP, a bounded copy through ReadAt otherwise (TLS, or a
// segment on an in-memory filesystem in tests).
func sendSlice(nc net.Conn, s *segment.Slice) error {
	tc, ok := nc.(*net.TCPConn)
	sf, fok := s.File.(syscall.Conn)
	if !ok || !fok {
		// TLS (or an in-memory file): read in large pieces, so that the
		// records crypto/tls makes of them are full.
		bp := batchBufs.Get().(*[]byte)
		defer batchBufs.Put(bp)
		_, err := io.CopyBuffer(nc, io.NewSectionReader(s.File, s.Pos, s.Len), (*bp)[:cap(*bp)])
		return err
	}
	dst, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	src, err := sf.SyscallConn()
	if err != nil {
		return err
	}
	var (
		off    = s.Pos
		remain = s.Len
		serr   error
	)
	cerr := src.Control(func(sfd uintptr) {
		werr := dst.Write(func(dfd uintptr) bool {
			for remain > 0 {
				n, e := syscall.Sendfile(int(dfd), int(sfd), &off, int(min(remain, 1<<30)))
				if n > 0 {
					remain -= int64(n)
				}
				switch {
				case e == syscall.EAGAIN:
					return false // wait until writable
				case e == syscall.EINTR:
					continue
				case e != nil:
					serr = e
					return true
				case n == 0:
					serr = io.ErrUnexpectedEOF // the file is shorter than the range
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if cerr != nil {
		return cerr
	}
	return serr
}

func isClosedErr(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
