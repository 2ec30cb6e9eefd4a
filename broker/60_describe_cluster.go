package broker

// DescribeCluster, versions 0-1: the live brokers, the controller and the
// cluster id.

import "github.com/twmb/franz-go/pkg/kmsg"

func handleDescribeCluster(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.DescribeClusterRequest)
	s := c.srv
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = s.store.ClusterID()
	resp.ControllerID = s.controllerID()
	resp.EndpointType = 1
	if req.IncludeClusterAuthorizedOperations { // KIP-430 (authz.go)
		resp.ClusterAuthorizedOperations = c.clusterOps()
	}
	for _, b := range s.cache.Brokers() {
		host, port, ok := endpointOn(b, c.listenerName())
		if !ok {
			continue
		}
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port = b.NodeID, host, port
		db.Rack = rackPtr(b)
		resp.Brokers = append(resp.Brokers, db)
	}
	return immediate(resp)
}
