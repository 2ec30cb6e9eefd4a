package meta

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config configures a metadata node: an embedded etcd member plus a client to it, or (with
// Endpoints) a client only. cmd/ fills it from flags; DefaultConfig gives the single-broker
// defaults of DESIGN.md.
type Config struct {
	NodeID int32  // broker id; the etcd member name is its decimal form
	Dir    string // etcd data dir, <data-dir>/meta

	// ClientListen is host:port for this member's etcd client URL (http://ClientListen).
	// Port 0 picks a free port; Node.ClientURL reports the bound address.
	ClientListen string
	// ClientAdvertise is the host:port other processes use to reach ClientListen; empty = ClientListen.
	ClientAdvertise string
	// PeerListen is host:port for this member's raft peer URL. The advertised peer URL is
	// this member's entry in InitialCluster.
	PeerListen string
	// InitialCluster lists the founding members as "1=http://h1:2380,2=http://h2:2380".
	// Empty means a single member "<NodeID>=http://<PeerListen>". It is read only when Dir
	// holds no etcd data yet; a restarted member reuses the membership stored in Dir.
	InitialCluster string
	// JoinExisting starts a member that was added to a running cluster (etcd MemberAdd) instead
	// of bootstrapping a new one: etcd's initial-cluster-state "existing". Ignored when Dir
	// already holds data.
	JoinExisting bool

	// Endpoints, when non-empty, runs no member: Start only dials these etcd client URLs.
	Endpoints []string

	DialTimeout  time.Duration // dialing etcd and the readiness probe of a client-only node
	StartTimeout time.Duration // how long Start waits for the member to join a quorum and be ready
	SessionTTL   time.Duration // broker lease TTL (broker.session.timeout.ms)

	// QuotaBackendBytes caps etcd's database; past it etcd raises a NOSPACE alarm and refuses
	// writes. Metadata is small; the cap keeps a runaway writer from filling the disk.
	QuotaBackendBytes int64
	// CompactionRetention is how many revisions etcd keeps (auto-compaction-mode "revision").
	// A Cache whose watch falls further behind re-lists.
	CompactionRetention int64
	// MaxTxnOps is etcd's max-txn-ops: CreateTopic writes 1+partitions keys in one txn, so
	// it bounds the partition count of a single CreateTopic / UpdateTopic.
	MaxTxnOps uint
}

// DefaultConfig returns the defaults for a single broker with node id 1.
func DefaultConfig() Config {
	return Config{
		NodeID:              1,
		Dir:                 "data/meta",
		ClientListen:        "127.0.0.1:2379",
		PeerListen:          "127.0.0.1:2380",
		DialTimeout:         5 * time.Second,
		StartTimeout:        60 * time.Second,
		SessionTTL:          9 * time.Second,
		QuotaBackendBytes:   1 << 30,
		CompactionRetention: 10000,
		MaxTxnOps:           1 << 14,
	}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	if c.NodeID < 0 {
		return fmt.Errorf("meta: node id %d is negative", c.NodeID)
	}
	if c.DialTimeout <= 0 {
		return errors.New("meta: dial timeout must be positive")
	}
	if c.SessionTTL < time.Second {
		return fmt.Errorf("meta: session ttl %v is below 1s", c.SessionTTL)
	}
	if len(c.Endpoints) > 0 {
		for _, ep := range c.Endpoints {
			if strings.TrimSpace(ep) == "" {
				return errors.New("meta: empty etcd endpoint")
			}
		}
		return nil
	}
	if c.Dir == "" {
		return errors.New("meta: data dir is required to run an etcd member")
	}
	if c.StartTimeout <= 0 {
		return errors.New("meta: start timeout must be positive")
	}
	if c.QuotaBackendBytes < 0 || c.CompactionRetention < 0 {
		return errors.New("meta: quota and compaction retention must not be negative")
	}
	for _, hp := range []struct{ name, v string }{
		{"client listen", c.ClientListen},
		{"peer listen", c.PeerListen},
	} {
		if err := checkHostPort(hp.v); err != nil {
			return fmt.Errorf("meta: %s: %w", hp.name, err)
		}
	}
	if c.ClientAdvertise != "" {
		if err := checkHostPort(c.ClientAdvertise); err != nil {
			return fmt.Errorf("meta: client advertise: %w", err)
		}
	}
	members, err := parseInitialCluster(c.initialCluster())
	if err != nil {
		return err
	}
	if len(members[c.memberName()]) == 0 {
		return fmt.Errorf("meta: initial cluster %q has no member named %q (the node id)", c.InitialCluster, c.memberName())
	}
	return nil
}

// memberName is the etcd member name of this node.
func (c Config) memberName() string { return strconv.FormatInt(int64(c.NodeID), 10) }

// initialCluster returns InitialCluster or the single-member default.
func (c Config) initialCluster() string {
	if c.InitialCluster != "" {
		return c.InitialCluster
	}
	return c.memberName() + "=http://" + c.PeerListen
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: bad port: %w", s, err)
	}
	return nil
}

// parseInitialCluster parses "name=url,name=url" into name -> peer URLs (a member may be
// listed more than once with several URLs, as in etcd).
func parseInitialCluster(s string) (map[string][]url.URL, error) {
	out := make(map[string][]url.URL)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, raw, ok := strings.Cut(part, "=")
		if !ok || name == "" || raw == "" {
			return nil, fmt.Errorf("meta: initial cluster entry %q is not name=url", part)
		}
		if _, err := strconv.ParseInt(name, 10, 32); err != nil {
			return nil, fmt.Errorf("meta: initial cluster member name %q is not a node id", name)
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("meta: initial cluster entry %q: %w", part, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("meta: initial cluster entry %q: scheme must be http or https", part)
		}
		if u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("meta: initial cluster entry %q: want scheme://host:port", part)
		}
		u.Path = ""
		out[name] = append(out[name], *u)
	}
	if len(out) == 0 {
		return nil, errors.New("meta: initial cluster is empty")
	}
	return out, nil
}
