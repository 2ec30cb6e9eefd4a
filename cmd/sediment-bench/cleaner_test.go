package main

import (
	"strings"
	"testing"
)

func TestCleanerFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{nil, ""},
		{[]string{"--cleaner-bytes", "64MiB", "--cleaner-keys", "1000", "--cleaner-dedupe-buffer", "1MiB"}, ""},
		{[]string{"--cleaner-bytes", "10"}, "--cleaner-bytes"},
		{[]string{"--cleaner-segment-bytes", "4KiB"}, "--cleaner-segment-bytes"},
		{[]string{"--cleaner-dedupe-buffer", "100"}, "--cleaner-dedupe-buffer"},
		{[]string{"--cleaner-keys", "0"}, "--cleaner-keys"},
		{[]string{"--cleaner-wait", "0s"}, "--cleaner-wait"},
	} {
		var f benchFlags
		if err := benchFlagSet(&f).Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := f.validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
	var f benchFlags
	benchFlagSet(&f).Parse([]string{"--cleaner-bytes", "1MiB", "--value-size", "1024"})
	if c := (cleanerConfig{cleanerFlags: f.cleaner, valueSize: f.valueSize}); c.records() != 1024 {
		t.Fatalf("records %d", c.records())
	}
}
