package segment

import "fmt"

// TruncateFullyAndStartAt empties the log and restarts it at offset, which becomes both
// its log start and log end offset (Kafka's UnifiedLog.truncateFullyAndStartAt). A follower
// uses it when its log end is below the leader's log start (its whole log is older than
// anything the leader still has), and when the leader's first batch starts below an empty
// follower's end (KAFKA-6977). Unlike TruncateTo, offset may be above the log end.
//
// Every segment and producer-state snapshot is deleted, a new empty segment starts at
// offset, the log start offset is persisted, producer state is reset and the leader-epoch
// cache is cleared (the next appended batch re-populates it). Slices handed out earlier keep
// reading the unlinked files.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.syncSem <- struct{}{}
	defer func() { <-l.syncSem }()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("%w: truncate fully and start at %d", ErrOffsetOutOfRange, offset)
	}
	return l.truncateFullyLocked(offset)
}
