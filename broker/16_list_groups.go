package broker

// ListGroups, versions 0-5 (v4: states filter, v5: types filter): the
// groups this broker coordinates.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleListGroups(c *conn, r *request) (*pending, error) {
	resp := c.srv.groups.ListGroups(r.kreq.(*kmsg.ListGroupsRequest))
	c.listGroupsFilter(resp)
	return immediate(resp)
}
