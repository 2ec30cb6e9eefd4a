package meta

import (
	"os"
	"strings"
	"testing"
)

// TestKeyspaceDoc checks that the keys and values this package writes are the ones
// KEYSPACE.md shows.
func TestKeyspaceDoc(t *testing.T) {
	doc, err := os.ReadFile("KEYSPACE.md")
	if err != nil {
		t.Fatal(err)
	}
	id, err := ParseTopicID("uW8eU0f4SnyiWXqgyfjh0A")
	if err != nil {
		t.Fatal(err)
	}
	values := []string{
		encode(clusterIDValue{V: valueVersion, ID: "q5TQ0yYhQd2sJ9uZPd1vBw"}),
		encode(brokerValue{V: valueVersion, BrokerInfo: BrokerInfo{NodeID: 1, Host: "10.0.0.1", Port: 9092,
			Rack: "eu-west-1a", Listeners: map[string]string{"PLAINTEXT": "10.0.0.1:9092"}}}),
		encode(topicValue{V: valueVersion, Topic: Topic{Name: "orders", ID: id,
			Partitions: [][]int32{{1, 2, 3}, {2, 3, 1}}, Configs: map[string]string{"retention.ms": "604800000"}, Revision: 99}}),
		encode(partitionValue{V: valueVersion, PartitionState: PartitionState{Leader: 1, LeaderEpoch: 4,
			ISR: []int32{1, 2, 3}, PartitionEpoch: 7, Revision: 99}}),
		encode(configValue{V: valueVersion, Value: "604800000"}),
	}
	for _, v := range values {
		if !strings.Contains(string(doc), "\n"+v+"\n") {
			t.Errorf("KEYSPACE.md does not show the value %s", v)
		}
	}

	s := &Store{prefix: clusterPrefix("q5TQ0yYhQd2sJ9uZPd1vBw")}
	keys := map[string]string{
		ClusterIDKey:              "/sediment/cluster-id",
		s.prefix:                  "/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/",
		s.brokerKey(1):            "/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/brokers/1",
		s.ControllerKey():         "/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/controller",
		s.topicKey("orders"):      "/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/topics/orders",
		s.partitionKey(id, 12):    "/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/partitions/uW8eU0f4SnyiWXqgyfjh0A/12",
		s.clusterConfigKey("a.b"): "/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/config/cluster/a.b",
		s.TierPrefix(id, 3):       "/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/tier/uW8eU0f4SnyiWXqgyfjh0A/3/",
		s.partitionsPrefix(id):    "/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/partitions/uW8eU0f4SnyiWXqgyfjh0A/",
	}
	for got, want := range keys {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
	gotID, p, err := parsePartitionKey("uW8eU0f4SnyiWXqgyfjh0A/12")
	if err != nil || gotID != id || p != 12 {
		t.Errorf("parsePartitionKey = %v, %d, %v", gotID, p, err)
	}
	for _, bad := range []string{"uW8eU0f4SnyiWXqgyfjh0A", "short/1", "uW8eU0f4SnyiWXqgyfjh0A/-1", "uW8eU0f4SnyiWXqgyfjh0A/x"} {
		if _, _, err := parsePartitionKey(bad); err == nil {
			t.Errorf("parsePartitionKey(%q) succeeded", bad)
		}
	}
}

func TestTopicID(t *testing.T) {
	seen := map[TopicID]bool{}
	for range 1000 {
		id := NewTopicID()
		s := id.String()
		if id.IsZero() || len(s) != 22 || s[0] == '-' || seen[id] {
			t.Fatalf("bad or repeated id %s", s)
		}
		seen[id] = true
		back, err := ParseTopicID(s)
		if err != nil || back != id {
			t.Fatalf("ParseTopicID(%s) = %v, %v", s, back, err)
		}
	}
	if _, err := ParseTopicID("AAAAAAAAAAAAAAAAAAAAA!"); err == nil {
		t.Fatal("ParseTopicID accepted a non-base64 id")
	}
}

func TestValidTopicName(t *testing.T) {
	for name, want := range map[string]bool{
		"orders": true, "a.b_c-D9": true, strings.Repeat("x", 249): true,
		"": false, ".": false, "..": false, "a/b": false, "a b": false, strings.Repeat("x", 250): false, "é": false,
	} {
		if got := ValidTopicName(name); got != want {
			t.Errorf("ValidTopicName(%q) = %v, want %v", name, got, want)
		}
	}
}
