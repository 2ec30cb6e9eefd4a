package broker

// ApiVersions, versions 0-4. The key list is derived from the registered
// handlers (apis.go); a request of a newer version than we serve gets the
// KIP-511 v0 reply from conn.dispatch.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleApiVersions(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = c.srv.apiVersionKeys()
	return immediate(resp)
}
