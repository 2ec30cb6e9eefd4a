package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockDataDir takes an exclusive lock on the data directory so two brokers
// never share one. The lock dies with the process, also on kill -9.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another sediment process", dir)
		}
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// dirIdentity is Kafka's meta.properties: the cluster and node a data
// directory belongs to, and the directory's own id.
type dirIdentity struct {
	clusterID   string
	nodeID      int32
	directoryID string
}

// loadOrCreateIdentity reads <dir>/meta.properties, checking it against the
// configured node and the cluster in etcd, or writes it for a new directory.
// A directory of another node or cluster is refused: its data belongs there.
func loadOrCreateIdentity(dir, clusterID string, nodeID int32) (dirIdentity, error) {
	path := filepath.Join(dir, "meta.properties")
	f, err := os.Open(path)
	if err == nil {
		defer f.Close()
		props := map[string]string{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if k, v, ok := strings.Cut(line, "="); ok {
				props[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		if err := sc.Err(); err != nil {
			return dirIdentity{}, fmt.Errorf("reading %s: %w", path, err)
		}
		id := dirIdentity{clusterID: props["cluster.id"], directoryID: props["directory.id"]}
		n, err := strconv.ParseInt(props["node.id"], 10, 32)
		if err != nil || id.clusterID == "" || id.directoryID == "" {
			return dirIdentity{}, fmt.Errorf("%s is incomplete or damaged (needs cluster.id, node.id, directory.id)", path)
		}
		id.nodeID = int32(n)
		if id.nodeID != nodeID {
			return dirIdentity{}, fmt.Errorf("data dir %s belongs to node %d, not to --node-id %d", dir, id.nodeID, nodeID)
		}
		if id.clusterID != clusterID {
			return dirIdentity{}, fmt.Errorf("data dir %s belongs to cluster %s, but etcd holds cluster %s", dir, id.clusterID, clusterID)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return dirIdentity{}, err
	}
	var raw [16]byte
	rand.Read(raw[:])
	id := dirIdentity{clusterID: clusterID, nodeID: nodeID, directoryID: base64.RawURLEncoding.EncodeToString(raw[:])}
	body := fmt.Sprintf("# written by sediment; do not edit\nversion=1\ncluster.id=%s\nnode.id=%d\ndirectory.id=%s\n", id.clusterID, id.nodeID, id.directoryID)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return dirIdentity{}, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return dirIdentity{}, err
	}
	return id, nil
}
