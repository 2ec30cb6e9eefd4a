package segment

// AssignEpochStart records that leader epoch starts at the current log end
// (Kafka's maybeAssignEpochStartOffset), as a new leader does when it takes
// over, before it has appended anything in that epoch. A follower asking
// OffsetForLeaderEpoch then learns where the previous epoch ended even if the
// new leader's log holds no batch of it. Epochs not newer than the latest are
// ignored. Safe for concurrent use.
func (l *Log) AssignEpochStart(epoch int32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if !l.epochs.assign(epoch, l.leo.Load()) {
		return nil
	}
	return l.epochs.write()
}
