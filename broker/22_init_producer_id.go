package broker

// InitProducerID, versions 0-5. Idempotent producers are answered here: a
// cluster-unique producer id (blocks are reserved in etcd) with epoch 0, or
// a bump of the epoch of a producer that presents its current id and epoch
// (KIP-360). A transactional id goes to the transaction coordinator
// (broker/txn), which takes its producer ids from the same allocator.

import (
	"context"
	"math"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleInitProducerID(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch { // authorization (authz.go)
	case req.TransactionalID != nil && !c.authorizedTxnID(kmsg.ACLOperationWrite, *req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return immediate(resp)
	case req.TransactionalID == nil && !c.authorizedIdempotent():
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return immediate(resp)
	}
	if req.TransactionalID != nil {
		return &pending{complete: func(ctx context.Context) outgoing {
			return outgoing{resp: c.srv.txns.InitProducerID(ctx, req)}
		}}, nil
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return immediate(resp)
	}
	ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(0))
	defer cancel()
	id, err := c.srv.pids.next(ctx)
	if err != nil {
		c.log.Error("allocating a producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return immediate(resp)
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return immediate(resp)
}

// producerIDs hands out ids from blocks reserved in etcd, so two brokers
// never give out the same id.
type producerIDs struct {
	alloc interface {
		AllocateProducerIDs(ctx context.Context, n int64) (int64, error)
	}
	mu         sync.Mutex
	next_, end int64
}

const producerIDBlock = 1000

func newProducerIDs(a interface {
	AllocateProducerIDs(ctx context.Context, n int64) (int64, error)
}) *producerIDs {
	return &producerIDs{alloc: a}
}

// NextProducerID is next for the transaction coordinator (txn.ProducerIDs).
func (p *producerIDs) NextProducerID(ctx context.Context) (int64, error) { return p.next(ctx) }

func (p *producerIDs) next(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next_ >= p.end {
		first, err := p.alloc.AllocateProducerIDs(ctx, producerIDBlock)
		if err != nil {
			return -1, err
		}
		p.next_, p.end = first, first+producerIDBlock
	}
	id := p.next_
	p.next_++
	return id, nil
}
