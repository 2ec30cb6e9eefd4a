package broker

// The SASL state of a connection on a SASL_PLAINTEXT or SASL_SSL listener,
// as Kafka's SaslServerAuthenticator keeps it: before authentication only
// ApiVersions and SaslHandshake are served (anything else closes the
// connection); after SaslHandshake v1 the client sends SaslAuthenticate
// requests, after v0 bare size-prefixed SASL tokens; once authenticated the
// connection carries the SASL user's principal. With connections.max.reauth.ms
// set, the session expires: the client re-authenticates with a new
// SaslHandshake (KIP-368) and a connection whose session expired is closed
// on its next other request.

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/security"
)

const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
)

type saslState struct {
	ex            security.Exchange // in progress; nil between exchanges
	raw           bool              // ex came from a v0 handshake: frames are bare tokens
	mechanism     string            // of the first successful exchange
	authenticated bool
	expires       time.Time // zero: never
}

// saslGate decides whether a request may be served in the connection's SASL
// state. An error closes the connection, as Kafka does.
func (c *conn) saslGate(key int16) error {
	st := c.sasl
	switch {
	case st.ex != nil:
		if key != saslAuthenticateKey {
			return fmt.Errorf("unexpected %s request during SASL authentication", apiName(key))
		}
	case !st.authenticated:
		if key != apiVersionsKey && key != saslHandshakeKey {
			return fmt.Errorf("unexpected %s request before SASL authentication", apiName(key))
		}
	case key == saslAuthenticateKey:
		return fmt.Errorf("unexpected %s request without a SaslHandshake", apiName(key))
	case key != saslHandshakeKey && !st.expires.IsZero() && time.Now().After(st.expires):
		return fmt.Errorf("SASL session of %s expired (connections.max.reauth.ms) and was not renewed", c.principal)
	}
	return nil
}

func apiName(key int16) string {
	return kmsg.NameForKey(key)
}

// saslStep feeds one client token to the exchange in progress. It returns
// the server's token, or the error that ends the connection (it is safe to
// show to the client). On success it records the principal and the
// session's expiry; re-authentication must keep the principal.
func (c *conn) saslStep(token []byte) (reply []byte, lifetime time.Duration, err error) {
	st := c.sasl
	mech := string(st.ex.Mechanism())
	reply, done, err := st.ex.Next(token)
	if err != nil {
		st.ex = nil
		c.countAuth(mech, false)
		return nil, 0, err
	}
	if !done {
		return reply, 0, nil
	}
	p := security.UserPrincipal(st.ex.User())
	st.ex = nil
	if st.authenticated && p != c.principal {
		c.countAuth(mech, false)
		return nil, 0, fmt.Errorf("%w: re-authentication as %s on a connection of %s", security.ErrAuthenticationFailed, p, c.principal)
	}
	c.countAuth(mech, true)
	c.principal, st.authenticated = p, true
	c.log.Debug("connection authenticated", "principal", p.String(), "listener", c.listenerName(), "mechanism", st.mechanism)
	lifetime = c.srv.cfg.Security.MaxReauth
	if lifetime > 0 {
		st.expires = time.Now().Add(lifetime)
	}
	return reply, lifetime, nil
}

// rawSASL handles a bare SASL token after a v0 SaslHandshake. A failure
// closes the connection without an answer, as Kafka does for v0 clients.
func (c *conn) rawSASL(body []byte) (*pending, error) {
	reply, _, err := c.saslStep(body)
	if c.sasl.ex == nil {
		c.sasl.raw = false
	}
	req := &request{key: -1, at: time.Now()}
	if err != nil {
		c.log.Info("SASL authentication failed", "err", err)
		return &pending{req: req, noResponse: true, closeAfter: true}, nil
	}
	return &pending{req: req, raw: reply, isRaw: true}, nil
}

// writeRaw writes a bare size-prefixed SASL token.
func (c *conn) writeRaw(b []byte) error {
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	_, err := c.nc.Write(append(buf, b...))
	return err
}
