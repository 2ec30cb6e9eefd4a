package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scramMechanism is the mechanism the phase authenticates with.
const scramMechanism = "SCRAM-SHA-512"

// scramClient is the client side of SCRAM-SHA-512 (RFC 5802) for the
// handshake measurement. It caches the salted password per salt and
// iteration count, as RFC 5802 section 5.1 allows a client to: the 4096
// PBKDF2 iterations are the client's cost, not the broker's (the broker keeps
// StoredKey and ServerKey and computes a few HMACs per exchange), and a bench
// that paid them on every connection would measure its own CPU on the two
// cores it shares with the broker. franz-go's SCRAM mechanism, which the
// throughput clients use, recomputes it per connection; that costs nothing
// there, with one connection per client. Safe for concurrent use.
type scramClient struct {
	user, pass string
	mu         sync.Mutex
	salted     map[string][]byte // salt + "," + iterations -> SaltedPassword
}

// scramExchange is one exchange in progress.
type scramExchange struct {
	c           *scramClient
	nonce       string
	clientFirst string // client-first-message-bare
	serverSig   []byte // the ServerSignature the server must send
}

func newScramClient(user, pass string) *scramClient {
	return &scramClient{user: user, pass: pass, salted: map[string][]byte{}}
}

// start returns a new exchange and its client-first-message.
func (c *scramClient) start() (*scramExchange, []byte) {
	var nb [18]byte
	_, _ = rand.Read(nb[:]) // crypto/rand.Read never fails
	x := &scramExchange{c: c, nonce: base64.RawURLEncoding.EncodeToString(nb[:])}
	// The bench's user name has no ',' or '=' to escape.
	x.clientFirst = "n=" + c.user + ",r=" + x.nonce
	return x, []byte("n,," + x.clientFirst)
}

// saltedPassword is Hi(password, salt, iterations), computed once per pair.
func (c *scramClient) saltedPassword(salt []byte, iterations int) ([]byte, error) {
	k := string(salt) + "," + strconv.Itoa(iterations)
	c.mu.Lock()
	defer c.mu.Unlock()
	if sp, ok := c.salted[k]; ok {
		return sp, nil
	}
	sp, err := pbkdf2.Key(sha512.New, c.pass, salt, iterations, sha512.Size)
	if err != nil {
		return nil, err
	}
	c.salted[k] = sp
	return sp, nil
}

// maxScramIterations bounds the iteration count a server may ask for, so a
// broken broker cannot stall the bench in PBKDF2 (Kafka allows 16384).
const maxScramIterations = 1 << 16

// final answers the server-first-message with the client-final-message.
func (x *scramExchange) final(serverFirst []byte) ([]byte, error) {
	var nonce, salt64, iters string
	for f := range strings.SplitSeq(string(serverFirst), ",") {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case !ok || len(k) != 1:
			return nil, fmt.Errorf("server-first-message %q: malformed attribute %q", serverFirst, f)
		case k == "r":
			nonce = v
		case k == "s":
			salt64 = v
		case k == "i":
			iters = v
		case k == "m":
			return nil, fmt.Errorf("server-first-message %q: a mandatory extension", serverFirst)
		}
	}
	if !strings.HasPrefix(nonce, x.nonce) || len(nonce) == len(x.nonce) {
		return nil, fmt.Errorf("server-first-message %q: the nonce does not extend the client's", serverFirst)
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return nil, fmt.Errorf("server-first-message %q: bad salt", serverFirst)
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < 4096 || n > maxScramIterations {
		return nil, fmt.Errorf("server-first-message %q: iteration count %q, want 4096 to %d", serverFirst, iters, maxScramIterations)
	}
	sp, err := x.c.saltedPassword(salt, n)
	if err != nil {
		return nil, err
	}
	withoutProof := "c=biws,r=" + nonce // biws: base64 of the gs2 header "n,,"
	authMsg := []byte(x.clientFirst + "," + string(serverFirst) + "," + withoutProof)
	clientKey := hmacSHA512(sp, []byte("Client Key"))
	storedKey := sha512.Sum512(clientKey)
	proof := hmacSHA512(storedKey[:], authMsg)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	x.serverSig = hmacSHA512(hmacSHA512(sp, []byte("Server Key")), authMsg)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// verify checks the server-final-message: the server proved it knows the
// user's ServerKey.
func (x *scramExchange) verify(serverFinal []byte) error {
	s := string(serverFinal)
	if e, ok := strings.CutPrefix(s, "e="); ok {
		return fmt.Errorf("server-final-message: error %q", e)
	}
	v, ok := strings.CutPrefix(s, "v=")
	if !ok {
		return fmt.Errorf("server-final-message %q: no verifier", s)
	}
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	sig, err := base64.StdEncoding.DecodeString(v)
	if err != nil || !hmac.Equal(sig, x.serverSig) {
		return errors.New("server-final-message: wrong server signature")
	}
	return nil
}

func hmacSHA512(key, msg []byte) []byte {
	m := hmac.New(sha512.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// handshakeResult is the handshake measurement.
type handshakeResult struct {
	tls        string          // what TLS negotiated: version, cipher suite, key exchange
	conns      int             // concurrent connectors
	handshakes int             // completed in elapsed
	elapsed    time.Duration   // from the start to the last connector's end
	latencies  []time.Duration // each handshake's, sorted: dial to authenticated
}

func (h handshakeResult) perSec() float64 { return float64(h.handshakes) / h.elapsed.Seconds() }

// measureHandshakes runs conns connectors against the SASL_SSL listener at
// addr for d: each dials TCP, completes a full TLS handshake (no session
// resumption), then sends ApiVersions, SaslHandshake and the two
// SaslAuthenticate round trips of SCRAM, checks the server's signature,
// closes, and starts over. A handshake counts once authenticated. The first
// failure ends the measurement with its error.
func measureHandshakes(ctx context.Context, addr string, tlsCfg *tls.Config, sc *scramClient, conns int, d time.Duration) (handshakeResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		count    atomic.Int64
		errOnce  sync.Once
		firstErr error
		lats     = make([][]time.Duration, conns)
	)
	start := time.Now()
	deadline := start.Add(d)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if _, err := scramHandshake(ctx, addr, tlsCfg, sc); err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = err; cancel() })
					}
					return
				}
				lats[i] = append(lats[i], time.Since(t0))
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	res := handshakeResult{conns: conns, handshakes: int(count.Load()), elapsed: time.Since(start)}
	if firstErr != nil {
		return res, fmt.Errorf("after %d handshakes: %w", res.handshakes, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.latencies = slices.Concat(lats...)
	slices.Sort(res.latencies)
	return res, nil
}

// scramHandshake is one connection: TCP, TLS, ApiVersions, SaslHandshake,
// SaslAuthenticate twice. The Kafka requests are kmsg's, on a wireConn. It
// returns what TLS negotiated.
func scramHandshake(ctx context.Context, addr string, tlsCfg *tls.Config, sc *scramClient) (tls.ConnectionState, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: wireTimeout}, Config: tlsCfg}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, fmt.Errorf("TLS dial: %w", err)
	}
	state := nc.(*tls.Conn).ConnectionState()
	err = scramOver(ctx, nc, sc)
	return state, err
}

// scramOver runs ApiVersions, SaslHandshake and the SCRAM exchange on nc,
// and closes it.
func scramOver(ctx context.Context, nc net.Conn, sc *scramClient) error {
	c := &wireConn{nc: nc, br: bufio.NewReader(nc), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("sediment-bench"))}
	c.stop = context.AfterFunc(ctx, func() { nc.Close() })
	defer c.close()

	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "sediment-bench", "1"
	av.SetVersion(3)
	resp, err := c.do(av)
	if err == nil {
		err = kerr.ErrorForCode(resp.(*kmsg.ApiVersionsResponse).ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("ApiVersions: %w", err)
	}

	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1) // v1: SaslAuthenticate requests follow, not raw tokens
	hs.Mechanism = scramMechanism
	if resp, err = c.do(hs); err == nil {
		if r := resp.(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
			err = fmt.Errorf("%w (enabled: %v)", kerr.ErrorForCode(r.ErrorCode), r.SupportedMechanisms)
		}
	}
	if err != nil {
		return fmt.Errorf("SaslHandshake: %w", err)
	}

	x, msg := sc.start()
	serverFirst, err := saslAuthenticate(c, msg)
	if err != nil {
		return fmt.Errorf("SaslAuthenticate (client-first): %w", err)
	}
	if msg, err = x.final(serverFirst); err != nil {
		return err
	}
	serverFinal, err := saslAuthenticate(c, msg)
	if err != nil {
		return fmt.Errorf("SaslAuthenticate (client-final): %w", err)
	}
	return x.verify(serverFinal)
}

// saslAuthenticate sends one SaslAuthenticate v2 and returns the server's
// bytes.
func saslAuthenticate(c *wireConn, msg []byte) ([]byte, error) {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SetVersion(2)
	req.SASLAuthBytes = msg
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.SASLAuthenticateResponse)
	if r.ErrorCode != 0 {
		err := kerr.ErrorForCode(r.ErrorCode)
		if r.ErrorMessage != nil {
			err = fmt.Errorf("%w: %s", err, *r.ErrorMessage)
		}
		return nil, err
	}
	if len(r.SASLAuthBytes) == 0 {
		return nil, errors.New("empty SASL bytes")
	}
	return bytes.Clone(r.SASLAuthBytes), nil
}

// describeTLS names what a connection negotiated.
func describeTLS(st tls.ConnectionState) string {
	return fmt.Sprintf("%s, %s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID)
}
