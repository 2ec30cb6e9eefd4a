package meta

import (
	"context"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// producerIDsKey holds the next unallocated idempotent-producer id.
const producerIDsKey = "producer-ids"

// AllocateProducerIDs reserves n consecutive producer ids for this broker and
// returns the first. The counter under producer-ids only grows, by a
// compare-and-swap, so no two brokers ever hand out the same id.
func (s *Store) AllocateProducerIDs(ctx context.Context, n int64) (int64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("%w: producer id block of %d", ErrInvalid, n)
	}
	key := s.prefix + producerIDsKey
	for {
		resp, err := s.cli.Get(ctx, key)
		if err != nil {
			return 0, fmt.Errorf("meta: reading %s: %w", key, err)
		}
		var (
			next int64
			cmp  clientv3.Cmp
		)
		if len(resp.Kvs) == 0 {
			cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		} else {
			kv := resp.Kvs[0]
			next, err = strconv.ParseInt(string(kv.Value), 10, 64)
			if err != nil || next < 0 {
				return 0, fmt.Errorf("meta: %s holds %q, not a producer id", key, kv.Value)
			}
			cmp = clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)
		}
		txn, err := s.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, strconv.FormatInt(next+n, 10))).Commit()
		if err != nil {
			return 0, fmt.Errorf("meta: reserving producer ids: %w", err)
		}
		if txn.Succeeded {
			return next, nil
		}
		// Another broker reserved a block first; read again.
	}
}
