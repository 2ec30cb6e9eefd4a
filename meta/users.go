package meta

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// SCRAM credentials: users/<escaped-name> holds one user's credentials, by mechanism, in
// their stored form (security.ScramCredential.Encode; never a password). meta treats the
// stored form as opaque text. And sasl-mask-secret: the cluster-wide secret from which
// brokers derive what they show for unknown users (security.SASLConfig.MaskSecret).

// ErrCredentialNotFound reports a user, or a user's mechanism, without a credential
// (Kafka's RESOURCE_NOT_FOUND in AlterUserScramCredentials and DescribeUserScramCredentials).
var ErrCredentialNotFound = errors.New("meta: credential not found")

const (
	maskSecretKey  = "sasl-mask-secret"
	maskSecretSize = 32
	maxUserName    = 1024
	maxStoredForm  = 8192
)

type userValue struct {
	V     int               `json:"v"`
	Name  string            `json:"name"`
	Scram map[string]string `json:"scram"`
}

type secretValue struct {
	V      int    `json:"v"`
	Secret []byte `json:"secret"` // base64 in JSON
}

// escapeUserName makes a user name a key segment: bytes of [A-Za-z0-9._@-] stay, every
// other byte is %XX (uppercase hex), so names with '/' or '%' cannot reach other keys.
func escapeUserName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '@', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// UserKey returns users/<escaped-name>.
func (s *Store) UserKey(name string) string { return s.prefix + usersDir + escapeUserName(name) }

func checkUserName(name string) error {
	if name == "" || len(name) > maxUserName {
		return fmt.Errorf("%w: user name of %d bytes", ErrInvalid, len(name))
	}
	return nil
}

func checkMechanism(m string) error {
	if m == "" || len(m) > 32 || strings.Trim(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
		return fmt.Errorf("%w: SASL mechanism %q", ErrInvalid, m)
	}
	return nil
}

// readUser returns the user's credentials and the key's ModRevision (0: absent).
func (s *Store) readUser(ctx context.Context, name string) (map[string]string, int64, error) {
	key := s.UserKey(name)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, 0, fmt.Errorf("meta: reading user %q: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return map[string]string{}, 0, nil
	}
	v, err := decodeUser(key, resp.Kvs[0].Value)
	if err != nil {
		return nil, 0, err
	}
	return v.Scram, resp.Kvs[0].ModRevision, nil
}

func decodeUser(key string, data []byte) (userValue, error) {
	var w userValue
	err := decode(key, data, &w, func() int { return w.V })
	if w.Scram == nil {
		w.Scram = map[string]string{}
	}
	return w, err
}

// updateUser applies change to the user's credentials by compare-and-swap on the key,
// retrying when another writer got there first; an empty result deletes the key.
func (s *Store) updateUser(ctx context.Context, name string, change func(map[string]string) error) (int64, error) {
	key := s.UserKey(name)
	for {
		creds, rev, err := s.readUser(ctx, name)
		if err != nil {
			return 0, err
		}
		if err := change(creds); err != nil {
			return 0, err
		}
		cond := clientv3.Compare(clientv3.ModRevision(key), "=", rev)
		if rev == 0 {
			cond = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
		}
		op := clientv3.OpDelete(key)
		if len(creds) > 0 {
			op = clientv3.OpPut(key, encode(userValue{V: valueVersion, Name: name, Scram: creds}))
		}
		resp, err := s.cli.Txn(ctx).If(cond).Then(op).Commit()
		if err != nil {
			return 0, fmt.Errorf("meta: writing user %q: %w", name, err)
		}
		if resp.Succeeded {
			return resp.Header.Revision, nil
		}
	}
}

// PutScramCredential sets user's credential for mechanism ("SCRAM-SHA-256") to stored, its
// stored form, keeping the user's other mechanisms. It returns the write's revision.
func (s *Store) PutScramCredential(ctx context.Context, user, mechanism, stored string) (int64, error) {
	if err := checkUserName(user); err != nil {
		return 0, err
	}
	if err := checkMechanism(mechanism); err != nil {
		return 0, err
	}
	if stored == "" || len(stored) > maxStoredForm {
		return 0, fmt.Errorf("%w: stored credential of %d bytes", ErrInvalid, len(stored))
	}
	return s.updateUser(ctx, user, func(creds map[string]string) error {
		creds[mechanism] = stored
		return nil
	})
}

// DeleteScramCredential removes user's credential for mechanism (the user's key goes with
// its last credential). ErrCredentialNotFound if there is none.
func (s *Store) DeleteScramCredential(ctx context.Context, user, mechanism string) (int64, error) {
	if err := checkUserName(user); err != nil {
		return 0, err
	}
	return s.updateUser(ctx, user, func(creds map[string]string) error {
		if _, ok := creds[mechanism]; !ok {
			return fmt.Errorf("%w: user %q has no %s credential", ErrCredentialNotFound, user, mechanism)
		}
		delete(creds, mechanism)
		return nil
	})
}

// ScramCredentials reads user's credentials (mechanism → stored form), linearizably.
// ErrCredentialNotFound if the user has none.
func (s *Store) ScramCredentials(ctx context.Context, user string) (map[string]string, error) {
	creds, rev, err := s.readUser(ctx, user)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		return nil, fmt.Errorf("%w: user %q", ErrCredentialNotFound, user)
	}
	return creds, nil
}

// Users reads every user's credentials (user → mechanism → stored form) and the revision
// they were read at.
func (s *Store) Users(ctx context.Context) (map[string]map[string]string, int64, error) {
	resp, err := s.cli.Get(ctx, s.prefix+usersDir, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("meta: reading users: %w", err)
	}
	out := make(map[string]map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		v, err := decodeUser(string(kv.Key), kv.Value)
		if err != nil {
			return nil, 0, err
		}
		out[v.Name] = v.Scram
	}
	return out, resp.Header.Revision, nil
}

// UserCache mirrors users/ in memory so that authentication never waits for etcd. It
// satisfies security.CredentialSource. Safe for concurrent use.
type UserCache struct {
	w     *dirWatch
	users atomic.Pointer[map[string]map[string]string]
}

// WatchUsers loads every user's credentials and follows changes until ctx is done or Close
// is called. Undecodable values are logged and left out.
func (s *Store) WatchUsers(ctx context.Context) (*UserCache, error) {
	c := &UserCache{}
	w, err := s.startDirWatch(ctx, usersDir, func(items map[string][]byte, rev int64) {
		users := make(map[string]map[string]string, len(items))
		for key, data := range items {
			v, err := decodeUser(key, data)
			if err != nil || escapeUserName(v.Name) != key {
				s.log.Warn("skipping user", "key", s.prefix+usersDir+key, "revision", rev, "err", err)
				continue
			}
			users[v.Name] = v.Scram
		}
		c.users.Store(&users)
	})
	if err != nil {
		return nil, err
	}
	c.w = w
	return c, nil
}

// Credential returns the stored form of user's credential for mechanism.
func (c *UserCache) Credential(user, mechanism string) (string, bool) {
	s, ok := (*c.users.Load())[user][mechanism]
	return s, ok
}

// Users returns a copy of every user's credentials (user → mechanism → stored form).
func (c *UserCache) Users() map[string]map[string]string {
	src := *c.users.Load()
	out := make(map[string]map[string]string, len(src))
	for u, m := range src {
		out[u] = maps.Clone(m)
	}
	return out
}

// Revision is the revision the cache reflects.
func (c *UserCache) Revision() int64 { return c.w.Revision() }

// WaitRevision waits until the cache has applied the write that returned rev.
func (c *UserCache) WaitRevision(ctx context.Context, rev int64) error {
	return c.w.WaitRevision(ctx, rev)
}

// Close stops following etcd; lookups keep answering from the last state.
func (c *UserCache) Close() { c.w.Close() }

// MaskSecret returns the cluster's SASL mask secret, creating it (32 random bytes) if this
// is the first broker to ask: every broker then shows an unknown user the same salt.
func (s *Store) MaskSecret(ctx context.Context) ([]byte, error) {
	key := s.prefix + maskSecretKey
	fresh := make([]byte, maskSecretSize)
	rand.Read(fresh) // never fails
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, encode(secretValue{V: valueVersion, Secret: fresh}))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("meta: reading the SASL mask secret: %w", err)
	}
	if resp.Succeeded {
		return fresh, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) != 1 {
		return nil, fmt.Errorf("meta: %s vanished", key)
	}
	var w secretValue
	if err := decode(key, kvs[0].Value, &w, func() int { return w.V }); err != nil {
		return nil, err
	}
	if len(w.Secret) < 16 {
		return nil, fmt.Errorf("meta: %s holds %d bytes, want at least 16", key, len(w.Secret))
	}
	return w.Secret, nil
}
