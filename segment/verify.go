package segment

import "fmt"

// TxnGuard is KIP-890 part 1's verification guard: the leader takes one
// before it asks the transaction coordinator whether a producer's transaction
// includes this partition, and appends the transaction's first batch with
// it. A marker for the producer written meanwhile (the transaction ended,
// say aborted by a timeout) drops the guard, so that the late batch cannot
// start a transaction that no coordinator will ever end (a hanging
// transaction holding the last stable offset back). The zero guard means no
// verification was asked for.
type TxnGuard uint64

// verifications holds the guards handed out, by producer id. Guarded by
// Log.mu; in memory only, as Kafka's are: a leader that restarts or changes
// has none, and batches verified under the old one are refused.
type verifications struct {
	m    map[int64]TxnGuard
	last TxnGuard
}

// StartTxnVerification returns the guard under which producerID's
// transactional data may start a transaction in this log, or 0 when the
// producer has a transaction ongoing here already (its batches need no
// verification). A producer verifying twice at once gets the same guard.
func (l *Log) StartTxnVerification(producerID int64) TxnGuard {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.producers.m[producerID]; e != nil && e.txnFirstOffset >= 0 {
		return 0
	}
	if g, ok := l.verifying.m[producerID]; ok {
		return g
	}
	if l.verifying.m == nil {
		l.verifying.m = map[int64]TxnGuard{}
	}
	l.verifying.last++
	l.verifying.m[producerID] = l.verifying.last
	return l.verifying.last
}

// EndTxnVerification drops g, producerID's guard, when its verification
// failed; a guard that was replaced or dropped meanwhile is left alone.
func (l *Log) EndTxnVerification(producerID int64, g TxnGuard) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.verifying.m[producerID] == g {
		delete(l.verifying.m, producerID)
	}
}

// checkGuardLocked is AppendLeader's check of a transactional batch h that
// would start a transaction (its producer has none ongoing): with a guard,
// it must still be the producer's. mu held.
func (l *Log) checkGuardLocked(h *BatchHeader, g TxnGuard) error {
	if g == 0 || l.verifying.m[h.ProducerID] == g {
		return nil
	}
	return fmt.Errorf("%w: producer %d's transaction was verified before a marker ended it", ErrTxnNotVerified, h.ProducerID)
}

// dropGuardLocked forgets producerID's guard: its transaction started, or a
// marker ended one. mu held.
func (l *Log) dropGuardLocked(producerID int64) { delete(l.verifying.m, producerID) }
