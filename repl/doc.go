// Package repl is Sediment's replication, which is Kafka's (DESIGN.md, decision 5): a
// broker that hosts a replica of a partition fetches it from the partition's leader with
// ordinary Fetch requests carrying its replica id, and appends what it receives, with the
// leader's offsets, to its local log. On the leader, Leader (leader.go) tracks where each
// follower stands and derives the high watermark and ISR changes from it. The rest of this
// comment is about the follower side: Manager.
//
// A Manager runs one fetcher goroutine, with one TCP connection, per leader broker (Kafka's
// ReplicaFetcherThread with num.replica.fetchers=1). Its fetches use a KIP-227 fetch
// session per connection (session.go), as Kafka's fetcher does: a full fetch naming every
// partition this broker follows from that leader opens it, then each fetch names only the
// partitions whose fetch offset, log start or last fetched epoch moved, forgets those no
// longer fetched, and the leader answers only partitions with news; a lost session or a
// leader keeping none means a full fetch again. The connection (conn.go) frames requests with kmsg's RequestFormatter,
// learns the leader's versions with ApiVersions, and uses Fetch v12-v16: v15+ names the
// replica in ReplicaState (KIP-903), v13+ names topics by id.
//
// Leader epochs keep replicas identical (KIP-101, KIP-279): after Follow gives a partition a
// new leader or epoch, the fetcher asks the leader, with OffsetForLeaderEpoch v3-v4, where
// the follower's latest epoch ends in the leader's log and truncates the follower's log
// there before fetching, repeating with older epochs while the leader does not know the
// follower's. While fetching, each request carries LastFetchedEpoch and the leader answers
// a DivergingEpoch when the logs split (KIP-595's truncation on fetch); the follower
// truncates the same way and goes on. Fetches name the partition's current leader epoch
// (KIP-320), so a stale leader answers FENCED_LEADER_EPOCH and the follower waits for a
// new Follow, as after NOT_LEADER_OR_FOLLOWER; a leader that is behind answers
// UNKNOWN_LEADER_EPOCH and the follower retries, as it does after UNKNOWN_TOPIC_OR_PARTITION
// and UNKNOWN_TOPIC_ID (the leader of a new topic may not have created it yet).
//
// Per partition, a response is applied as Kafka's follower does: whole batches are appended
// (a byte limit may cut the last one), then the high watermark min(leader's, local end) is
// handed to Replica.SetHighWatermark; OFFSET_OUT_OF_RANGE below the leader's log start
// restarts the log at it (TruncateFullyAndStartAt), above the leader's end truncates to the
// leader's high watermark. Connection failures reconnect with exponential backoff;
// partition errors back off that partition alone.
//
// Unfollow synchronises with the fetchers: once it returns, the partition's log is no
// longer used, so the broker can make the replica a leader, truncate it or delete it.
//
// The package defines the Log it needs; *segment.Log implements it. It imports no other
// Sediment package, and Kafka error codes appear only in the responses it reads.
package repl
