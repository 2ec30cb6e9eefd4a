package meta

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The keyspace; KEYSPACE.md documents it and must change with this file.
const (
	// rootPrefix holds everything Sediment writes to etcd.
	rootPrefix = "/sediment/"
	// ClusterIDKey holds the cluster id; it is the only key outside the versioned root.
	ClusterIDKey = rootPrefix + "cluster-id"
	// layoutVersion names the key layout under the cluster root ("/sediment/<id>/v1/").
	layoutVersion = "v1"

	brokersDir    = "brokers/"
	controllerKey = "controller"
	controllerDir = controllerKey + "/"
	topicsDir     = "topics/"
	partitionsDir = "partitions/"
	configDir     = "config/"
	clusterCfgDir = configDir + "cluster/"
	aclsDir       = "acls/"
	usersDir      = "users/"
	tierDir       = "tier/"

	// valueVersion is the "v" field of every JSON value this code writes. Readers reject
	// values with a version they do not know rather than misread them.
	valueVersion = 1
)

// clusterPrefix returns "/sediment/<cluster-id>/v1/".
func clusterPrefix(clusterID string) string {
	return rootPrefix + clusterID + "/" + layoutVersion + "/"
}

func (s *Store) brokerKey(id int32) string {
	return s.prefix + brokersDir + strconv.FormatInt(int64(id), 10)
}

func (s *Store) topicKey(name string) string { return s.prefix + topicsDir + name }

// partitionsPrefix returns ".../partitions/<topic-id>/": ids have a fixed length, so the
// prefix of one topic never matches another's keys.
func (s *Store) partitionsPrefix(id TopicID) string {
	return s.prefix + partitionsDir + id.String() + "/"
}

func (s *Store) partitionKey(id TopicID, p int32) string {
	return s.partitionsPrefix(id) + strconv.FormatInt(int64(p), 10)
}

func (s *Store) clusterConfigKey(name string) string { return s.prefix + clusterCfgDir + name }

// ControllerKey is the election prefix reserved for the controller (concurrency.Election).
func (s *Store) ControllerKey() string { return s.prefix + controllerKey }

// TierPrefix is the prefix reserved for the tiering component's remote segment metadata of
// one partition: ".../tier/<topic-id>/<p>/".
func (s *Store) TierPrefix(id TopicID, p int32) string {
	return s.prefix + tierDir + id.String() + "/" + strconv.FormatInt(int64(p), 10) + "/"
}

// parsePartitionKey parses "<topic-id>/<p>" (the part after partitions/).
func parsePartitionKey(rel string) (TopicID, int32, error) {
	idText, pText, ok := strings.Cut(rel, "/")
	if !ok {
		return TopicID{}, 0, fmt.Errorf("%w: partition key %q", ErrInvalid, rel)
	}
	id, err := ParseTopicID(idText)
	if err != nil {
		return TopicID{}, 0, err
	}
	p, err := strconv.ParseInt(pText, 10, 32)
	if err != nil || p < 0 {
		return TopicID{}, 0, fmt.Errorf("%w: partition key %q", ErrInvalid, rel)
	}
	return id, int32(p), nil
}

// Wire forms: each value is a JSON object with "v" first, then the fields of the type.

type clusterIDValue struct {
	V  int    `json:"v"`
	ID string `json:"id"`
}

type brokerValue struct {
	V int `json:"v"`
	BrokerInfo
}

type topicValue struct {
	V int `json:"v"`
	Topic
}

type partitionValue struct {
	V int `json:"v"`
	PartitionState
}

type configValue struct {
	V     int    `json:"v"`
	Value string `json:"value"`
}

func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain structs, maps and slices are encoded here; Marshal cannot fail on them.
		panic(fmt.Sprintf("meta: encoding %T: %v", v, err))
	}
	return string(b)
}

// decode unmarshals data into v (a pointer to one of the wire forms) and checks the version.
func decode(key string, data []byte, v any, version func() int) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("meta: decoding %s: %w", key, err)
	}
	if got := version(); got != valueVersion {
		return fmt.Errorf("%w: %s has version %d, this build reads %d", ErrUnsupportedVersion, key, got, valueVersion)
	}
	return nil
}

func decodeBroker(key string, data []byte) (BrokerInfo, error) {
	var w brokerValue
	err := decode(key, data, &w, func() int { return w.V })
	return w.BrokerInfo, err
}

func decodeTopic(key string, data []byte, rev int64) (Topic, error) {
	var w topicValue
	err := decode(key, data, &w, func() int { return w.V })
	w.Topic.Revision = rev
	return w.Topic, err
}

func decodePartition(key string, data []byte, rev int64) (PartitionState, error) {
	var w partitionValue
	err := decode(key, data, &w, func() int { return w.V })
	w.PartitionState.Revision = rev
	return w.PartitionState, err
}

func decodeConfig(key string, data []byte) (string, error) {
	var w configValue
	err := decode(key, data, &w, func() int { return w.V })
	return w.Value, err
}
