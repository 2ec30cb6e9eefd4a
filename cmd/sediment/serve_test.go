package main

import (
	"strings"
	"testing"
)

// TestServeRejectsTierTimeouts: an orphan grace not above the upload timeout would let
// a late write of an abandoned upload outlive the cleanup; serve refuses it, naming the flags.
func TestServeRejectsTierTimeouts(t *testing.T) {
	for _, args := range [][]string{
		{"--tier-upload-timeout", "1h", "--tier-orphan-grace", "30m"},
		{"--tier-upload-timeout", "0s"},
	} {
		err := serve(append(args, "--data-dir", t.TempDir(), "--http", ""))
		if err == nil || !strings.Contains(err.Error(), "--tier-orphan-grace") {
			t.Errorf("serve %v: %v; want an error naming --tier-orphan-grace", args, err)
		}
	}
}
