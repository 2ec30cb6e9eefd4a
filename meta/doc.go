/*
Package meta owns Sediment's metadata: an embedded etcd member (or a client of other
brokers' members), the etcd keyspace, broker leases and an in-memory cache fed by watches.
It is the only package that talks to etcd.

# Nodes

Start runs an etcd member inside the broker and returns a Node with a client connected to
it. By default a broker runs a single-member cluster; a production cluster runs 3 or 5
members inside its first brokers (Config.InitialCluster, founding members started together)
and the other brokers run no member and join as clients (Config.Endpoints). Restarting with
the same Config.Dir recovers the member's data and membership; InitialCluster is then ignored.

# Keyspace

KEYSPACE.md specifies every key and value. In short: /sediment/cluster-id holds the Kafka
cluster id, created once by whichever broker gets there first, and everything else lives
under /sediment/<cluster-id>/v1/:

	brokers/<id>               BrokerInfo, bound to the broker's lease (membership)
	controller/<lease-id>      controller candidates (Election, bound to the broker's lease)
	topics/<name>              Topic: id, replica assignment, config overrides
	partitions/<topic-id>/<p>  PartitionState: leader, leader epoch, ISR, partition epoch
	config/cluster/<name>      cluster-wide dynamic broker configs
	producer-ids               next unallocated idempotent-producer id
	tier/<topic-id>/<p>/...    RemoteSegmentRecord: one upload of a sealed segment
	acls/<acl-id>              ACLRecord: one ACL binding (Store.WatchACLs feeds authorizers)
	users/<escaped-name>       SCRAM credentials in Kafka's stored form (UserCache)
	sasl-mask-secret           the secret behind unknown users' SCRAM salts

Values are JSON objects with a version field "v". Every state change is an etcd txn that
compares the key's ModRevision with the revision the writer read (Topic.Revision,
PartitionState.Revision), so a deposed leader or controller can never overwrite newer state:
it gets ErrConflict, re-reads and decides again. Writes may carry more conditions as Fence
values (Store.PartitionUnchanged, Election.Guard), checked in the same transaction; a Fence is
opaque, so no caller of this package handles etcd types.

# Cache

Brokers learn changes by watching, not by RPCs: Store.StartCache loads brokers/, topics/,
partitions/ and config/cluster/ and then follows a watch. Readers never wait for etcd. A
writer that needs the next Metadata response to show its write calls Cache.WaitRevision with
the revision the write returned; reconcilers use Cache.Subscribe.

# Concurrency

Node, Store, Registration and Cache are safe for concurrent use. Each goroutine this package
starts (lease keep-alive, cache watch) is owned by the value that started it and stops with
its context or its Close.

See the package example for a single member in a temporary directory.
*/
package meta
