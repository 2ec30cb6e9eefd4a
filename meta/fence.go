package meta

import clientv3 "go.etcd.io/etcd/client/v3"

// Fence is a condition a metadata write carries: the write happens only while
// every fence it carries still holds, in the same etcd transaction. Fences are
// how a deposed leader or controller is kept from overwriting newer state:
// Store.PartitionUnchanged fences on a partition state as it was read,
// Election.Guard on the controllership.
//
// Fence is opaque so that callers never see etcd types; the zero Fence holds
// always.
type Fence struct {
	cmp *clientv3.Cmp
}

// conds returns the transaction conditions of fences, skipping zero ones.
func conds(first clientv3.Cmp, fences []Fence) []clientv3.Cmp {
	out := make([]clientv3.Cmp, 0, 1+len(fences))
	out = append(out, first)
	for _, f := range fences {
		if f.cmp != nil {
			out = append(out, *f.cmp)
		}
	}
	return out
}

func fenceOf(c clientv3.Cmp) Fence { return Fence{cmp: &c} }
