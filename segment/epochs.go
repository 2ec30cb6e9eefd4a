package segment

// EpochEntry is one leader epoch and the offset it starts at, as kept in the
// leader-epoch-checkpoint file.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// LeaderEpochs returns a copy of the leader-epoch cache, oldest first
// (tiering uploads the slice covering each segment). Safe for concurrent use.
func (l *Log) LeaderEpochs() []EpochEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]EpochEntry, len(l.epochs.entries))
	for i, e := range l.epochs.entries {
		out[i] = EpochEntry{Epoch: e.epoch, StartOffset: e.start}
	}
	return out
}
