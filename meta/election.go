package meta

import (
	"context"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Election is this broker's candidacy for controller, run with etcd's
// concurrency.Election under controller/ and bound to the broker's
// registration lease: a broker that loses its registration loses the
// controllership with it.
//
// Not safe for concurrent use; owned by the broker's controller loop.
type Election struct {
	sess   *concurrency.Session
	el     *concurrency.Election
	nodeID int32
}

// NewElection prepares a candidacy bound to reg's lease.
func (s *Store) NewElection(nodeID int32, reg *Registration) (*Election, error) {
	sess, err := concurrency.NewSession(s.cli, concurrency.WithLease(reg.lease))
	if err != nil {
		return nil, fmt.Errorf("meta: election session: %w", err)
	}
	return &Election{sess: sess, el: concurrency.NewElection(sess, s.prefix+controllerKey), nodeID: nodeID}, nil
}

// Campaign blocks until this broker is the controller or ctx ends.
func (e *Election) Campaign(ctx context.Context) error {
	if err := e.el.Campaign(ctx, strconv.Itoa(int(e.nodeID))); err != nil {
		return fmt.Errorf("meta: campaigning for controller: %w", err)
	}
	return nil
}

// Guard is a fence that holds only while this broker is still the elected
// controller; every controller write carries it.
func (e *Election) Guard() Fence {
	return fenceOf(clientv3.Compare(clientv3.CreateRevision(e.el.Key()), "=", e.el.Rev()))
}

// Epoch identifies this term of controllership (its key's create revision).
func (e *Election) Epoch() int64 { return e.el.Rev() }

// Done is closed when the lease behind the candidacy is gone.
func (e *Election) Done() <-chan struct{} { return e.sess.Done() }

// Resign gives up the controllership (controlled shutdown).
func (e *Election) Resign(ctx context.Context) error { return e.el.Resign(ctx) }
