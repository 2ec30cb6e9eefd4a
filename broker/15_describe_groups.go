package broker

// DescribeGroups, versions 0-5.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDescribeGroups(c *conn, r *request) (*pending, error) {
	return immediate(c.srv.groups.DescribeGroups(r.kreq.(*kmsg.DescribeGroupsRequest)))
}
