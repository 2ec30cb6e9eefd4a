// Package it holds Sediment's integration tests: each test runs real broker
// processes (the static `sediment` binary) on loopback ports and drives them
// with real Kafka clients — franz-go, sarama, segmentio/kafka-go,
// confluent-kafka-go (cgo builds only) and the kcat command — or with raw
// frames over TCP.
//
// The tests use $SEDIMENT_BIN when it is set (make test sets it); otherwise the
// first test builds the binary once per test binary with CGO_ENABLED=0. Under
// CI=true every tool a test needs (kcat, a C toolchain for confluent-kafka-go)
// is required: a missing one fails the test instead of skipping it.
//
// Set SEDIMENT_IT_KEEP=1 to keep each broker's log file (its path is logged)
// after the test.
package it
