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
// Kafka error codes (kerr) appear only in this package: lower layers return
// sentinel errors which errors.go maps.
package broker
