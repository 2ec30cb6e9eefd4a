package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// wireConn is one Kafka connection that sends one request at a time and
// reads its response: the least a client can do per request (kmsg encodes
// and decodes; framing is the length prefix and the header). The offset
// commit measurement drives the broker with it so that, on the few cores
// the broker and the bench share, the bench spends little CPU per commit:
// a kgo client spends about as much per request as the broker does (its
// goroutine handoffs, promises and buffering serve batching and pipelining
// that a committer waiting for each answer does not use). The broker sees
// the same requests either way. Not safe for concurrent use.
type wireConn struct {
	nc       net.Conn
	stop     func() bool // ends closing nc when ctx ends
	br       *bufio.Reader
	f        *kmsg.RequestFormatter
	corr     int32
	buf      []byte
	versions map[int16]int16 // the broker's highest version of each API
}

// dialWire connects to addr and asks the broker's API versions, as every
// client does first. The connection is closed when ctx ends, which fails a
// request in flight.
func dialWire(ctx context.Context, addr string) (*wireConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &wireConn{nc: nc, br: bufio.NewReader(nc), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("sediment-bench")), versions: map[int16]int16{}}
	c.stop = context.AfterFunc(ctx, func() { nc.Close() })
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "sediment-bench", "1"
	req.SetVersion(3)
	resp, err := c.do(req)
	if err == nil {
		err = kerr.ErrorForCode(resp.(*kmsg.ApiVersionsResponse).ErrorCode)
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("ApiVersions: %w", err)
	}
	for _, k := range resp.(*kmsg.ApiVersionsResponse).ApiKeys {
		c.versions[k.ApiKey] = k.MaxVersion
	}
	return c, nil
}

func (c *wireConn) close() {
	c.stop()
	c.nc.Close()
}

// version sets req to the highest version both kmsg and the broker know.
func (c *wireConn) version(req kmsg.Request) error {
	max, ok := c.versions[req.Key()]
	if !ok {
		return fmt.Errorf("the broker does not serve %s", kmsg.NameForKey(req.Key()))
	}
	req.SetVersion(min(max, req.MaxVersion()))
	return nil
}

// do sends req (at the version it has) and returns its response, within
// wireTimeout.
func (c *wireConn) do(req kmsg.Request) (kmsg.Response, error) {
	if err := c.nc.SetDeadline(time.Now().Add(wireTimeout)); err != nil {
		return nil, err
	}
	c.corr++
	c.buf = c.f.AppendRequest(c.buf[:0], req, c.corr)
	if _, err := c.nc.Write(c.buf); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("response of %d bytes", n)
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	body := c.buf[:n]
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, err
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != c.corr {
		return nil, fmt.Errorf("response to correlation id %d, want %d", corr, c.corr)
	}
	resp := req.ResponseKind()
	rd := kbin.Reader{Src: body[4:]}
	// Flexible responses have tagged fields in their header, except
	// ApiVersions (KIP-511: a client must read it whatever it sent).
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		kmsg.SkipTags(&rd)
	}
	if !rd.Ok() {
		return nil, fmt.Errorf("truncated %s response header", kmsg.NameForKey(req.Key()))
	}
	if err := resp.ReadFrom(rd.Src); err != nil {
		return nil, fmt.Errorf("decoding %s v%d response: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

// wireTimeout bounds each round trip: a broker that takes longer fails the
// measurement instead of hanging it.
const wireTimeout = 30 * time.Second
