package meta

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Store reads and writes Sediment's keyspace under /sediment/<cluster-id>/v1/ (KEYSPACE.md).
// Every write is one etcd txn; state changes compare the key's ModRevision, so a writer
// holding an old read fails with ErrConflict instead of overwriting newer state.
// Safe for concurrent use.
type Store struct {
	cli       *clientv3.Client
	log       *slog.Logger
	clusterID string
	prefix    string
}

// OpenStore reads the cluster id, creating it first if this is a new cluster. Every broker
// races the same create-if-absent txn and reads back the winner, so all agree on one id.
func OpenStore(ctx context.Context, cli *clientv3.Client, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	fresh := newClusterID()
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(ClusterIDKey), "=", 0)).
		Then(clientv3.OpPut(ClusterIDKey, encode(clusterIDValue{V: valueVersion, ID: fresh}))).
		Else(clientv3.OpGet(ClusterIDKey)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("meta: reading cluster id: %w", err)
	}
	id := fresh
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) != 1 {
			return nil, fmt.Errorf("meta: cluster id key %s vanished", ClusterIDKey)
		}
		var w clusterIDValue
		if err := decode(ClusterIDKey, kvs[0].Value, &w, func() int { return w.V }); err != nil {
			return nil, err
		}
		if _, err := ParseTopicID(w.ID); err != nil {
			return nil, fmt.Errorf("meta: cluster id %q in %s: %w", w.ID, ClusterIDKey, err)
		}
		id = w.ID
	} else {
		logger.Info("created cluster id", "cluster_id", id)
	}
	return &Store{cli: cli, log: logger, clusterID: id, prefix: clusterPrefix(id)}, nil
}

// ClusterID returns the Kafka cluster id (22 characters of URL-safe base64).
func (s *Store) ClusterID() string { return s.clusterID }

// Prefix returns "/sediment/<cluster-id>/v1/".
func (s *Store) Prefix() string { return s.prefix }

// Client returns the etcd client the store uses.
func (s *Store) Client() *clientv3.Client { return s.cli }

func checkTopic(t Topic) error {
	if !ValidTopicName(t.Name) {
		return fmt.Errorf("%w: topic name %q", ErrInvalid, t.Name)
	}
	if t.ID.IsZero() {
		return fmt.Errorf("%w: topic %q has the zero id", ErrInvalid, t.Name)
	}
	return nil
}

// CreateTopic writes topics/<name> and partitions/<topic-id>/<p> for every partition in one
// txn, only if the topic does not exist (ErrTopicExists). parts[p] is the initial state of
// partition p; len(parts) must equal len(t.Partitions). It returns the revision of the write,
// which is also the new topic's Revision.
func (s *Store) CreateTopic(ctx context.Context, t Topic, parts []PartitionState) (int64, error) {
	if err := checkTopic(t); err != nil {
		return 0, err
	}
	if len(parts) != len(t.Partitions) {
		return 0, fmt.Errorf("%w: topic %q has %d partitions but %d partition states",
			ErrInvalid, t.Name, len(t.Partitions), len(parts))
	}
	key := s.topicKey(t.Name)
	ops := make([]clientv3.Op, 0, 1+len(parts))
	ops = append(ops, clientv3.OpPut(key, encode(topicValue{V: valueVersion, Topic: t})))
	for p, st := range parts {
		ops = append(ops, clientv3.OpPut(s.partitionKey(t.ID, int32(p)), encode(partitionValue{V: valueVersion, PartitionState: st})))
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(ops...).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("meta: creating topic %q: %w", t.Name, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%w: %q", ErrTopicExists, t.Name)
	}
	return resp.Header.Revision, nil
}

// DeleteTopic removes topics/<name> and every partitions/<topic-id>/ key in one txn.
// Remote segment metadata under tier/<topic-id>/ is left for the tiering component, which
// must delete the objects before their metadata.
func (s *Store) DeleteTopic(ctx context.Context, name string) (int64, error) {
	for {
		t, err := s.Topic(ctx, name)
		if err != nil {
			return 0, err
		}
		key := s.topicKey(name)
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", t.Revision)).
			Then(clientv3.OpDelete(key), clientv3.OpDelete(s.partitionsPrefix(t.ID), clientv3.WithPrefix())).
			Commit()
		if err != nil {
			return 0, fmt.Errorf("meta: deleting topic %q: %w", name, err)
		}
		if resp.Succeeded {
			return resp.Header.Revision, nil
		}
		// The topic changed (or was recreated with a new id) between the read and the txn:
		// read again so the partitions of the id being deleted are the ones removed.
	}
}

// UpdateTopic writes t (new configs, more partitions, a new assignment) if topics/<name> still
// has ModRevision == t.Revision, and puts newParts (partition index -> state) in the same txn.
// It fails with ErrConflict if the topic changed since it was read and ErrTopicNotFound if it
// is gone. On success the returned revision is the topic's new Revision.
func (s *Store) UpdateTopic(ctx context.Context, t Topic, newParts map[int32]PartitionState) (int64, error) {
	return s.UpdateTopicIf(ctx, t, newParts)
}

// UpdateTopicIf is UpdateTopic with more conditions in the same transaction,
// e.g. PartitionUnchanged for each partition state it rewrites.
func (s *Store) UpdateTopicIf(ctx context.Context, t Topic, newParts map[int32]PartitionState, fences ...Fence) (int64, error) {
	if err := checkTopic(t); err != nil {
		return 0, err
	}
	if t.Revision <= 0 {
		return 0, fmt.Errorf("%w: topic %q has no revision; read it before updating", ErrInvalid, t.Name)
	}
	key := s.topicKey(t.Name)
	ops := []clientv3.Op{clientv3.OpPut(key, encode(topicValue{V: valueVersion, Topic: t}))}
	// Sorted so the txn, and the watch events it produces, are deterministic.
	for _, p := range slices.Sorted(maps.Keys(newParts)) {
		if p < 0 || int(p) >= len(t.Partitions) {
			return 0, fmt.Errorf("%w: partition %d of topic %q is outside its %d partitions",
				ErrInvalid, p, t.Name, len(t.Partitions))
		}
		ops = append(ops, clientv3.OpPut(s.partitionKey(t.ID, p), encode(partitionValue{V: valueVersion, PartitionState: newParts[p]})))
	}
	resp, err := s.cli.Txn(ctx).
		If(conds(clientv3.Compare(clientv3.ModRevision(key), "=", t.Revision), fences)...).
		Then(ops...).
		Else(clientv3.OpGet(key, clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("meta: updating topic %q: %w", t.Name, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().GetCount() == 0 {
			return 0, fmt.Errorf("%w: %q", ErrTopicNotFound, t.Name)
		}
		return 0, fmt.Errorf("%w: topic %q changed since revision %d", ErrConflict, t.Name, t.Revision)
	}
	return resp.Header.Revision, nil
}

// PartitionUnchanged is a fence that holds while partitions/<id>/<p> still
// has ModRevision rev (PartitionState.Revision as read).
func (s *Store) PartitionUnchanged(id TopicID, p int32, rev int64) Fence {
	return fenceOf(clientv3.Compare(clientv3.ModRevision(s.partitionKey(id, p)), "=", rev))
}

// UpdatePartition writes st to partitions/<id>/<p> if the key still has
// ModRevision == st.Revision (leader and ISR changes), ErrConflict otherwise, including when
// the partition is gone. On success the returned revision is the partition's new Revision.
func (s *Store) UpdatePartition(ctx context.Context, id TopicID, p int32, st PartitionState) (int64, error) {
	return s.UpdatePartitionIf(ctx, id, p, st)
}

// UpdatePartitionIf is UpdatePartition with more conditions in the same
// transaction, e.g. Election.Guard so that only the sitting controller writes.
func (s *Store) UpdatePartitionIf(ctx context.Context, id TopicID, p int32, st PartitionState, fences ...Fence) (int64, error) {
	if st.Revision <= 0 {
		return 0, fmt.Errorf("%w: partition %s/%d has no revision; read it before updating", ErrInvalid, id, p)
	}
	key := s.partitionKey(id, p)
	resp, err := s.cli.Txn(ctx).
		If(conds(clientv3.Compare(clientv3.ModRevision(key), "=", st.Revision), fences)...).
		Then(clientv3.OpPut(key, encode(partitionValue{V: valueVersion, PartitionState: st}))).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("meta: updating partition %s/%d: %w", id, p, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%w: partition %s/%d changed since revision %d", ErrConflict, id, p, st.Revision)
	}
	return resp.Header.Revision, nil
}

// Topic reads topics/<name> from etcd (a linearizable read, unlike Cache.Topic).
func (s *Store) Topic(ctx context.Context, name string) (Topic, error) {
	key := s.topicKey(name)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return Topic{}, fmt.Errorf("meta: reading topic %q: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return Topic{}, fmt.Errorf("%w: %q", ErrTopicNotFound, name)
	}
	return decodeTopic(key, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
}

// Partition reads partitions/<id>/<p> from etcd (a linearizable read).
func (s *Store) Partition(ctx context.Context, id TopicID, p int32) (PartitionState, error) {
	key := s.partitionKey(id, p)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return PartitionState{}, fmt.Errorf("meta: reading partition %s/%d: %w", id, p, err)
	}
	if len(resp.Kvs) == 0 {
		return PartitionState{}, fmt.Errorf("%w: %s/%d", ErrPartitionNotFound, id, p)
	}
	return decodePartition(key, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
}

// PutClusterConfig sets the cluster-wide dynamic broker config name (a Kafka broker config
// name, e.g. "log.retention.ms") at config/cluster/<name>; an empty value deletes it.
func (s *Store) PutClusterConfig(ctx context.Context, name, value string) (int64, error) {
	if !ValidTopicName(name) { // config names use the same character set as topic names
		return 0, fmt.Errorf("%w: config name %q", ErrInvalid, name)
	}
	key := s.clusterConfigKey(name)
	var op clientv3.Op
	if value == "" {
		op = clientv3.OpDelete(key)
	} else {
		op = clientv3.OpPut(key, encode(configValue{V: valueVersion, Value: value}))
	}
	resp, err := s.cli.Txn(ctx).Then(op).Commit()
	if err != nil {
		return 0, fmt.Errorf("meta: setting cluster config %q: %w", name, err)
	}
	return resp.Header.Revision, nil
}

// ClusterConfigs reads all cluster-wide dynamic broker configs and the revision they were read at.
func (s *Store) ClusterConfigs(ctx context.Context) (map[string]string, int64, error) {
	resp, err := s.cli.Get(ctx, s.prefix+clusterCfgDir, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("meta: reading cluster configs: %w", err)
	}
	out := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		v, err := decodeConfig(string(kv.Key), kv.Value)
		if err != nil {
			return nil, 0, err
		}
		out[string(kv.Key[len(s.prefix)+len(clusterCfgDir):])] = v
	}
	return out, resp.Header.Revision, nil
}
