package repl

import (
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchSession is the follower's side of a KIP-227 fetch session with the leader, as
// Kafka's FetchSessionHandler: what the leader's session holds for each partition, so a
// fetch names only the partitions whose position changed and forgets those no longer
// fetched. It belongs to the fetcher goroutine and to one connection: a new connection
// starts a new session, since the leader keeps sessions per connection.
//
// The first fetch is full (SessionID 0, SessionEpoch 0) and opens the session; later ones
// are incremental (the leader's SessionID, epochs counting up from 1). An incremental
// response lists only partitions with news (records, a new high watermark or log start,
// an error, a diverging epoch), so a partition left out of it simply had none. When the
// leader lost the session (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH) or
// keeps none (it answers SessionID 0), the next fetch is full again; so it is after a
// new Follow replaced a partition or a log was truncated or restarted, whose high
// watermark may then lag the leader's, which the leader repeats only when it moves.
type fetchSession struct {
	id    int32
	epoch int32  // of the next incremental fetch
	full  bool   // the next fetch is full
	round uint64 // counts fetches
	parts map[respKey]*sessionPart
}

// sessionPart is a partition as the leader's session holds it: the values of the fetch
// that last named it.
type sessionPart struct {
	fp        *fpart
	offset    int64 // FetchOffset
	logStart  int64
	lastEpoch int32  // LastFetchedEpoch
	round     uint64 // the last round that fetched it (a partition left behind is forgotten)
	answered  uint64 // the last round whose response listed it
}

func newFetchSession() *fetchSession {
	return &fetchSession{full: true, parts: make(map[respKey]*sessionPart)}
}

// restart makes the next fetch a full one opening a new session; keepID asks the leader
// to replace the current session rather than leave it to its cache's eviction.
func (s *fetchSession) restart(keepID bool) {
	if !keepID {
		s.id = 0
	}
	s.epoch, s.full = 0, true
	clear(s.parts)
}

// requestEpoch is the SessionEpoch the next fetch carries.
func (s *fetchSession) requestEpoch() int32 {
	if s.full {
		return 0
	}
	return s.epoch
}

// answered records the leader's answer to a fetch sent with epoch: the session it keeps
// (0: none, the next fetch is full again).
func (s *fetchSession) answered(id, epoch int32) {
	if id == 0 {
		s.restart(false)
		return
	}
	s.id, s.full = id, false
	if epoch == math.MaxInt32 {
		s.epoch = 1
	} else {
		s.epoch = epoch + 1
	}
}

// forget moves the session's partitions not named in this round into req's
// ForgottenTopics and drops them. Only an incremental fetch forgets: a full one replaces
// the leader's session whole.
func (s *fetchSession) forget(req *kmsg.FetchRequest, byID bool) {
	topicAt := make(map[respKey]int)
	for k, sp := range s.parts {
		if sp.round == s.round {
			continue
		}
		delete(s.parts, k)
		if s.full {
			continue
		}
		tk := respKey{topic: k.topic, id: k.id}
		ti, ok := topicAt[tk]
		if !ok {
			t := kmsg.NewFetchRequestForgottenTopic()
			if byID {
				t.TopicID = k.id
			} else {
				t.Topic = k.topic
			}
			req.ForgottenTopics = append(req.ForgottenTopics, t)
			ti = len(req.ForgottenTopics) - 1
			topicAt[tk] = ti
		}
		req.ForgottenTopics[ti].Partitions = append(req.ForgottenTopics[ti].Partitions, k.part)
	}
}
