package broker

// Heartbeat, versions 0-4: keeps a classic group member's session alive and
// tells it to rejoin (REBALANCE_IN_PROGRESS).

import "github.com/twmb/franz-go/pkg/kmsg"

func handleHeartbeat(c *conn, r *request) (*pending, error) {
	return immediate(c.srv.groups.Heartbeat(r.kreq.(*kmsg.HeartbeatRequest)))
}
