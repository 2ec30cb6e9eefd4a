package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseProperties: Java's properties format as Kafka reads
// server.properties.
func TestParseProperties(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []property // line numbers checked
	}{
		{"separators", "a=1\nb: 2\nc 3\nd\t=\t4\ne =: 5\n", []property{{"a", "1", 1}, {"b", "2", 2}, {"c", "3", 3}, {"d", "4", 4}, {"e", ": 5", 5}}},
		{"comments and blanks", "# x=1\n  ! y=2\n\n   \nz=3\n", []property{{"z", "3", 5}}},
		{"no value", "flag\nother=\n", []property{{"flag", "", 1}, {"other", "", 2}}},
		{"continuation", "list=a,\\\n    b,\\\n\tc\nnext=1\n", []property{{"list", "a,b,c", 1}, {"next", "1", 4}}},
		{"even backslashes do not continue", "p=C:\\\\\nq=2\n", []property{{"p", `C:\`, 1}, {"q", "2", 2}}},
		{"a comment does not continue", "# a \\\nb=1\n", []property{{"b", "1", 2}}},
		{"continuation at the end", "a=1\\", []property{{"a", "1", 1}}},
		{"escapes", `k\=\:\ ey=tab\there\u0041\n\r\f\\\q`, []property{{"k=: ey", "tab\there" + "A\n\r\f\\q", 1}}},
		{"CRLF and CR", "a=1\r\nb=2\rc=3", []property{{"a", "1", 1}, {"b", "2", 2}, {"c", "3", 3}}},
		{"last wins", "a=1\nb=2\na=3\n", []property{{"a", "3", 3}, {"b", "2", 2}}},
		{"trailing blanks kept", "a=1  \n", []property{{"a", "1  ", 1}}},
		{"UTF-8", "name=café\n", []property{{"name", "café", 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProperties([]byte(tc.in))
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
	for in, want := range map[string]string{
		"a=\\u12":        "line 1: a: malformed",
		"a=1\nb=\\uXYZW": "line 2: b: malformed",
		"\\u00zz=1":      "line 1: malformed",
		"a=\xff":         "not UTF-8",
	} {
		if _, err := parseProperties([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

// resolveFile maps properties text onto a fresh serve flag set.
func resolveFile(t *testing.T, text string) (map[string]string, []string, error) {
	t.Helper()
	props, err := parseProperties([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var f serveFlags
	settings, warnings, err := resolveConfig(serveFlagSet(&f), props)
	got := map[string]string{}
	for _, s := range settings {
		got[s.flag] = s.value
	}
	return got, warnings, err
}

// kafka4Properties is the shape of Kafka 4's stock
// config/server.properties (a combined broker and controller, KIP-853
// quorum), as an operator would bring it.
const kafka4Properties = `# A single combined node
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:9093

listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL

num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600

log.dirs=/var/lib/kafka/data
num.partitions=1
num.recovery.threads.per.data.dir=1

offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1

#log.flush.interval.messages=10000
#log.flush.interval.ms=1000
log.retention.hours=168
#log.retention.bytes=1073741824
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
group.initial.rebalance.delay.ms=0
`

// TestKafkaServerProperties: Kafka 4's stock file maps onto the flags; its
// thread and socket tuning is ignored with a warning each.
func TestKafkaServerProperties(t *testing.T) {
	got, warnings, err := resolveFile(t, kafka4Properties)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"node-id": "1", "listen": "0.0.0.0:9092", "advertise": "localhost:9092", "meta-peer-listen": "localhost:9093",
		"inter-broker-listener-name": "PLAINTEXT", "socket-request-max-bytes": "104857600", "data-dir": "/var/lib/kafka/data",
		"num-partitions": "1", "offsets-topic-replication-factor": "1", "transaction-state-log-replication-factor": "1",
		"transaction-state-log-min-isr": "1", "log-retention-ms": "604800000", "log-segment-bytes": "1073741824",
		"log-retention-check-interval": "5m0s", "group-initial-rebalance-delay": "0s",
		"listener-security-protocol-map": "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("--%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("settings %v, want exactly %v", got, want)
	}
	if len(warnings) != 7 || !strings.Contains(strings.Join(warnings, "\n"), "num.io.threads ignored") {
		t.Errorf("warnings: %q", warnings)
	}

	// README's example.
	got, warnings, err = resolveFile(t, "process.roles=broker,controller\nnode.id=1\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\n"+
		"advertised.listeners=PLAINTEXT://kafka-1.example:9092\ncontroller.listener.names=CONTROLLER\n"+
		"controller.quorum.voters=1@kafka-1.example:9093,2@kafka-2.example:9093,3@kafka-3.example:9093\n"+
		"log.dirs=/var/lib/sediment\nlog.retention.hours=168\nnum.partitions=6\ntier=s3://events/prod?endpoint=http://minio:9000&region=us-east-1\n")
	if err != nil || len(warnings) > 0 || got["advertise"] != "kafka-1.example:9092" || got["meta-peer-listen"] != "0.0.0.0:9093" ||
		got["tier"] != "s3://events/prod?endpoint=http://minio:9000&region=us-east-1" || got["meta-initial-cluster"] == "" {
		t.Fatalf("README's example: %v, %q, %v", got, warnings, err)
	}

	// A Kafka 3 quorum of voters becomes the etcd quorum, the controller
	// listener the etcd peer's port.
	got, _, err = resolveFile(t, "node.id=2\nprocess.roles=broker,controller\ncontroller.quorum.voters=1@h1:9093,2@h2:9093,3@[::1]:9093\n"+
		"listeners=PLAINTEXT://h2:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n")
	if err != nil {
		t.Fatal(err)
	}
	if got["meta-initial-cluster"] != "1=http://h1:9093,2=http://h2:9093,3=http://[::1]:9093" || got["meta-peer-listen"] != "0.0.0.0:9093" || got["listen"] != "h2:9092" {
		t.Fatalf("voters: %v", got)
	}
}

// TestKafkaNamesReachTheirFlags: every flag whose help names its Kafka
// setting ("log.segment.bytes: ...", "replica.lag.time.max.ms as a
// duration") is reached from a file by that name, a duration's in the unit
// its name ends in.
func TestKafkaNamesReachTheirFlags(t *testing.T) {
	var f serveFlags
	fs := serveFlagSet(&f)
	kafkaName := regexp.MustCompile(`^([a-z0-9]+(?:\.[a-z0-9]+)+)(?::| as a duration)`)
	n := 0
	fs.VisitAll(func(fl *flag.Flag) {
		m := kafkaName.FindStringSubmatch(fl.Usage)
		if m == nil {
			return
		}
		n++
		value, want := fl.DefValue, fl.DefValue
		if isDurationFlag(fl) {
			value = "7"
			unit := map[string]time.Duration{"ms": time.Millisecond, "seconds": time.Second, "minutes": time.Minute, "hours": time.Hour}[m[1][strings.LastIndex(m[1], ".")+1:]]
			if unit == 0 {
				t.Errorf("--%s: its Kafka name %s has no unit", fl.Name, m[1])
				return
			}
			want = (7 * unit).String()
		}
		got, _, err := resolveFile(t, m[1]+"="+value)
		if err != nil || got[fl.Name] != want {
			t.Errorf("%s=%s: %v, %v; want --%s=%s", m[1], value, got, err, fl.Name, want)
		}
	})
	if n < 30 {
		t.Fatalf("only %d flags name their Kafka setting", n)
	}
}

// TestConfigFileProblems: each problem is an error naming the file, the
// line and the setting, all of them at once; unknown names list near
// misses.
func TestConfigFileProblems(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"near miss of a Kafka name", "log.retention.hour=1\n", []string{":1: log.retention.hour: unknown setting; did you mean log.retention.hours?"}},
		{"near miss of a flag", "num_partitions=3\n", []string{"did you mean num-partitions, num.partitions?"}},
		{"case", "Node.Id=3\n", []string{"did you mean node.id"}},
		{"no near miss", "frobnicate.everything=1\n", []string{"unknown setting (settings are"}},
		{"several dirs", "log.dirs=/d1, /d2\n", []string{"log.dirs: Sediment keeps a broker's data in one directory (--data-dir); this lists 2: /d1, /d2"}},
		{"listener without protocol", "listeners=INTERNAL://:9094\n", []string{"listener INTERNAL has no security protocol"}},
		{"unknown protocol", "listeners=A://:9094\nlistener.security.protocol.map=A:KERBEROS\n", []string{"listener A has no security protocol"}},
		{"inter-broker protocol twice", "inter.broker.listener.name=PLAINTEXT\nsecurity.inter.broker.protocol=PLAINTEXT\n", []string{"set only one of"}},
		{"bad listener", "listeners=localhost:9092\n", []string{`"localhost:9092": want NAME://HOST:PORT`}},
		{"advertised name", "listeners=PLAINTEXT://:9092\nadvertised.listeners=OTHER://h:1\n", []string{"listener OTHER is not in listeners"}},
		{"controller only", "process.roles=controller\n", []string{"no controller-only nodes"}},
		{"zookeeper", "zookeeper.connect=zk:2181\n", []string{"zookeeper.connect: Kafka's setting has no equivalent in Sediment: Sediment keeps metadata in etcd"}},
		{"TLS setting", "ssl.keystore.location=/k.jks\n", []string{"TLS reads PEM files: --ssl-cert-file"}},
		{"JAAS", "sasl.jaas.config=x\n", []string{"no JAAS"}},
		{"tiering without a tier", "remote.log.storage.system.enable=true\n", []string{"add tier = "}},
		{"quorum without ids", "controller.quorum.bootstrap.servers=h1:9093,h2:9093\n", []string{"use controller.quorum.voters"}},
		{"bad voter", "controller.quorum.voters=h1:9093\n", []string{`"h1:9093": want ID@HOST:PORT`}},
		{"conflict", "node.id=1\nnode-id=2\n", []string{"2: node-id and line 1: node.id both set --node-id, to different values"}},
		{"bad duration", "replica.lag.time.max.ms=soon\n", []string{`replica.lag.time.max.ms: "soon": want a whole number of ms`}},
		{"bad hours", "log.retention.hours=1e3\n", []string{`"1e3" is not a whole number`}},
		{"bad value", "num.partitions=many\n", []string{"num.partitions=many (as --num-partitions=many): invalid value"}},
		{"bad flush", "log.flush.interval.messages=0\n", []string{"want a count from 1"}},
		{"nested config", "config=/etc/other\n", []string{"cannot name another"}},
		{"all at once", "a.b.c=1\nlog.dirs=/x,/y\nnum.io.threads=8\nzookeeper.connect=z\n", []string{":1: a.b.c", ":2: log.dirs", ":4: zookeeper.connect"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "server.properties")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			var f serveFlags
			fs := serveFlagSet(&f)
			fs.SetOutput(new(bytes.Buffer))
			err := parseFlags(fs, []string{"--config", path}, &f.config)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) || !strings.Contains(err.Error(), path+":") {
					t.Errorf("error %q lacks %q or the file's name", err, w)
				}
			}
		})
	}
	big := filepath.Join(t.TempDir(), "big.properties")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), maxConfigFileBytes/10+1), 0o644); err != nil {
		t.Fatal(err)
	}
	var f serveFlags
	if err := parseFlags(serveFlagSet(&f), []string{"--config", big}, &f.config); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized file: %v", err)
	}
}

// TestKafkaNamePrecedence: in a file, Kafka's own precedence among names
// of one setting (log.retention.ms over .minutes over .hours, log.dirs over
// log.dir); over the file, SEDIMENT_* and then the command line.
func TestKafkaNamePrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.properties")
	text := "log.retention.hours=1\nlog.retention.ms=5000\nlog.retention.minutes=2\nlog.dir=/old\nlog.dirs=/new\n" +
		"node.id=4\nbroker.id=4\nlog.roll.hours=2\nnum.partitions=3\ndefault.replication.factor=2\nauto.create.topics.enable=false\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var f serveFlags
	fs := serveFlagSet(&f)
	if err := parseFlags(fs, []string{"--config", path}, &f.config); err != nil {
		t.Fatal(err)
	}
	if f.retentionMs != 5000 || f.dataDir != "/new" || f.nodeID != 4 || f.segmentMs != 2*3600*1000 || f.numPartitions != 3 || f.replication != 2 || f.autoCreate {
		t.Fatalf("retention %d ms (want 5000), data dir %s (want /new), node %d, roll %d ms, partitions %d, replication %d, auto-create %v",
			f.retentionMs, f.dataDir, f.nodeID, f.segmentMs, f.numPartitions, f.replication, f.autoCreate)
	}
	t.Setenv("SEDIMENT_NUM_PARTITIONS", "6")
	t.Setenv("SEDIMENT_LOG_RETENTION_MS", "7000")
	f = serveFlags{}
	fs = serveFlagSet(&f)
	if err := parseFlags(fs, []string{"--config", path, "--log-retention-ms", "9000"}, &f.config); err != nil {
		t.Fatal(err)
	}
	if f.numPartitions != 6 || f.retentionMs != 9000 || f.replication != 2 {
		t.Fatalf("partitions %d (want 6 from the environment), retention %d ms (want 9000 from the flag), replication %d (want 2 from the file)",
			f.numPartitions, f.retentionMs, f.replication)
	}
}

func TestNearMisses(t *testing.T) {
	known := []string{"log.retention.hours", "log.retention.ms", "log.segment.bytes", "num.partitions", "num-partitions"}
	for name, want := range map[string]string{
		"log.retention.hour":   "log.retention.hours",
		"LOG.SEGMENT.BYTES":    "log.segment.bytes",
		"num.partitons":        "num.partitions,num-partitions",
		"log.retention":        "",
		"completely.unrelated": "",
	} {
		if got := strings.Join(nearMisses(name, known), ","); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "abc", 3}, {"kitten", "sitting", 3}, {"same", "same", 0}, {"ab", "ba", 2}} {
		if d := editDistance(c.a, c.b); d != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, d, c.d)
		}
	}
}

// TestSecurityListenersFromConfig: several listeners with their protocols,
// advertised addresses, TLS and SASL settings reach serve's flags.
func TestSecurityListenersFromConfig(t *testing.T) {
	got, _, err := resolveFile(t, "listeners=CLIENT://:9092,INTERNAL://10.0.0.1:9094,CONTROLLER://:9093\n"+
		"controller.listener.names=CONTROLLER\n"+
		"listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:PLAINTEXT\n"+
		"advertised.listeners=CLIENT://kafka-1.example:9092,INTERNAL://10.0.0.1:9094\n"+
		"security.inter.broker.protocol=SSL\n"+
		"ssl.client.auth=required\nsasl.enabled.mechanisms=SCRAM-SHA-512\nconnections.max.reauth.ms=3600000\n"+
		"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256\nssl.principal.mapping.rules=RULE:^CN=(.*)$/$1/,DEFAULT\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"listeners":                            "CLIENT://0.0.0.0:9092,INTERNAL://10.0.0.1:9094",
		"advertised-listeners":                 "CLIENT://kafka-1.example:9092,INTERNAL://10.0.0.1:9094",
		"listener-security-protocol-map":       "CLIENT:SASL_SSL,INTERNAL:SSL",
		"inter-broker-listener-name":           "INTERNAL",
		"ssl-client-auth":                      "required",
		"sasl-enabled-mechanisms":              "SCRAM-SHA-512",
		"connections-max-reauth":               "1h0m0s",
		"sasl-mechanism-inter-broker-protocol": "SCRAM-SHA-256",
		"ssl-principal-mapping-rules":          "RULE:^CN=(.*)$/$1/,DEFAULT",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("--%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["listen"]; ok {
		t.Errorf("--listen set with several listeners: %v", got)
	}
}
