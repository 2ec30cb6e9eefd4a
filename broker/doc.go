// Package broker is Sediment's Kafka edge: listeners, connections, request
// dispatch (one file per API key, named after it, e.g. 00_produce.go), and the
// partition manager that opens the local logs this broker hosts.
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
// Cluster roles. Every local replica (partitions.go) is leader, follower or
// offline, as its partition state in etcd says; the partition manager
// follows the metadata cache and switches roles. A leader tracks its
// followers with a repl.Leader (positions, high watermark, ISR proposals it
// writes to etcd with a compare-and-swap); a follower is replicated by the
// repl.Manager's fetchers. One broker at a time is the controller
// (controller.go), elected through etcd: it moves leadership away from brokers
// that are gone or shutting down and finishes reassignments. Brokers never
// send the controller RPCs; everything goes through etcd.
//
// Kafka error codes (kerr) appear only in this package: lower layers return
// sentinel errors which the API files map.
package broker
