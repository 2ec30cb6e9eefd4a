//go:build !cgo

package it

import (
	"testing"

	"github.com/sedimentio/sediment/it/harness"
)

// TestConfluentKafkaGo stands in for the cgo test when this test binary was
// built without cgo (no C compiler, or CGO_ENABLED=0): CI must not pass
// without it.
func TestConfluentKafkaGo(t *testing.T) {
	harness.Missing(t, "confluent-kafka-go needs cgo, but this test binary was built without it: install a C compiler (gcc) and keep CGO_ENABLED=1")
}
