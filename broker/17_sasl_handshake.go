package broker

// SaslHandshake, versions 0-1: picks the mechanism of the exchange that
// follows (SaslAuthenticate after v1, bare tokens after v0), or of a
// re-authentication (KIP-368, v1 only, same mechanism). On a listener
// without SASL it is ILLEGAL_SASL_STATE, as in Kafka.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleSaslHandshake(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	st := c.sasl
	if st == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return immediate(resp)
	}
	resp.SupportedMechanisms = c.srv.sec.auth.Mechanisms()
	if st.authenticated && (r.version == 0 || req.Mechanism != st.mechanism) {
		// Kafka re-authenticates only with v1 and the original mechanism.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		if req.Mechanism != st.mechanism {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		}
		return &pending{resp: resp, closeAfter: true}, nil
	}
	ex, err := c.srv.sec.auth.Start(req.Mechanism)
	if err != nil {
		c.log.Info("SASL handshake refused", "mechanism", req.Mechanism)
		c.countAuth("unsupported", false)
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return &pending{resp: resp, closeAfter: true}, nil
	}
	st.ex, st.raw = ex, r.version == 0
	if !st.authenticated {
		st.mechanism = req.Mechanism
	}
	return immediate(resp)
}
