package broker

import (
	"math"
	"sync"

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
}

type fetchSession struct {
	id    int32
	epoch int32 // the epoch the next incremental request must carry

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
		delete(fc.sessions, fc.order[0])
		fc.order = fc.order[1:]
	}
	id := fc.next
	fc.next++
	if fc.next == math.MaxInt32 {
		fc.next = 1
	}
	fs := &fetchSession{id: id, epoch: 1, parts: make(map[sessionKey]*sessionPart)}
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
	delete(fc.sessions, id)
	for i, o := range fc.order {
		if o == id {
			fc.order = append(fc.order[:i], fc.order[i+1:]...)
			break
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
	if _, ok := fs.parts[k]; !ok {
		return
	}
	delete(fs.parts, k)
	for i, o := range fs.order {
		if o == k {
			fs.order = append(fs.order[:i], fs.order[i+1:]...)
			break
		}
	}
}
