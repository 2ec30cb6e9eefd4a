package repl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errAuth reports a leader that refused this broker's SASL credentials.
var errAuth = errors.New("repl: SASL authentication to the leader failed")

// authenticate runs SaslHandshake v1 and SaslAuthenticate with the configured mechanism
// and notes when the session must be renewed: at 90% of the lifetime the leader grants
// (connections.max.reauth.ms), as Kafka's clients do.
func (c *conn) authenticate(ctx context.Context) error {
	c.authing = true
	defer func() { c.authing = false }()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = c.sasl.Name()
	kresp, err := c.request(ctx, hs, c.saslTimeout)
	if err != nil {
		return err
	}
	if code := kresp.(*kmsg.SASLHandshakeResponse).ErrorCode; code != 0 {
		return fmt.Errorf("%w: SaslHandshake %s at %s: %w", errAuth, hs.Mechanism, c.addr, kerr.ErrorForCode(code))
	}
	host, _, err := net.SplitHostPort(c.addr)
	if err != nil {
		host = c.addr
	}
	sess, msg, err := c.sasl.Authenticate(ctx, host)
	if err != nil {
		return fmt.Errorf("%w: %w", errAuth, err)
	}
	start := time.Now()
	for range 8 { // SCRAM takes two rounds, PLAIN one
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = 1
		req.SASLAuthBytes = msg
		kresp, err := c.request(ctx, req, c.saslTimeout)
		if err != nil {
			return err
		}
		resp := kresp.(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != 0 {
			text := ""
			if resp.ErrorMessage != nil {
				text = *resp.ErrorMessage
			}
			return fmt.Errorf("%w at %s: %w: %s", errAuth, c.addr, kerr.ErrorForCode(resp.ErrorCode), text)
		}
		done, next, err := sess.Challenge(resp.SASLAuthBytes)
		if err != nil {
			return fmt.Errorf("%w: %w", errAuth, err)
		}
		if done {
			c.reauthAt = time.Time{}
			if ms := resp.SessionLifetimeMillis; ms > 0 {
				c.reauthAt = start.Add(time.Duration(ms) * time.Millisecond * 9 / 10)
			}
			return nil
		}
		msg = next
	}
	return fmt.Errorf("%w: %s at %s did not complete", errAuth, c.sasl.Name(), c.addr)
}

// reauthenticate renews the SASL session before a request once it is due (KIP-368).
func (c *conn) reauthenticate(ctx context.Context) error {
	if c.sasl == nil || c.authing || c.reauthAt.IsZero() || time.Now().Before(c.reauthAt) {
		return nil
	}
	return c.authenticate(ctx)
}
