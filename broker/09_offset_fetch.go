package broker

// OffsetFetch, versions 0-9: committed offsets of one group (v0-7) or of a
// batch of groups (v8+); all of a group's offsets when no topics are named
// (v2+).

import "github.com/twmb/franz-go/pkg/kmsg"

func handleOffsetFetch(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.OffsetFetchRequest)
	resp := c.srv.groups.OffsetFetch(req)
	c.offsetFetchFilter(req, resp)
	return immediate(resp)
}
