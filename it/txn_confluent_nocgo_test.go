//go:build !cgo

package it

import (
	"testing"

	"github.com/sedimentio/sediment/it/harness"
)

// confluentTxnClient stands in for the cgo one when this test binary was
// built without cgo: its subtest of TestTxnClientsInterop is Missing (a
// failure under CI=true).
func confluentTxnClient() txnClient {
	return txnClient{
		name: "confluent",
		require: func(t testing.TB) {
			harness.Missing(t, "confluent-kafka-go needs cgo, but this test binary was built without it: install a C compiler (gcc) and keep CGO_ENABLED=1")
		},
	}
}
