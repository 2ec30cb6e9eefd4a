package it

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kcat runs the kcat command against b and returns its stdout.
func kcat(t testing.TB, bin string, stdin string, args ...string) string {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, tail(stderr.String(), 40), tail(stdout.String(), 20))
	}
	// kcat's own errors start with "% ERROR"; librdkafka's log lines with
	// "%<syslog level>|": 0-3 are emergencies to errors.
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, "% ERROR") || (len(line) > 2 && line[0] == '%' && line[1] >= '0' && line[1] <= '3' && line[2] == '|') {
			t.Fatalf("kcat %s reported errors:\n%s", strings.Join(args, " "), tail(stderr.String(), 40))
		}
	}
	return stdout.String()
}

// TestKcat lists metadata, produces with every codec and consumes with the
// kcat command (librdkafka): consumers assign partitions directly (-C
// without -G).
func TestKcat(t *testing.T) {
	t.Parallel()
	bin := requireCommand(t, "kcat")
	b := StartBroker(t)
	adm := b.Admin(t)
	const (
		partitions = 2
		n          = 200
	)
	for _, codec := range codecs {
		createTopic(t, adm, "kcat-"+codec, partitions, nil)
	}

	t.Run("metadata", func(t *testing.T) {
		out := kcat(t, bin, "", "-b", b.Addr, "-L", "-m", "30")
		for _, want := range []string{
			"1 brokers:",
			fmt.Sprintf("broker 1 at %s", b.Addr),
			fmt.Sprintf(`topic "kcat-zstd" with %d partitions:`, partitions),
			"partition 1, leader 1, replicas: 1, isrs: 1",
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("kcat -L output lacks %q:\n%s", want, out)
			}
		}
	})

	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			for p := range int32(partitions) {
				var in strings.Builder
				for i := range n {
					fmt.Fprintln(&in, value(topic, p, i))
				}
				args := []string{"-b", b.Addr, "-P", "-t", topic, "-p", strconv.Itoa(int(p)),
					"-X", "acks=all", "-X", "linger.ms=20"}
				if codec != "none" {
					args = append(args, "-z", codec)
				}
				kcat(t, bin, in.String(), args...)

				out := kcat(t, bin, "", "-b", b.Addr, "-C", "-t", topic, "-p", strconv.Itoa(int(p)),
					"-e", "-o", "beginning", "-f", `%o %s\n`, "-m", "30")
				lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
				if len(lines) != n {
					t.Fatalf("%s[%d]: kcat consumed %d records, want %d:\n%s", topic, p, len(lines), n, tail(out, 10))
				}
				for i, line := range lines {
					if want := fmt.Sprintf("%d %s", i, value(topic, p, i)); line != want {
						t.Fatalf("%s[%d]: kcat line %d is %q, want %q", topic, p, i, line, want)
					}
				}
				// franz-go reads the same records, in batches of kcat's codec.
				recs := consumePartition(t, b, topic, p, 0, n)
				checkValues(t, topic, p, 0, 0, recs)
				// librdkafka decides per broker which codecs it may use, from
				// ApiVersions: LZ4 needs FindCoordinator (no consumer groups
				// yet), and librdkafka before 2.10 wants Produce v0 for gzip
				// and snappy (this broker serves v3+, like Kafka 4). It then
				// sends uncompressed batches; what it does send must be
				// stored verbatim.
				stored := map[uint8]int{}
				for _, r := range recs {
					stored[r.Attrs.CompressionType()]++
				}
				for c := range stored {
					if c != 0 && c != codecAttr(codec) {
						t.Fatalf("%s[%d]: batches stored with codec %d, want %d (%s) or none", topic, p, c, codecAttr(codec), codec)
					}
				}
				if stored[codecAttr(codec)] == 0 {
					if codec == "zstd" {
						t.Fatalf("%s[%d]: no batch stored with codec zstd", topic, p)
					}
					t.Logf("%s[%d]: librdkafka sent %s uncompressed (%d records): it does not enable %s against this broker's ApiVersions", topic, p, codec, n, codec)
				}
			}
		})
	}
}
