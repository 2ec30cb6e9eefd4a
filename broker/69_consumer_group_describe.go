package broker

// ConsumerGroupDescribe, versions 0-1 (KIP-848): consumer groups with their
// epochs, members, assignments and target assignments.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleConsumerGroupDescribe(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := c.srv.groups.ConsumerGroupDescribe(req)
	c.consumerGroupDescribeFilter(req, resp)
	return immediate(resp)
}
