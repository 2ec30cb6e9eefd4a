//go:build !cgo

package it

import (
	"context"
	"testing"

	"github.com/sedimentio/sediment/it/harness"
)

// confluentSecClient stands in for the cgo client when this test binary
// was built without cgo: the confluent-kafka-go cases of
// TestSecurityClients skip, or fail under CI=true.
func confluentSecClient(t *testing.T, _ context.Context, _ *secBroker, _ secCreds, _ string) error {
	harness.Missing(t, "confluent-kafka-go needs cgo, but this test binary was built without it: install a C compiler (gcc) and keep CGO_ENABLED=1")
	return nil
}

// confluentProbe stands in for the cgo probe (see confluentSecClient).
func confluentProbe(t *testing.T, _ context.Context, _ *secBroker, _ secCreds) error {
	harness.Missing(t, "confluent-kafka-go needs cgo, but this test binary was built without it: install a C compiler (gcc) and keep CGO_ENABLED=1")
	return nil
}
