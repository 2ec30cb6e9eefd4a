package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sedimentio/sediment/broker"
	"github.com/sedimentio/sediment/segment"
)

// TestServeCleanerFlags: the compaction flags reach broker.Config; bad values are
// refused naming the flag or the Kafka config.
func TestServeCleanerFlags(t *testing.T) {
	var f serveFlags
	fs := serveFlagSet(&f)
	if err := parseFlags(fs, []string{"--log-cleanup-policy", "delete,compact", "--log-cleaner-threads", "2",
		"--log-cleaner-dedupe-buffer-size", "1048576", "--log-cleaner-backoff", "2s", "--log-cleaner-min-cleanable-ratio", "0.25",
		"--log-cleaner-min-compaction-lag-ms", "5", "--log-cleaner-max-compaction-lag-ms", "60000", "--log-cleaner-delete-retention-ms", "7"}, nil); err != nil {
		t.Fatal(err)
	}
	b := broker.DefaultConfig()
	if err := f.cleaner.apply(&b); err != nil {
		t.Fatal(err)
	}
	l, c := b.Log, b.LogCleaner
	if l.CleanupPolicy != segment.CleanupCompact|segment.CleanupDelete || l.MinCleanableDirtyRatio != 0.25 || l.MinCompactionLag != 5*time.Millisecond ||
		l.MaxCompactionLag != time.Minute || l.DeleteRetention != 7*time.Millisecond || c.Threads != 2 || c.DedupeBufferSize != 1<<20 || c.Backoff != 2*time.Second || !c.Enable {
		t.Fatalf("config %+v %+v", l, c)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	// The defaults: Kafka's.
	f = serveFlags{}
	if err := parseFlags(serveFlagSet(&f), nil, nil); err != nil {
		t.Fatal(err)
	}
	b = broker.DefaultConfig()
	if err := f.cleaner.apply(&b); err != nil || b.Log.MaxCompactionLag != segment.MaxCompactionLagNone || b.Log.CleanupPolicy != segment.CleanupDelete {
		t.Fatalf("defaults: %+v %v", b.Log, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-cleanup-policy", "shred"}, "--log-cleanup-policy"},
		{[]string{"--log-cleaner-min-cleanable-ratio", "1.5"}, "min.cleanable.dirty.ratio"},
		{[]string{"--log-cleaner-threads", "0"}, "log.cleaner.threads"},
		{[]string{"--log-cleaner-min-compaction-lag-ms", "10", "--log-cleaner-max-compaction-lag-ms", "5"}, "max.compaction.lag.ms"},
	} {
		err := serve(append(tc.args, "--data-dir", t.TempDir(), "--http", ""))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v: %v; want an error naming %s", tc.args, err, tc.want)
		}
	}
}
