package broker

// DescribeTransactions, version 0: the state of the transactional ids this
// broker coordinates (admin clients ask each id's coordinator).

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDescribeTransactions(c *conn, r *request) (*pending, error) {
	resp := c.srv.txns.DescribeTransactions(r.kreq.(*kmsg.DescribeTransactionsRequest))
	c.describeTransactionsFilter(resp)
	return immediate(resp)
}
