package broker

// DescribeGroups, versions 0-5.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDescribeGroups(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.DescribeGroupsRequest)
	resp := c.srv.groups.DescribeGroups(req)
	c.describeGroupsFilter(req, resp)
	return immediate(resp)
}
