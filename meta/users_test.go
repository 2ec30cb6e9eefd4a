package meta

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sedimentio/sediment/security"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// UserCache is what the broker hands to security.NewAuthenticator.
var _ security.CredentialSource = (*UserCache)(nil)

func TestUserCredentialStore(t *testing.T) {
	ctx := testCtx(t)
	n := startSingle(t, "")
	s := openStore(t, n.Client())

	const name = "we/ird%name" // must not escape users/
	if _, err := s.ScramCredentials(ctx, name); !errors.Is(err, ErrCredentialNotFound) {
		t.Fatalf("no user yet: %v", err)
	}
	if _, err := s.PutScramCredential(ctx, name, "SCRAM-SHA-256", "stored-256"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutScramCredential(ctx, name, "SCRAM-SHA-512", "stored-512"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutScramCredential(ctx, "bob", "SCRAM-SHA-256", "bob-256"); err != nil {
		t.Fatal(err)
	}
	creds, err := s.ScramCredentials(ctx, name)
	if err != nil || len(creds) != 2 || creds["SCRAM-SHA-256"] != "stored-256" || creds["SCRAM-SHA-512"] != "stored-512" {
		t.Fatalf("ScramCredentials = %v, %v", creds, err)
	}
	if got := s.UserKey(name); got != s.Prefix()+"users/we%2Fird%25name" {
		t.Fatalf("UserKey = %s", got)
	}
	users, _, err := s.Users(ctx)
	if err != nil || len(users) != 2 || users["bob"]["SCRAM-SHA-256"] != "bob-256" {
		t.Fatalf("Users = %v, %v", users, err)
	}
	if _, err := s.DeleteScramCredential(ctx, name, "SCRAM-SHA-256"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteScramCredential(ctx, name, "SCRAM-SHA-256"); !errors.Is(err, ErrCredentialNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := s.DeleteScramCredential(ctx, name, "SCRAM-SHA-512"); err != nil {
		t.Fatal(err)
	}
	if resp, err := n.Client().Get(ctx, s.UserKey(name)); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("the key of a user without credentials stays: %v", err)
	}
	for _, bad := range []struct{ user, mech, stored string }{
		{"", "SCRAM-SHA-256", "x"}, {"a", "scram", "x"}, {"a", "", "x"}, {"a", "SCRAM-SHA-256", ""},
	} {
		if _, err := s.PutScramCredential(ctx, bad.user, bad.mech, bad.stored); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutScramCredential(%q, %q, %q) = %v", bad.user, bad.mech, bad.stored, err)
		}
	}
}

// TestUserCacheAuthenticates: credentials written to etcd authenticate franz-go's SCRAM
// client through another broker's UserCache, and a password change applies within a second.
func TestUserCacheAuthenticates(t *testing.T) {
	ctx := testCtx(t)
	n := startSingle(t, "")
	writer := openStore(t, n.Client())
	reader := openStore(t, newClient(t, n))

	secret, err := reader.MaskSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := writer.MaskSecret(ctx)
	if err != nil || !bytes.Equal(secret, again) || len(secret) != 32 {
		t.Fatalf("brokers read different mask secrets: %x, %x, %v", secret, again, err)
	}

	setPassword := func(pass string) int64 {
		c, err := security.NewScramCredential(security.ScramSHA512, pass, 0)
		if err != nil {
			t.Fatal(err)
		}
		rev, err := writer.PutScramCredential(ctx, "alice", string(c.Mechanism), c.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	setPassword("first")
	cache, err := reader.WatchUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	cfg := security.DefaultSASLConfig()
	cfg.Mechanisms = []security.Mechanism{security.ScramSHA512, security.Plain}
	cfg.MaskSecret = secret
	auth, err := security.NewAuthenticator(cfg, cache, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	login := func(pass string) error {
		ex, err := auth.Start("SCRAM-SHA-512")
		if err != nil {
			t.Fatal(err)
		}
		sess, msg, err := scram.Auth{User: "alice", Pass: pass}.AsSha512Mechanism().Authenticate(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		for {
			out, done, err := ex.Next(msg)
			if err != nil {
				return err
			}
			_, next, err := sess.Challenge(out)
			if err != nil {
				t.Fatalf("the client refused the server: %v", err)
			}
			if done {
				return nil
			}
			msg = next
		}
	}
	if err := login("first"); err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := login("second"); !errors.Is(err, security.ErrAuthenticationFailed) {
		t.Fatalf("a wrong password: %v", err)
	}
	start := time.Now()
	rev := setPassword("second")
	if err := cache.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the new password took %v to arrive", d)
	}
	if err := login("second"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	if err := login("first"); !errors.Is(err, security.ErrAuthenticationFailed) {
		t.Fatalf("the old password still works: %v", err)
	}
	if !auth.VerifyPassword("alice", "second") {
		t.Fatal("PLAIN verification against the cached credential failed")
	}
	if got := cache.Users(); len(got) != 1 || got["alice"]["SCRAM-SHA-512"] == "" {
		t.Fatalf("Users = %v", got)
	}
	rev, err = writer.DeleteScramCredential(ctx, "alice", "SCRAM-SHA-512")
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, ok := cache.Credential("alice", "SCRAM-SHA-512"); ok {
		t.Fatal("a deleted credential is still cached")
	}
	cache.Close()
	if err := cache.WaitRevision(ctx, rev+100); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitRevision after Close: %v", err)
	}
}
