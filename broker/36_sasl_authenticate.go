package broker

// SaslAuthenticate, versions 0-2: one step of the exchange a v1
// SaslHandshake started. A failure is SASL_AUTHENTICATION_FAILED with the
// exchange's message (never a secret; the same for an unknown user and a
// wrong password), and the connection is closed after the response.
// session_lifetime_ms is connections.max.reauth.ms (0: the session never
// expires). On a listener without SASL it is ILLEGAL_SASL_STATE.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleSaslAuthenticate(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if c.sasl == nil || c.sasl.ex == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate without a SaslHandshake on a SASL listener"
		resp.ErrorMessage = &msg
		return immediate(resp)
	}
	reply, lifetime, err := c.saslStep(req.SASLAuthBytes)
	if err != nil {
		c.log.Info("SASL authentication failed", "err", err)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := err.Error()
		resp.ErrorMessage = &msg
		return &pending{resp: resp, closeAfter: true}, nil
	}
	resp.SASLAuthBytes = reply
	resp.SessionLifetimeMillis = lifetime.Milliseconds()
	return immediate(resp)
}
