package broker

// ConsumerGroupDescribe, versions 0-1 (KIP-848): consumer groups with their
// epochs, members, assignments and target assignments.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleConsumerGroupDescribe(c *conn, r *request) (*pending, error) {
	return immediate(c.srv.groups.ConsumerGroupDescribe(r.kreq.(*kmsg.ConsumerGroupDescribeRequest)))
}
