package meta

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

// Cache mirrors brokers/, topics/, partitions/ and config/cluster/ in memory: one consistent
// initial read, then a watch on the cluster prefix from the next revision. When the watch
// fails (compaction, lost leader, ...) the cache re-lists and watches again. Readers never
// block on etcd; they see the state as of Revision.
//
// Safe for concurrent use. One goroutine, owned by the cache, applies events; it stops when
// the context given to StartCache is done or Close is called.
type Cache struct {
	store    *Store
	log      *slog.Logger
	watchCtx context.Context // keys the cache's own watch stream (see StartCache)
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu       sync.RWMutex // guards the fields below
	rev      int64
	state    cacheState
	advanced chan struct{} // closed and replaced whenever rev advances, and at close
	closed   bool
	subs     map[uint64]chan struct{}
	nextSub  uint64
}

// cacheState is the mirrored data. Values are never mutated in place, only replaced.
type cacheState struct {
	topics  map[string]Topic
	byID    map[TopicID]string
	parts   map[TopicID]map[int32]PartitionState
	brokers map[int32]BrokerInfo
	configs map[string]string
	// controllers holds the election candidates under controller/: key ->
	// (create revision, node id). The elected one has the lowest revision.
	controllers map[string]controllerCandidate
}

type controllerCandidate struct {
	rev    int64
	nodeID int32
}

func newCacheState() cacheState {
	return cacheState{
		topics:      make(map[string]Topic),
		byID:        make(map[TopicID]string),
		parts:       make(map[TopicID]map[int32]PartitionState),
		brokers:     make(map[int32]BrokerInfo),
		configs:     make(map[string]string),
		controllers: make(map[string]controllerCandidate),
	}
}

// StartCache loads the mirrored keys and returns once they are in memory; the cache then
// follows etcd until ctx is done or Close is called.
func (s *Store) StartCache(ctx context.Context) (*Cache, error) {
	c := s.newCache(ctx)
	if err := c.relist(ctx); err != nil {
		c.cancel()
		return nil, err
	}
	c.start()
	return c, nil
}

// newCache returns an empty cache whose watch context derives from ctx; start runs it.
func (s *Store) newCache(ctx context.Context) *Cache {
	c := &Cache{
		store:    s,
		log:      s.log,
		state:    newCacheState(),
		advanced: make(chan struct{}),
		subs:     make(map[uint64]chan struct{}),
	}
	wctx, cancel := context.WithCancel(ctx)
	// The clientv3 watcher multiplexes watches with equal gRPC metadata onto one stream and
	// RequestProgress answers per stream. Unique metadata (the cache's address) gives this
	// cache a stream of its own, so its progress requests reach only its own watch.
	// WithRequireLeader makes the watch fail (and the cache re-list) when the local member
	// loses its leader, instead of going silently stale on the minority side of a partition.
	wctx = metadata.AppendToOutgoingContext(clientv3.WithRequireLeader(wctx),
		"sediment-cache", fmt.Sprintf("%p", c))
	c.watchCtx, c.cancel = wctx, cancel
	return c
}

func (c *Cache) start() {
	c.wg.Add(1)
	go c.run(c.watchCtx)
}

// Close stops the cache and closes subscriber channels. Readers keep seeing the last state.
func (c *Cache) Close() {
	c.cancel()
	c.wg.Wait()
}

// run watches from the cache's revision and re-lists after any watch failure.
func (c *Cache) run(ctx context.Context) {
	defer c.wg.Done()
	defer c.markClosed()
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		err := c.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("metadata watch failed; re-listing", "err", err, "revision", c.Revision())
		for {
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			if err := c.relist(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				c.log.Warn("metadata re-list failed", "err", err)
				continue
			}
			backoff = minBackoff
			break
		}
	}
}

// watch applies watch responses until the watch ends; it returns why.
func (c *Cache) watch(ctx context.Context) error {
	wch := c.store.cli.Watch(ctx, c.store.prefix, clientv3.WithPrefix(), clientv3.WithRev(c.Revision()+1))
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.Canceled {
			return fmt.Errorf("meta: watch canceled by the server")
		}
		if resp.IsProgressNotify() {
			// Every event up to the header revision has been delivered.
			c.apply(nil, resp.Header.Revision)
			continue
		}
		if len(resp.Events) > 0 {
			c.apply(resp.Events, resp.Events[len(resp.Events)-1].Kv.ModRevision)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("meta: watch channel closed")
}

// relist replaces the state with a consistent read of every mirrored prefix at one revision.
func (c *Cache) relist(ctx context.Context) error {
	s := c.store
	st := newCacheState()
	var rev int64
	for _, dir := range []string{brokersDir, topicsDir, partitionsDir, clusterCfgDir, controllerDir} {
		opts := []clientv3.OpOption{clientv3.WithPrefix()}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, s.prefix+dir, opts...)
		if err != nil {
			return fmt.Errorf("meta: listing %s: %w", dir, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			c.applyKV(&st, kv, false)
		}
	}
	c.mu.Lock()
	c.state = st
	c.advanceLocked(rev)
	c.notifyLocked()
	c.mu.Unlock()
	return nil
}

// apply applies one watch response (nil events: progress only) and advances to rev.
func (c *Cache) apply(events []*clientv3.Event, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range events {
		c.applyKV(&c.state, ev.Kv, ev.Type == mvccpb.DELETE)
	}
	c.advanceLocked(rev)
	if len(events) > 0 {
		c.notifyLocked()
	}
}

// applyKV applies one key to st. Keys outside the mirrored prefixes (controller, tier/, ...)
// are ignored; undecodable values are logged and skipped rather than stopping the cache.
func (c *Cache) applyKV(st *cacheState, kv *mvccpb.KeyValue, deleted bool) {
	key := string(kv.Key)
	rel, ok := strings.CutPrefix(key, c.store.prefix)
	if !ok {
		return
	}
	var err error
	switch {
	case strings.HasPrefix(rel, brokersDir):
		err = st.applyBroker(key, strings.TrimPrefix(rel, brokersDir), kv, deleted)
	case strings.HasPrefix(rel, topicsDir):
		err = st.applyTopic(key, strings.TrimPrefix(rel, topicsDir), kv, deleted)
	case strings.HasPrefix(rel, partitionsDir):
		err = st.applyPartition(key, strings.TrimPrefix(rel, partitionsDir), kv, deleted)
	case strings.HasPrefix(rel, clusterCfgDir):
		err = st.applyConfig(key, strings.TrimPrefix(rel, clusterCfgDir), kv, deleted)
	case strings.HasPrefix(rel, controllerDir):
		err = st.applyController(key, kv, deleted)
	}
	if err != nil {
		c.log.Warn("skipping metadata key", "key", key, "revision", kv.ModRevision, "err", err)
	}
}

func (st *cacheState) applyBroker(key, rel string, kv *mvccpb.KeyValue, deleted bool) error {
	id, err := strconv.ParseInt(rel, 10, 32)
	if err != nil {
		return fmt.Errorf("%w: broker key", ErrInvalid)
	}
	if deleted {
		delete(st.brokers, int32(id))
		return nil
	}
	b, err := decodeBroker(key, kv.Value)
	if err != nil {
		return err
	}
	b.NodeID = int32(id) // the key is authoritative
	b.Epoch = kv.CreateRevision
	b.Lease = kv.Lease
	st.brokers[b.NodeID] = b
	return nil
}

func (st *cacheState) applyController(key string, kv *mvccpb.KeyValue, deleted bool) error {
	if deleted {
		delete(st.controllers, key)
		return nil
	}
	id, err := strconv.ParseInt(string(kv.Value), 10, 32)
	if err != nil {
		return fmt.Errorf("%w: controller candidate value %q", ErrInvalid, kv.Value)
	}
	st.controllers[key] = controllerCandidate{rev: kv.CreateRevision, nodeID: int32(id)}
	return nil
}

func (st *cacheState) applyTopic(key, name string, kv *mvccpb.KeyValue, deleted bool) error {
	old, had := st.topics[name]
	if had {
		delete(st.byID, old.ID)
	}
	if deleted {
		delete(st.topics, name)
		return nil
	}
	t, err := decodeTopic(key, kv.Value, kv.ModRevision)
	if err != nil {
		if had { // keep the last good value visible
			st.byID[old.ID] = name
		}
		return err
	}
	t.Name = name
	st.topics[name] = t
	st.byID[t.ID] = name
	return nil
}

func (st *cacheState) applyPartition(key, rel string, kv *mvccpb.KeyValue, deleted bool) error {
	id, p, err := parsePartitionKey(rel)
	if err != nil {
		return err
	}
	if deleted {
		if m := st.parts[id]; m != nil {
			delete(m, p)
			if len(m) == 0 {
				delete(st.parts, id)
			}
		}
		return nil
	}
	ps, err := decodePartition(key, kv.Value, kv.ModRevision)
	if err != nil {
		return err
	}
	m := st.parts[id]
	if m == nil {
		m = make(map[int32]PartitionState)
		st.parts[id] = m
	}
	m[p] = ps
	return nil
}

func (st *cacheState) applyConfig(key, name string, kv *mvccpb.KeyValue, deleted bool) error {
	if deleted {
		delete(st.configs, name)
		return nil
	}
	v, err := decodeConfig(key, kv.Value)
	if err != nil {
		return err
	}
	st.configs[name] = v
	return nil
}

// advanceLocked moves the revision forward and wakes WaitRevision callers.
func (c *Cache) advanceLocked(rev int64) {
	if rev <= c.rev {
		return
	}
	c.rev = rev
	close(c.advanced)
	c.advanced = make(chan struct{})
}

// notifyLocked signals every subscriber without blocking; a pending signal covers this one.
func (c *Cache) notifyLocked() {
	for _, ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (c *Cache) markClosed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	close(c.advanced)
	c.advanced = make(chan struct{})
	for id, ch := range c.subs {
		close(ch)
		delete(c.subs, id)
	}
}

// Revision returns the etcd revision the cache reflects: every change up to it is applied.
func (c *Cache) Revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// WaitRevision blocks until the cache has applied rev (e.g. the revision returned by a
// Store write, so the next Metadata response shows it), ctx is done, or the cache is closed
// (ErrClosed). Revisions of writes outside the mirrored keys are confirmed by asking etcd for
// a watch progress notification.
func (c *Cache) WaitRevision(ctx context.Context, rev int64) error {
	const first, most = 20 * time.Millisecond, time.Second
	wait := first
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		c.mu.RLock()
		cur, closed, advanced := c.rev, c.closed, c.advanced
		c.mu.RUnlock()
		if cur >= rev {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-advanced:
		case <-timer.C:
			// No event brought us there yet: the revision may belong to keys we do not
			// watch. A progress notification moves the cache to etcd's current revision.
			if err := c.store.cli.RequestProgress(c.watchCtx); err != nil && c.watchCtx.Err() == nil {
				c.log.Debug("watch progress request failed", "err", err)
			}
			wait = min(2*wait, most)
			timer.Reset(wait)
		case <-ctx.Done():
			return fmt.Errorf("meta: waiting for revision %d (cache at %d): %w", rev, cur, ctx.Err())
		}
	}
}

// Topics returns every topic sorted by name. The values are copies, safe to keep and modify.
func (c *Cache) Topics() []Topic {
	c.mu.RLock()
	out := make([]Topic, 0, len(c.state.topics))
	for _, t := range c.state.topics {
		out = append(out, t.clone())
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Topic returns the named topic.
func (c *Cache) Topic(name string) (Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.state.topics[name]
	return t.clone(), ok
}

// PartitionCount is a topic's number of partitions, without the copy Topic
// makes (the group coordinator asks on every request).
func (c *Cache) PartitionCount(name string) (int, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.state.topics[name]
	return len(t.Partitions), ok
}

// TopicName is the name of the topic with the given id, without the copy
// TopicByID makes: request paths resolve ids per partition, and a copy of a
// topic of 10,000 partitions per partition of a request is O(partitions²).
func (c *Cache) TopicName(id TopicID) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	name, ok := c.state.byID[id]
	return name, ok
}

// TopicID is the id of the named topic, without the copy Topic makes.
func (c *Cache) TopicID(name string) (TopicID, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.state.topics[name]
	return t.ID, ok
}

// TopicConfigsByID returns the topic with the given id without its replica
// assignment (Partitions nil): its name, id, revision and configs. Per-partition
// upkeep (retention, each partition every check interval) reads a topic's configs
// this way; TopicByID's copy of every partition's replicas would make a check
// over N partitions of one topic cost O(N²).
func (c *Cache) TopicConfigsByID(id TopicID) (Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	name, ok := c.state.byID[id]
	if !ok {
		return Topic{}, false
	}
	t, ok := c.state.topics[name]
	t.Partitions = nil
	return t.clone(), ok
}

// Replicas returns a copy of the replicas of partition p of the topic with the
// given id.
func (c *Cache) Replicas(id TopicID, p int32) ([]int32, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	name, ok := c.state.byID[id]
	if !ok {
		return nil, false
	}
	t := c.state.topics[name]
	if p < 0 || int(p) >= len(t.Partitions) {
		return nil, false
	}
	return slices.Clone(t.Partitions[p]), true
}

// TopicByID returns the topic with the given id.
func (c *Cache) TopicByID(id TopicID) (Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	name, ok := c.state.byID[id]
	if !ok {
		return Topic{}, false
	}
	t, ok := c.state.topics[name]
	return t.clone(), ok
}

// Partition returns the state of partition p of the topic with the given id.
func (c *Cache) Partition(id TopicID, p int32) (PartitionState, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ps, ok := c.state.parts[id][p]
	return ps.clone(), ok
}

// Brokers returns the live (registered) brokers sorted by id.
func (c *Cache) Brokers() []BrokerInfo {
	c.mu.RLock()
	out := make([]BrokerInfo, 0, len(c.state.brokers))
	for _, b := range c.state.brokers {
		out = append(out, b.clone())
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b BrokerInfo) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return out
}

// ClusterConfigs returns the cluster-wide dynamic broker configs (a copy).
func (c *Cache) ClusterConfigs() map[string]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return maps.Clone(c.state.configs)
}

// Subscribe returns a channel that receives a value (non-blocking, buffer 1, so signals
// coalesce) after each applied batch of changes, for reconcilers that then read the cache.
// cancel unsubscribes and closes the channel; the channel is also closed when the cache stops.
func (c *Cache) Subscribe() (ch <-chan struct{}, cancel func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sub := make(chan struct{}, 1)
	if c.closed {
		close(sub)
		return sub, func() {}
	}
	id := c.nextSub
	c.nextSub++
	c.subs[id] = sub
	return sub, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if s, ok := c.subs[id]; ok {
			delete(c.subs, id)
			close(s)
		}
	}
}

// sleepCtx waits for d or ctx; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ControllerID is the elected controller's node id, or -1 while there is none.
func (c *Cache) ControllerID() int32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	best := controllerCandidate{rev: -1, nodeID: -1}
	for _, cand := range c.state.controllers {
		if best.rev < 0 || cand.rev < best.rev {
			best = cand
		}
	}
	return best.nodeID
}

// Broker returns one live broker.
func (c *Cache) Broker(id int32) (BrokerInfo, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	b, ok := c.state.brokers[id]
	return b.clone(), ok
}
