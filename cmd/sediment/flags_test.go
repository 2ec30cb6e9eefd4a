package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagPrecedence: command line over SEDIMENT_* over --config over defaults.
func TestFlagPrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "broker.conf")
	if err := os.WriteFile(cfg, []byte("# comment\nnode-id = 7\nlisten = 127.0.0.1:1111\nnum-partitions = 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SEDIMENT_LISTEN", "127.0.0.1:2222")
	t.Setenv("SEDIMENT_NUM_PARTITIONS", "6")
	var f serveFlags
	fs := serveFlagSet(&f)
	if err := parseFlags(fs, []string{"--config", cfg, "--num-partitions", "9"}, &f.config); err != nil {
		t.Fatal(err)
	}
	if f.nodeID != 7 || f.listen != "127.0.0.1:2222" || f.numPartitions != 9 || f.dataDir != "./data" {
		t.Fatalf("node-id %d (want 7 from file), listen %s (want env), num-partitions %d (want 9 from flag), data-dir %s (default)",
			f.nodeID, f.listen, f.numPartitions, f.dataDir)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for name, body := range map[string]string{
		"unknown setting": "no-such-flag = 1\n",
		"bad escape":      "node-id = \\u12\n",
		"bad value":       "node-id = seven\n",
	} {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "c")
			os.WriteFile(cfg, []byte(body), 0o644)
			var f serveFlags
			fs := serveFlagSet(&f)
			err := parseFlags(fs, []string{"--config", cfg}, &f.config)
			if err == nil || !strings.Contains(err.Error(), cfg) {
				t.Fatalf("error %v does not name the file", err)
			}
		})
	}
	var f serveFlags
	fs := serveFlagSet(&f)
	t.Setenv("SEDIMENT_NODE_ID", "x")
	if err := parseFlags(fs, nil, &f.config); err == nil || !strings.Contains(err.Error(), "SEDIMENT_NODE_ID") {
		t.Fatalf("bad environment value: %v", err)
	}
}
