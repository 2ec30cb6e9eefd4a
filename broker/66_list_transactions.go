package broker

// ListTransactions, versions 0-2: the transactional ids this broker
// coordinates, filtered by state, producer id, duration (v1+) and a pattern
// on the id (v2+). Admin clients ask every broker and merge the answers.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleListTransactions(c *conn, r *request) (*pending, error) {
	resp := c.srv.txns.ListTransactions(r.kreq.(*kmsg.ListTransactionsRequest))
	c.listTransactionsFilter(resp)
	return immediate(resp)
}
