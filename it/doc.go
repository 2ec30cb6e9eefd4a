// Package it holds Sediment's integration tests: each test runs real broker
// processes (the static `sediment` binary) on loopback ports and drives them
// with real Kafka clients — franz-go, sarama, segmentio/kafka-go,
// confluent-kafka-go (cgo builds only) and the kcat command — or with raw
// frames over TCP.
//
// The processes themselves (brokers, clusters, MinIO: free ports, readiness,
// logs, SIGTERM/SIGKILL/SIGSTOP, restarts, memory) are it/harness's, which
// the benchmark (cmd/sediment-bench) uses too; harness_test.go binds them to
// a test (StartBroker, StartCluster: a failure fails the test, the processes
// are killed when it ends) and the other *_harness_test.go files add the
// Kafka-level checks the tests share.
//
// The consumer-group tests (group_*_test.go) run every client's group
// consumer against a 3-broker cluster and check what the members consumed
// against what was produced, record by record, in a ledger
// (group_harness_test.go): at-least-once with no gap, duplicates only
// across rebalances, committed offsets that never go back (sampled from
// the coordinator throughout) and end at the end offsets; across a member
// leaving, a member dying without leaving, its coordinator killed, and the
// whole cluster restarted.
//
// The transaction tests (txn_*_test.go) check exactly-once end to end on
// 3-broker clusters: a GroupTransactSession copying a topic while its
// process is killed -9 and restarted and a broker dies, committed and
// aborted transactions of franz-go, sarama and confluent-kafka-go read at
// both isolation levels, the transaction coordinator killed between EndTxn
// and its markers, and a zombie producer fenced by its successor. On one
// broker, alternating transactions are read back from history that only the
// tier holds (aborted transactions from the uploaded .txnindex objects) and
// from a compacted topic before and after delete.retention.ms removes the
// markers (txn_tier_compact_test.go). Their helper processes are the test
// binary run again (txn_helper_test.go).
//
// The tests use $SEDIMENT_BIN when it is set (make test sets it); otherwise the
// first test builds the binary once per test binary with CGO_ENABLED=0. Under
// CI=true every tool a test needs (kcat, MinIO, a C toolchain for
// confluent-kafka-go) is required: a missing one fails the test instead of
// skipping it (harness.Missing).
//
// Set SEDIMENT_IT_KEEP=1 to keep each broker's log file (its path is logged)
// after the test, and SEDIMENT_IT_DEBUG=1 to run cluster brokers at debug
// log level and have the group tests' franz-go members log to stderr.
package it
