package broker

import (
	"math"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/meta"
)

// Fetch sessions (KIP-227). A session remembers which partitions a client
// fetches and what it was last told, so incremental fetches name only what
// changed and responses carry only partitions with news.
//
// Sessions live on the connection that created them: a client that
// reconnects gets FETCH_SESSION_ID_NOT_FOUND and falls back to a full fetch,
// which the protocol allows. The cache is bounded per connection.

const maxSessionsPerConn = 8

// sessionKey names a partition as the request does: by topic id from
// Fetch v13 on, by name before.
type sessionKey struct {
	id    meta.TopicID
	topic string
	part  int32
}

type sessionPart struct {
	key         sessionKey
	fetchOffset int64
	maxBytes    int32
	leaderEpoch int32
	// What the client was last told; an incremental response omits the
	// partition when nothing differs and no records are ready.
	sentHW, sentLogStart int64
	// Touched only by the connection's reading goroutine: the partition
	// (and topic name) the last fetch resolved the key to, reused while it
	// is still the leader in the fetched epoch; and the partition the
	// session's wake channel is registered with, for the session's lifetime
	// rather than per request.
	part    *partition.Partition
	name    string
	watched *partition.Partition
}

type fetchSession struct {
	id    int32
	epoch int32 // the epoch the next incremental request must carry
	// wake is signalled by the session's partitions (watched for the
	// session's lifetime): a fetch parked on the session wakes on it.
	wake chan struct{}

	mu    sync.Mutex // the reader updates parts; the writer records what was sent
	order []sessionKey
	parts map[sessionKey]*sessionPart
}

type fetchSessionCache struct {
	mu       sync.Mutex
	next     int32
	sessions map[int32]*fetchSession
	order    []int32 // creation order, for eviction
}

func newFetchSessionCache() *fetchSessionCache {
	return &fetchSessionCache{next: 1, sessions: make(map[int32]*fetchSession)}
}

func (fc *fetchSessionCache) create() *fetchSession {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.order) >= maxSessionsPerConn {
		fc.sessions[fc.order[0]].unwatchAll()
		delete(fc.sessions, fc.order[0])
		fc.order = fc.order[1:]
	}
	id := fc.next
	fc.next++
	if fc.next == math.MaxInt32 {
		fc.next = 1
	}
	fs := &fetchSession{id: id, epoch: 1, wake: make(chan struct{}, 1), parts: make(map[sessionKey]*sessionPart)}
	fc.sessions[id] = fs
	fc.order = append(fc.order, id)
	return fs
}

func (fc *fetchSessionCache) get(id int32) *fetchSession {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.sessions[id]
}

func (fc *fetchSessionCache) remove(id int32) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fs := fc.sessions[id]; fs != nil {
		fs.unwatchAll()
	}
	delete(fc.sessions, id)
	for i, o := range fc.order {
		if o == id {
			fc.order = append(fc.order[:i], fc.order[i+1:]...)
			break
		}
	}
}

// closeAll ends every session: the connection is gone.
func (fc *fetchSessionCache) closeAll() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for _, fs := range fc.sessions {
		fs.unwatchAll()
	}
	clear(fc.sessions)
	fc.order = nil
}

// watch points the session's wake channel at the partitions targets
// resolved to, moving a registration only where a partition changed (a new
// partition, a role change, an error). Called on the reading goroutine.
func (fs *fetchSession) watch(targets []fetchTarget, replica bool) {
	for i := range targets {
		t := &targets[i]
		if t.sp == nil || t.sp.watched == t.p {
			continue
		}
		if t.sp.watched != nil {
			t.sp.watched.Unwatch(fs.wake)
		}
		if t.p != nil {
			t.p.Watch(fs.wake, replica)
		}
		t.sp.watched = t.p
	}
}

// unwatchAll drops the session's registrations.
func (fs *fetchSession) unwatchAll() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, sp := range fs.parts {
		if sp.watched != nil {
			sp.watched.Unwatch(fs.wake)
			sp.watched = nil
		}
	}
}

func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// upsert adds or updates a partition in the session.
func (fs *fetchSession) upsertLocked(sp sessionPart) {
	if cur, ok := fs.parts[sp.key]; ok {
		cur.fetchOffset, cur.maxBytes, cur.leaderEpoch = sp.fetchOffset, sp.maxBytes, sp.leaderEpoch
		return
	}
	sp.sentHW, sp.sentLogStart = -1, -1
	p := sp
	fs.parts[sp.key] = &p
	fs.order = append(fs.order, sp.key)
}

func (fs *fetchSession) forgetLocked(k sessionKey) {
	sp, ok := fs.parts[k]
	if !ok {
		return
	}
	if sp.watched != nil {
		sp.watched.Unwatch(fs.wake)
	}
	delete(fs.parts, k)
	for i, o := range fs.order {
		if o == k {
			fs.order = append(fs.order[:i], fs.order[i+1:]...)
			break
		}
	}
}

// openSession finds, creates or closes the request's session (KIP-227) and
// says whether this is a full fetch; a non-zero code fails the request.
func (c *conn) openSession(req *kmsg.FetchRequest) (session *fetchSession, full bool, code int16) {
	switch {
	case req.Version < 7 || (req.SessionID == 0 && req.SessionEpoch == -1):
		return nil, true, 0 // sessionless full fetch
	case req.SessionEpoch == 0:
		// A full fetch opening a session; with a session id, it replaces
		// that session (KIP-227: librdkafka does this when its partitions
		// change).
		if req.SessionID != 0 {
			c.fetchSessions.remove(req.SessionID)
		}
		return c.fetchSessions.create(), true, 0
	case req.SessionEpoch == -1:
		c.fetchSessions.remove(req.SessionID)
		return nil, true, 0
	case req.SessionID == 0:
		return nil, false, kerr.InvalidFetchSessionEpoch.Code
	}
	if session = c.fetchSessions.get(req.SessionID); session == nil {
		return nil, false, kerr.FetchSessionIDNotFound.Code
	}
	return session, false, 0
}

// fetchTargets lists the partitions a fetch reads: the request's, or with a
// session the session's after applying the request's changes to it.
func (c *conn) fetchTargets(req *kmsg.FetchRequest) (targets []fetchTarget, session *fetchSession, full bool, code int16) {
	session, full, code = c.openSession(req)
	if code != 0 {
		return nil, nil, false, code
	}
	keyOf := func(topic string, id [16]byte, p int32) sessionKey {
		if req.Version >= 13 {
			return sessionKey{id: meta.TopicID(id), part: p}
		}
		return sessionKey{topic: topic, part: p}
	}
	var (
		parts     []sessionPart
		lastEpoch = map[sessionKey]int32{}
	)
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			k := keyOf(t.Topic, t.TopicID, p.Partition)
			parts = append(parts, sessionPart{key: k, fetchOffset: p.FetchOffset, maxBytes: p.PartitionMaxBytes, leaderEpoch: p.CurrentLeaderEpoch})
			lastEpoch[k] = -1
			if req.Version >= 12 {
				lastEpoch[k] = p.LastFetchedEpoch
			}
		}
	}
	target := func(sp sessionPart, in *sessionPart) fetchTarget {
		e, named := lastEpoch[sp.key]
		if !named {
			e = -1
		}
		return fetchTarget{sessionPart: sp, sp: in, lastFetchedEpoch: e, named: named}
	}
	if session == nil {
		for _, sp := range parts {
			targets = append(targets, target(sp, nil))
		}
		return targets, nil, full, 0
	}
	session.mu.Lock()
	defer session.mu.Unlock()
	if !full {
		if req.SessionEpoch != session.epoch {
			return nil, nil, false, kerr.InvalidFetchSessionEpoch.Code
		}
		for _, t := range req.ForgottenTopics {
			for _, p := range t.Partitions {
				session.forgetLocked(keyOf(t.Topic, t.TopicID, p))
			}
		}
	}
	session.epoch = nextEpoch(req.SessionEpoch)
	for _, sp := range parts {
		session.upsertLocked(sp)
	}
	targets = make([]fetchTarget, 0, len(session.order))
	for _, k := range session.order {
		sp := session.parts[k]
		targets = append(targets, target(*sp, sp))
	}
	return targets, session, full, 0
}
