package segment

import (
	"context"
	"fmt"
)

// WaitDurable returns once every byte below offset (exclusive: pass LastOffset+1 of an
// append) is on stable storage, or when ctx is done. With FlushOS it returns at once.
//
// Group commit without a goroutine: callers queue for the sync token; whoever holds it
// notes the log end offset, fdatasyncs the active segment once, and publishes that offset
// as durable; every queued caller whose offset it covers then returns without syncing.
// Earlier segments need no sync here: a roll syncs a segment before it creates the next.
// A failed fdatasync fails the log (the kernel may have dropped the dirty pages; retrying
// could report data durable that is not), so later calls return the error.
func (l *Log) WaitDurable(ctx context.Context, offset int64) error {
	if l.config().Flush == FlushOS {
		if l.closedA.Load() {
			return ErrClosed
		}
		return nil
	}
	for {
		if l.durable.Load() >= offset {
			return nil
		}
		select {
		case l.syncSem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if l.durable.Load() >= offset {
			<-l.syncSem
			return nil
		}
		end, err := l.syncTokenHeld()
		<-l.syncSem
		if err != nil {
			return err
		}
		if end < offset {
			return fmt.Errorf("%w: WaitDurable(%d) beyond log end offset %d", ErrOffsetOutOfRange, offset, end)
		}
	}
}

// Sync makes everything appended so far durable, whatever the flush policy.
func (l *Log) Sync() error {
	l.syncSem <- struct{}{}
	defer func() { <-l.syncSem }()
	_, err := l.syncTokenHeld()
	return err
}

// syncTokenHeld fdatasyncs the active segment up to the current log end offset and
// publishes it as durable. It returns that end offset. The sync token is held, so durable
// only moves forward here (TruncateTo lowers it holding the token too).
func (l *Log) syncTokenHeld() (int64, error) {
	l.mu.Lock()
	if err := l.writableLocked(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	s := l.active
	end := l.leo.Load()
	acquired := s.tryAcquire() // keep the file open even if retention races (it cannot delete the active segment, but TruncateTo could)
	l.mu.Unlock()
	if !acquired {
		return 0, ErrClosed
	}
	defer s.release()
	if l.durable.Load() >= end {
		return end, nil
	}
	l.syncs.Add(1)
	if err := s.log.Datasync(); err != nil {
		l.mu.Lock()
		err = l.failLocked(err)
		l.mu.Unlock()
		return 0, err
	}
	l.durable.Store(end)
	return end, nil
}
