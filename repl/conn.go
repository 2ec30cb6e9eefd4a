package repl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
)

// maxResponseSize bounds one response frame beyond the configured MaxBytes. A fetch
// response may exceed MaxBytes by one whole batch (KIP-74) plus its framing; anything
// larger than maxResponseSize+MaxBytes is a protocol error, not something to allocate.
const maxResponseSize = 64 << 20

var (
	// ErrResponseTooLarge reports a response frame above the size this follower accepts.
	ErrResponseTooLarge = errors.New("repl: response too large")
	// errCorrelation reports a response that does not answer the request just sent.
	errCorrelation = errors.New("repl: response correlation id mismatch")
	// errMalformed reports a response frame too short to hold a header.
	errMalformed = errors.New("repl: malformed response")
	// errUnsupported reports a leader that serves none of the versions needed.
	errUnsupported = errors.New("repl: leader does not support a required API version")
)

// conn is one connection to a leader's inter-broker listener. Requests are sent one at a
// time (the fetcher never pipelines) with kmsg's RequestFormatter, and responses are read
// by their size prefix and decoded with the request's ResponseKind.
//
// Not safe for concurrent use: owned by one fetcher goroutine.
type conn struct {
	nc       net.Conn
	addr     string
	format   *kmsg.RequestFormatter
	corr     int32
	versions map[int16][2]int16 // api key -> [min, max] the leader serves
	maxResp  int64
	wbuf     []byte
	rbuf     []byte

	sasl        sasl.Mechanism // nil without SASL
	saslTimeout time.Duration
	reauthAt    time.Time // zero: the session does not expire
	authing     bool
}

// dial connects to addr and learns the leader's API versions (ApiVersions v3, falling
// back to v0 when the leader answers UNSUPPORTED_VERSION, as KIP-511 prescribes).
func dial(ctx context.Context, addr string, cfg *Config) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	var nc net.Conn
	var err error
	if cfg.Dial != nil {
		nc, err = cfg.Dial(dctx, "tcp", addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("repl: dial %s: %w", addr, err)
	}
	c := &conn{
		nc:      nc,
		addr:    addr,
		format:  kmsg.NewRequestFormatter(kmsg.FormatterClientID(cfg.ClientID)),
		maxResp: maxResponseSize + int64(cfg.MaxBytes),
	}
	if err := c.handshake(ctx, cfg.SocketTimeout); err != nil {
		nc.Close()
		return nil, err
	}
	if cfg.SASL != nil {
		c.sasl, c.saslTimeout = cfg.SASL, cfg.SocketTimeout
		if err := c.authenticate(ctx); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *conn) handshake(ctx context.Context, timeout time.Duration) error {
	for _, v := range []int16{3, 0} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName = "sediment"
		req.ClientSoftwareVersion = "0"
		kresp, err := c.request(ctx, req, timeout)
		if err != nil {
			return err
		}
		resp := kresp.(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode == kerr.UnsupportedVersion.Code && v > 0 {
			continue
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("repl: ApiVersions from %s: %w", c.addr, err)
		}
		c.versions = make(map[int16][2]int16, len(resp.ApiKeys))
		for _, k := range resp.ApiKeys {
			c.versions[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		return nil
	}
	return fmt.Errorf("repl: ApiVersions from %s: %w", c.addr, errUnsupported)
}

// version returns the highest version of key in [lo, hi] that the leader serves.
func (c *conn) version(key, lo, hi int16) (int16, bool) {
	r, ok := c.versions[key]
	if !ok {
		return 0, false
	}
	v := min(hi, r[1])
	if v < lo || v < r[0] {
		return 0, false
	}
	return v, true
}

// request sends req and waits for its response, for at most timeout or until ctx is done.
// Any error leaves the connection unusable: the caller closes it.
func (c *conn) request(ctx context.Context, req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.reauthenticate(ctx); err != nil {
		return nil, err
	}
	c.corr++
	corr := c.corr
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.nc.SetDeadline(deadline)
	// A cancelled context unblocks the read by moving the deadline to the past.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c.wbuf = c.format.AppendRequest(c.wbuf[:0], req, corr)
	if _, err := c.nc.Write(c.wbuf); err != nil {
		return nil, c.ioErr(ctx, "write", err)
	}
	if cap(c.wbuf) > 1<<20 {
		c.wbuf = nil // a rare large request does not pin its buffer
	}
	body, err := c.readFrame()
	if err != nil {
		return nil, c.ioErr(ctx, "read", err)
	}
	b := kbin.Reader{Src: body}
	if got := b.Int32(); !b.Ok() || got != corr {
		return nil, fmt.Errorf("%w: got %d, want %d", errCorrelation, got, corr)
	}
	// Flexible responses have a tagged-field header, except ApiVersions (KIP-511: a
	// client must be able to read it before knowing the broker's versions).
	if req.IsFlexible() && req.Key() != 18 {
		kmsg.SkipTags(&b)
		if !b.Ok() {
			return nil, fmt.Errorf("repl: %s response header from %s: %w", kmsg.NameForKey(req.Key()), c.addr, kbin.ErrNotEnoughData)
		}
	}
	resp := req.ResponseKind()
	if err := resp.ReadFrom(b.Src); err != nil {
		if req.Key() == 18 && req.GetVersion() > 0 {
			// KIP-511: a broker that does not serve this ApiVersions version answers
			// in v0 format with UNSUPPORTED_VERSION.
			v0 := kmsg.NewPtrApiVersionsResponse()
			if v0.ReadFrom(b.Src) == nil && v0.ErrorCode == kerr.UnsupportedVersion.Code {
				return v0, nil
			}
		}
		return nil, fmt.Errorf("repl: decode %s v%d response from %s: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), c.addr, err)
	}
	return resp, nil
}

// readFrame reads one size-prefixed response into c.rbuf. The buffer is reused between
// responses (a response is fully applied before the next request is sent) unless it grew
// past the usual response size.
func (c *conn) readFrame() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
		return nil, err
	}
	n := int64(int32(binary.BigEndian.Uint32(hdr[:])))
	if n < 4 {
		return nil, fmt.Errorf("%w: %d-byte frame from %s", errMalformed, n, c.addr)
	}
	if n > c.maxResp {
		return nil, fmt.Errorf("%w: %d bytes from %s (limit %d)", ErrResponseTooLarge, n, c.addr, c.maxResp)
	}
	if int64(cap(c.rbuf)) < n || int64(cap(c.rbuf)) > 2*n+(16<<20) {
		c.rbuf = make([]byte, n)
	}
	buf := c.rbuf[:n]
	if _, err := io.ReadFull(c.nc, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func (c *conn) ioErr(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return fmt.Errorf("repl: %s %s: %w", op, c.addr, err)
}

func (c *conn) close() error { return c.nc.Close() }
