package meta

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Registration is a broker's membership: brokers/<id> bound to a lease that is kept alive
// until the context given to RegisterBroker is done or Close is called. Safe for concurrent use.
type Registration struct {
	store  *Store
	key    string
	id     int32
	lease  clientv3.LeaseID
	cancel context.CancelFunc
	done   chan struct{} // closed when keep-alives stop

	closeOnce sync.Once
	closeErr  error
}

// RegisterBroker puts brokers/<id> bound to a new lease of ttl (rounded up to whole seconds;
// etcd raises TTLs below its minimum, about 1.5 election timeouts) and keeps the lease alive
// until ctx is done or the registration is closed. It fails with ErrBrokerIDInUse while
// another live lease holds the id — including this broker's own previous incarnation, whose
// lease lives on for up to ttl after a crash; callers retry for that long.
func (s *Store) RegisterBroker(ctx context.Context, b BrokerInfo, ttl time.Duration) (*Registration, error) {
	if b.NodeID < 0 {
		return nil, fmt.Errorf("%w: broker id %d", ErrInvalid, b.NodeID)
	}
	secs := int64(math.Ceil(ttl.Seconds()))
	if secs < 1 {
		return nil, fmt.Errorf("%w: session ttl %v", ErrInvalid, ttl)
	}
	grant, err := s.cli.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("meta: granting broker %d a lease: %w", b.NodeID, err)
	}
	key := s.brokerKey(b.NodeID)
	put := func() (*clientv3.TxnResponse, error) {
		return s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, encode(brokerValue{V: valueVersion, BrokerInfo: b}), clientv3.WithLease(grant.ID))).
			Else(clientv3.OpGet(key)).
			Commit()
	}
	resp, err := put()
	if err == nil && !resp.Succeeded && b.DirectoryID != "" {
		// A restart after a crash finds its own previous registration, whose
		// lease outlives the process by up to the TTL. Same directory id means
		// the same (exclusively locked) data directory: the holder is dead.
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
			old, derr := decodeBroker(key, kvs[0].Value)
			if derr == nil && old.DirectoryID == b.DirectoryID {
				s.log.Info("taking over the registration of this broker's previous incarnation", "node_id", b.NodeID)
				if _, rerr := s.cli.Revoke(ctx, clientv3.LeaseID(kvs[0].Lease)); rerr != nil && !errors.Is(rerr, rpctypes.ErrLeaseNotFound) {
					s.revoke(grant.ID)
					return nil, fmt.Errorf("meta: revoking broker %d's stale lease: %w", b.NodeID, rerr)
				}
				resp, err = put()
			}
		}
	}
	if err != nil || !resp.Succeeded {
		s.revoke(grant.ID)
		if err != nil {
			return nil, fmt.Errorf("meta: registering broker %d: %w", b.NodeID, err)
		}
		return nil, fmt.Errorf("%w: %d", ErrBrokerIDInUse, b.NodeID)
	}

	kctx, cancel := context.WithCancel(ctx)
	ka, err := s.cli.KeepAlive(kctx, grant.ID)
	if err != nil {
		cancel()
		s.revoke(grant.ID)
		return nil, fmt.Errorf("meta: keeping broker %d's lease alive: %w", b.NodeID, err)
	}
	r := &Registration{store: s, key: key, id: b.NodeID, lease: grant.ID, cancel: cancel, done: make(chan struct{})}
	go r.keepAlive(kctx, ka)
	s.log.Info("registered broker", "node_id", b.NodeID, "lease", fmt.Sprintf("%x", int64(grant.ID)), "ttl_s", grant.TTL)
	return r, nil
}

// keepAlive drains keep-alive responses until the channel closes: ctx done, Close, or the
// lease lost (expired during a partition longer than the TTL, or revoked by someone else).
func (r *Registration) keepAlive(ctx context.Context, ka <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(r.done)
	for range ka {
	}
	if ctx.Err() == nil {
		r.store.log.Warn("broker lease lost; brokers/ entry is gone", "node_id", r.id,
			"lease", fmt.Sprintf("%x", int64(r.lease)))
	}
}

// revoke revokes a lease on a detached context: it runs on cleanup paths where the caller's
// context may already be done.
func (s *Store) revoke(id clientv3.LeaseID) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.cli.Revoke(ctx, id)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("meta: revoking lease %x: %w", int64(id), err)
	}
	return nil
}

// Lease returns the id of the lease brokers/<id> is bound to: the broker epoch, and what
// RevokeBrokerLease takes. A controller candidacy is bound to the same lease through
// Store.NewElection.
func (r *Registration) Lease() int64 { return int64(r.lease) }

// Done is closed when the lease stops being kept alive: the registration's context is done,
// Close was called, or the lease was lost. After a loss the broker is no longer registered.
func (r *Registration) Done() <-chan struct{} { return r.done }

// Update rewrites this broker's BrokerInfo (e.g. changed listeners) on the same lease. It
// fails with ErrConflict if brokers/<id> is no longer bound to this registration's lease.
func (r *Registration) Update(ctx context.Context, b BrokerInfo) error {
	if b.NodeID != r.id {
		return fmt.Errorf("%w: registration of broker %d cannot update broker %d", ErrInvalid, r.id, b.NodeID)
	}
	resp, err := r.store.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(r.key), "=", r.lease)).
		Then(clientv3.OpPut(r.key, encode(brokerValue{V: valueVersion, BrokerInfo: b}), clientv3.WithLease(r.lease))).
		Commit()
	if err != nil {
		return fmt.Errorf("meta: updating broker %d: %w", r.id, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: broker %d no longer holds its registration", ErrConflict, r.id)
	}
	return nil
}

// Close stops the keep-alives and revokes the lease, which deletes brokers/<id> at once.
// Safe to call more than once.
func (r *Registration) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		<-r.done
		r.closeErr = r.store.revoke(r.lease)
	})
	return r.closeErr
}

// RevokeBrokerLease ends another broker's registration (and with it its
// controller candidacy) at once. Brokers call it only for a broker whose
// process is known to be gone, so the cluster need not wait for the lease to
// expire; a live broker whose lease is revoked registers again.
func (s *Store) RevokeBrokerLease(ctx context.Context, lease int64) error {
	if _, err := s.cli.Revoke(ctx, clientv3.LeaseID(lease)); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("meta: revoking lease %x: %w", lease, err)
	}
	return nil
}
