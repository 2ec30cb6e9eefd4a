// Package broker is Sediment's Kafka edge: listeners, connections, request
// dispatch (one file per API key, named after it, e.g. 00_produce.go) and the
// controller. Below it, broker/partition is the partition layer (append,
// commit waits, reads, ISR, tiering glue): API handlers decode the request,
// call the partition layer, and encode its answer, mapping its sentinel
// errors to Kafka error codes in one place (errors.go).
//
// Requests are decoded and responses encoded by franz-go's kmsg; nothing here
// hand-writes the protocol. A connection has one reader and one writer
// goroutine. The reader decodes a request and runs its handler's fast part in
// arrival order (so pipelined produces to one partition append in order); the
// handler may return a completion that blocks (waiting for an fsync, a fetch's
// long poll). The writer runs completions and writes responses strictly in
// request order.
//
// Fetch responses carry record bytes as byte ranges of segment files; on TCP
// connections those ranges go out with sendfile(2) and never pass through user
// space.
//
// Listeners and authentication (listeners.go, sasl_conn.go). The broker
// serves Kafka's listeners, each with its security protocol: TLS from
// security.TLSFiles on SSL and SASL_SSL listeners, SASL on SASL_PLAINTEXT
// and SASL_SSL ones (SaslHandshake, SaslAuthenticate, KIP-368
// re-authentication) against the SCRAM credentials meta mirrors from etcd.
// Every connection carries its principal (conn.Principal(): User:ANONYMOUS,
// the mapped certificate subject or the SASL user) for the authorizer. Each
// broker registers every listener's advertised endpoint; responses that name
// brokers give those of the listener the client came in on. Followers and
// the clients of other brokers (markers, verification) dial the
// inter-broker listener with this broker's certificate and SASL user.
//
// Cluster roles. Every local replica is leader, follower or offline, as its
// partition state in etcd says; the partition layer follows the metadata
// cache and switches roles (see broker/partition). One broker at a time is
// the controller (controller.go), elected through etcd: it moves leadership
// away from brokers that are gone or shutting down and finishes
// reassignments. Brokers never send the controller RPCs; everything goes
// through etcd.
//
// Coordinators. broker/group (consumer groups, __consumer_offsets) and
// broker/txn (transactions, __transaction_state) hear of leadership changes
// from the partition layer through one fan-out (roleObservers); the first
// FindCoordinator of each key type creates its topic. The transaction
// coordinator's markers go through markerWriter (txn_markers.go): directly
// to partitions this broker leads, in one WriteTxnMarkers per leader to the
// others, over a franz-go client of that broker's inter-broker listener; a
// committed marker in __consumer_offsets completes the group coordinator's
// pending transactional offsets.
//
// Lock order in this package: Server.regMu, Server.mu and markerWriter.mu
// are each taken alone; a fetch session's mu is taken alone (the cache's mu
// only around lookups). The partition layer's locks (broker/partition/manager.go) are
// never held while calling back into this package.
//
// Kafka error codes (kerr) appear only in this package: lower layers return
// sentinel errors which the API files map.
package broker
