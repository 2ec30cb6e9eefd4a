package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/security"
	"github.com/sedimentio/sediment/security/securitytest"
)

// authLog records the principals connections authenticate as, and which
// connection (its remote address) did.
type authLog struct {
	slog.Handler
	mu     *sync.Mutex
	seen   *[]authEntry
	remote string // from the logger's attributes
}

type authEntry struct{ who, remote string } // who: "listener principal"

func newAuthLog() *authLog {
	return &authLog{Handler: slog.DiscardHandler, mu: new(sync.Mutex), seen: new([]authEntry)}
}

func (h *authLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *authLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "connection authenticated" {
		return nil
	}
	var lis, p string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "listener":
			lis = a.Value.String()
		case "principal":
			p = a.Value.String()
		}
		return true
	})
	h.mu.Lock()
	*h.seen = append(*h.seen, authEntry{lis + " " + p, h.remote})
	h.mu.Unlock()
	return nil
}

func (h *authLog) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	for _, a := range as {
		if a.Key == "remote" {
			c.remote = a.Value.String()
		}
	}
	return &c
}

func (h *authLog) WithGroup(string) slog.Handler { return h }

// count is how many times a connection authenticated as who.
func (h *authLog) count(who string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range *h.seen {
		if e.who == who {
			n++
		}
	}
	return n
}

// reauthenticated is how many connections authenticated as who more than
// once (KIP-368 re-authentication on the same connection).
func (h *authLog) reauthenticated(who string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	per := map[string]int{}
	for _, e := range *h.seen {
		if e.who == who {
			per[e.remote]++
		}
	}
	n := 0
	for _, k := range per {
		if k > 1 {
			n++
		}
	}
	return n
}

// secureBroker is one broker with PLAINTEXT, SASL_PLAINTEXT, SSL and
// SASL_SSL listeners and the users alice (SCRAM-SHA-256 and -512) and bob
// (SCRAM-SHA-512).
type secureBroker struct {
	*testBroker
	ca   *securitytest.CA
	log  *authLog
	tls  securitytest.Files
	addr map[string]string // listener name -> bound address
}

func startSecureBroker(t *testing.T, clientAuth security.ClientAuth, reauth time.Duration) *secureBroker {
	t.Helper()
	ca := securitytest.NewCA(t, "test-ca")
	files := ca.WriteFiles(t, filepath.Join(t.TempDir(), "tls"), pkix.Name{CommonName: "broker1"})
	al := newAuthLog()
	b := startNode(t, t.TempDir(), 1, nil, func(c *Config) {
		c.Security.Listeners = []Listener{
			{Name: "PLAINTEXT", Protocol: ProtocolPlaintext, Addr: "127.0.0.1:0"},
			{Name: "SASL", Protocol: ProtocolSASLPlaintext, Addr: "127.0.0.1:0"},
			{Name: "SSL", Protocol: ProtocolSSL, Addr: "127.0.0.1:0"},
			{Name: "SASLSSL", Protocol: ProtocolSASLSSL, Addr: "127.0.0.1:0"},
		}
		c.Security.TLS = security.TLSConfig{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA,
			ClientAuth: clientAuth}
		c.Security.PrincipalMappingRules = "RULE:^CN=([a-z]+),O=apps$/$1@apps/U,DEFAULT"
		c.Security.MaxReauth = reauth
	}, func(d *Deps) { d.Logger = slog.New(al) })
	sb := &secureBroker{testBroker: b, ca: ca, log: al, tls: files, addr: map[string]string{}}
	for _, n := range []string{"PLAINTEXT", "SASL", "SSL", "SASLSSL"} {
		sb.addr[n] = b.srv.ListenerAddr(n).String()
	}
	ctx := ctxT(t, 10*time.Second)
	for _, u := range []struct {
		name, password string
		mechs          []security.Mechanism
	}{
		{"alice", "alice-secret", []security.Mechanism{security.ScramSHA256, security.ScramSHA512}},
		{"bob", "bob-secret", []security.Mechanism{security.ScramSHA512}},
	} {
		for _, m := range u.mechs {
			cred, err := security.NewScramCredential(m, u.password, 4096)
			if err != nil {
				t.Fatal(err)
			}
			rev, err := b.srv.store.PutScramCredential(ctx, u.name, string(m), cred.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if err := b.srv.sec.users.WaitRevision(ctx, rev); err != nil {
				t.Fatal(err)
			}
		}
	}
	return sb
}

func (b *secureBroker) clientOn(t *testing.T, listener string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.addr[listener]),
		kgo.RetryTimeout(2 * time.Second), kgo.RequestRetries(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// roundTrip produces one record to topic.
func roundTrip(t *testing.T, cl *kgo.Client, topic string) error {
	t.Helper()
	ctx := ctxT(t, 15*time.Second)
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
}

// authErr is the error of one Metadata request on a new connection of the
// client's seed broker (not retried, unlike produce).
func authErr(t *testing.T, cl *kgo.Client) error {
	t.Helper()
	_, err := cl.SeedBrokers()[0].Request(ctxT(t, 10*time.Second), kmsg.NewPtrMetadataRequest())
	return err
}

func TestSecurityListeners(t *testing.T) {
	t.Parallel()
	b := startSecureBroker(t, security.ClientAuthRequired, 1500*time.Millisecond)
	b.createTopic("secure", 1, nil)

	scram256 := func(u, p string) sasl.Mechanism { return scram.Auth{User: u, Pass: p}.AsSha256Mechanism() }
	scram512 := func(u, p string) sasl.Mechanism { return scram.Auth{User: u, Pass: p}.AsSha512Mechanism() }
	plainM := func(u, p string) sasl.Mechanism { return plain.Auth{User: u, Pass: p}.AsMechanism() }

	t.Run("sasl", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name string
			mech sasl.Mechanism
			ok   bool
		}{
			{"plain", plainM("alice", "alice-secret"), true},
			{"scram256", scram256("alice", "alice-secret"), true},
			{"scram512", scram512("bob", "bob-secret"), true},
			{"plain-bad-password", plainM("alice", "wrong"), false},
			{"scram256-bad-password", scram256("alice", "wrong"), false},
			{"scram512-bad-password", scram512("bob", "wrong"), false},
			{"scram256-no-credential-for-mechanism", scram256("bob", "bob-secret"), false},
			{"scram512-unknown-user", scram512("mallory", "x"), false},
			{"plain-unknown-user", plainM("mallory", "x"), false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				cl := b.clientOn(t, "SASL", kgo.SASL(tc.mech))
				if !tc.ok {
					if err := authErr(t, cl); !errors.Is(err, kerr.SaslAuthenticationFailed) {
						t.Fatalf("request with bad credentials: %v, want SASL_AUTHENTICATION_FAILED", err)
					}
					return
				}
				if err := roundTrip(t, cl, "secure"); err != nil {
					t.Fatalf("produce: %v", err)
				}
			})
		}
	})

	t.Run("metrics", func(t *testing.T) {
		t.Parallel()
		if err := authErr(t, b.clientOn(t, "SASL", kgo.SASL(scram512("metrics-user", "x")))); err == nil {
			t.Fatal("unknown user logged in")
		}
		if err := authErr(t, b.clientOn(t, "SASL", kgo.SASL(plainM("alice", "alice-secret")))); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			mech, result string
		}{{"SCRAM-SHA-512", "failure"}, {"PLAIN", "success"}} {
			if n := counterValue(t, b.srv.sec.auths.WithLabelValues("SASL", c.mech, c.result)); n < 1 {
				t.Errorf("sediment_broker_authentications_total{listener=SASL,mechanism=%s,result=%s} = %v", c.mech, c.result, n)
			}
		}
	})

	t.Run("unknown-user-same-error", func(t *testing.T) {
		t.Parallel()
		msg := func(user string) string {
			nc := dialRaw(t, b.addr["SASL"], nil)
			handshake(t, nc, 1, "PLAIN")
			resp := rawRequest(t, nc, &kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00" + user + "\x00wrong")}).(*kmsg.SASLAuthenticateResponse)
			if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil {
				t.Fatalf("bad password: error %d", resp.ErrorCode)
			}
			expectClosed(t, nc)
			return *resp.ErrorMessage
		}
		if known, unknown := msg("alice"), msg("nobody"); known != unknown {
			t.Fatalf("errors differ: %q for a known user, %q for an unknown one", known, unknown)
		}
	})

	t.Run("before-authentication", func(t *testing.T) {
		t.Parallel()
		nc := dialRaw(t, b.addr["SASL"], nil)
		if r := rawRequest(t, nc, &kmsg.ApiVersionsRequest{Version: 3, ClientSoftwareName: "t", ClientSoftwareVersion: "1"}).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
			t.Fatalf("ApiVersions before auth: %d", r.ErrorCode)
		}
		writeRequest(t, nc, &kmsg.MetadataRequest{Version: 12})
		expectClosed(t, nc)

		// Unsupported mechanism: the answer lists the enabled ones, then the connection closes.
		nc = dialRaw(t, b.addr["SASL"], nil)
		r := rawRequest(t, nc, &kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "GSSAPI"}).(*kmsg.SASLHandshakeResponse)
		if r.ErrorCode != kerr.UnsupportedSaslMechanism.Code || strings.Join(r.SupportedMechanisms, ",") != "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" {
			t.Fatalf("GSSAPI handshake: %d %v", r.ErrorCode, r.SupportedMechanisms)
		}
		expectClosed(t, nc)

		// SaslHandshake on a PLAINTEXT listener is ILLEGAL_SASL_STATE.
		nc = dialRaw(t, b.addr["PLAINTEXT"], nil)
		if r := rawRequest(t, nc, &kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"}).(*kmsg.SASLHandshakeResponse); r.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("handshake on PLAINTEXT: %d", r.ErrorCode)
		}
	})

	t.Run("v0-raw-tokens", func(t *testing.T) {
		t.Parallel()
		nc := dialRaw(t, b.addr["SASL"], nil)
		handshake(t, nc, 0, "PLAIN")
		if reply := rawToken(t, nc, []byte("\x00alice\x00alice-secret")); len(reply) != 0 {
			t.Fatalf("PLAIN reply %q", reply)
		}
		if r := rawRequest(t, nc, &kmsg.MetadataRequest{Version: 12}).(*kmsg.MetadataResponse); len(r.Brokers) != 1 {
			t.Fatalf("metadata after v0 auth: %+v", r.Brokers)
		}
		// A wrong password over raw tokens closes the connection.
		nc = dialRaw(t, b.addr["SASL"], nil)
		handshake(t, nc, 0, "PLAIN")
		writeFrame(t, nc, []byte("\x00alice\x00nope"))
		expectClosed(t, nc)
	})

	t.Run("session-expiry", func(t *testing.T) {
		t.Parallel()
		nc := dialRaw(t, b.addr["SASL"], nil)
		handshake(t, nc, 1, "PLAIN")
		r := rawRequest(t, nc, &kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00alice\x00alice-secret")}).(*kmsg.SASLAuthenticateResponse)
		if r.ErrorCode != 0 || r.SessionLifetimeMillis != 1500 {
			t.Fatalf("authenticate: error %d, session lifetime %d ms, want 1500", r.ErrorCode, r.SessionLifetimeMillis)
		}
		rawRequest(t, nc, &kmsg.MetadataRequest{Version: 12})
		// Re-authentication as another user is refused.
		handshake(t, nc, 1, "PLAIN")
		r = rawRequest(t, nc, &kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00bob\x00bob-secret")}).(*kmsg.SASLAuthenticateResponse)
		if r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("re-authentication as bob: %d", r.ErrorCode)
		}
		expectClosed(t, nc)

		nc = dialRaw(t, b.addr["SASL"], nil)
		handshake(t, nc, 1, "PLAIN")
		rawRequest(t, nc, &kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00alice\x00alice-secret")})
		time.Sleep(1600 * time.Millisecond)
		writeRequest(t, nc, &kmsg.MetadataRequest{Version: 12})
		expectClosed(t, nc)
	})

	t.Run("reauthentication", func(t *testing.T) {
		t.Parallel()
		cl := b.clientOn(t, "SASL", kgo.SASL(scram512("bob", "bob-secret")))
		for range 5 {
			if err := roundTrip(t, cl, "secure"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		// 2.5 s on 1.5 s sessions: the client renewed its sessions itself,
		// on the same connections.
		if n := b.log.reauthenticated("SASL User:bob"); n == 0 {
			t.Fatalf("no connection of bob re-authenticated (%d authentications)", b.log.count("SASL User:bob"))
		}
	})

	t.Run("ssl-client-certificate", func(t *testing.T) {
		t.Parallel()
		subject := pkix.Name{CommonName: "carol", Organization: []string{"apps"}}
		cl := b.clientOn(t, "SSL", kgo.DialTLSConfig(b.ca.ClientConfig(t, &subject)))
		if err := roundTrip(t, cl, "secure"); err != nil {
			t.Fatal(err)
		}
		if b.log.count("SSL User:CAROL@APPS") == 0 {
			t.Fatal("no connection authenticated as User:CAROL@APPS (ssl.principal.mapping.rules)")
		}
		dn := pkix.Name{CommonName: "dave"}
		if err := roundTrip(t, b.clientOn(t, "SSL", kgo.DialTLSConfig(b.ca.ClientConfig(t, &dn))), "secure"); err != nil {
			t.Fatal(err)
		}
		if b.log.count("SSL User:CN=dave") == 0 {
			t.Fatal("no connection authenticated as User:CN=dave (DEFAULT rule)")
		}
		// ssl.client.auth=required: no certificate, no connection; nor with
		// one from another CA.
		if err := authErr(t, b.clientOn(t, "SSL", kgo.DialTLSConfig(b.ca.ClientConfig(t, nil)))); err == nil {
			t.Fatal("a request without a client certificate succeeded")
		}
		other := securitytest.NewCA(t, "other-ca").ClientConfig(t, &subject)
		other.RootCAs = b.ca.ClientConfig(t, nil).RootCAs
		if err := authErr(t, b.clientOn(t, "SSL", kgo.DialTLSConfig(other))); err == nil {
			t.Fatal("a request with an untrusted client certificate succeeded")
		}
		// A plaintext client on the TLS port fails; the broker stays healthy.
		if err := authErr(t, b.clientOn(t, "SSL")); err == nil {
			t.Fatal("a plaintext request on the SSL listener succeeded")
		}
		if err := roundTrip(t, cl, "secure"); err != nil {
			t.Fatalf("after the refused connections: %v", err)
		}
		if n := counterValue(t, b.srv.sec.auths.WithLabelValues("SSL", "TLS", "failure")); n < 3 {
			t.Fatalf("%v TLS failures counted, want at least 3", n)
		}
	})

	t.Run("sasl-ssl", func(t *testing.T) {
		t.Parallel()
		subject := pkix.Name{CommonName: "client"}
		cl := b.clientOn(t, "SASLSSL", kgo.DialTLSConfig(b.ca.ClientConfig(t, &subject)), kgo.SASL(scram256("alice", "alice-secret")))
		if err := roundTrip(t, cl, "secure"); err != nil {
			t.Fatal(err)
		}
		if b.log.count("SASLSSL User:alice") == 0 {
			t.Fatal("SASL_SSL principal is not the SASL user")
		}
		bad := b.clientOn(t, "SASLSSL", kgo.DialTLSConfig(b.ca.ClientConfig(t, &subject)), kgo.SASL(scram256("alice", "nope")))
		if err := authErr(t, bad); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("bad password over SASL_SSL: %v", err)
		}
		// KIP-684: --ssl-client-auth required (this broker's) is ignored on
		// SASL_SSL listeners: a client without a certificate logs in.
		nocert := b.clientOn(t, "SASLSSL", kgo.DialTLSConfig(b.ca.ClientConfig(t, nil)), kgo.SASL(scram256("alice", "alice-secret")))
		if err := roundTrip(t, nocert, "secure"); err != nil {
			t.Fatalf("SASL_SSL without a client certificate: %v", err)
		}
	})

	t.Run("scram-credential-apis", func(t *testing.T) {
		t.Parallel()
		adm := kadm.NewClient(b.clientOn(t, "PLAINTEXT"))
		ctx := ctxT(t, 20*time.Second)
		altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
			{User: "erin", Mechanism: kadm.ScramSha256, Iterations: 8192, Password: "erin-secret"},
		})
		if err != nil || altered["erin"].Err != nil {
			t.Fatalf("upsert erin: %v %+v", err, altered)
		}
		// What kadm would refuse to send: the broker checks too.
		req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		for _, u := range []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
			{Name: "weak", Mechanism: 2, Iterations: 1000, Salt: []byte("salt"), SaltedPassword: make([]byte, 64)},
			{Name: "odd", Mechanism: 3, Iterations: 4096, Salt: []byte("salt"), SaltedPassword: make([]byte, 32)},
			{Name: "twice", Mechanism: 1, Iterations: 4096, Salt: []byte("salt"), SaltedPassword: make([]byte, 32)},
			{Name: "twice", Mechanism: 1, Iterations: 4096, Salt: []byte("salt"), SaltedPassword: make([]byte, 32)},
		} {
			req.Upsertions = append(req.Upsertions, u)
		}
		raw, err := req.RequestWith(ctx, b.clientOn(t, "PLAINTEXT"))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int16{"weak": kerr.UnacceptableCredential.Code, "odd": kerr.UnsupportedSaslMechanism.Code, "twice": kerr.DuplicateResource.Code}
		if len(raw.Results) != len(want) {
			t.Fatalf("results %+v", raw.Results)
		}
		for _, r := range raw.Results {
			if r.ErrorCode != want[r.User] {
				t.Fatalf("%s: error %d, want %d", r.User, r.ErrorCode, want[r.User])
			}
		}
		if users, _, err := b.srv.store.Users(ctx); err != nil || users["twice"] != nil || users["weak"] != nil {
			t.Fatalf("refused credentials were stored: %v %v", users, err)
		}
		// The new credential logs in (once the brokers' mirror has it).
		waitFor(t, "erin's credential to reach the broker", 10*time.Second, func() bool {
			_, ok := b.srv.sec.users.Credential("erin", "SCRAM-SHA-256")
			return ok
		})
		if err := authErr(t, b.clientOn(t, "SASL", kgo.SASL(scram256("erin", "erin-secret")))); err != nil {
			t.Fatalf("login with the credential set through AlterUserScramCredentials: %v", err)
		}
		described, err := adm.DescribeUserSCRAMs(ctx, "erin", "alice", "nobody")
		if err != nil {
			t.Fatal(err)
		}
		if d := described["erin"]; d.Err != nil || len(d.CredInfos) != 1 || d.CredInfos[0].Mechanism != kadm.ScramSha256 || d.CredInfos[0].Iterations != 8192 {
			t.Fatalf("describe erin: %+v", d)
		}
		if d := described["alice"]; d.Err != nil || len(d.CredInfos) != 2 {
			t.Fatalf("describe alice: %+v", d)
		}
		if d := described["nobody"]; !errors.Is(d.Err, kerr.ResourceNotFound) {
			t.Fatalf("describe nobody: %+v", d)
		}
		altered, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "erin", Mechanism: kadm.ScramSha512}}, nil)
		if err != nil || !errors.Is(altered["erin"].Err, kerr.ResourceNotFound) {
			t.Fatalf("deleting a credential erin does not have: %v %+v", err, altered)
		}
		altered, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "erin", Mechanism: kadm.ScramSha256}}, nil)
		if err != nil || altered["erin"].Err != nil {
			t.Fatalf("delete erin: %v %+v", err, altered)
		}
		if d, err := adm.DescribeUserSCRAMs(ctx, "erin"); err != nil || !errors.Is(d["erin"].Err, kerr.ResourceNotFound) {
			t.Fatalf("erin after deletion: %v %+v", err, d)
		}
	})

	t.Run("metadata-per-listener", func(t *testing.T) {
		t.Parallel()
		for _, lis := range []string{"PLAINTEXT", "SASL"} {
			var opts []kgo.Opt
			if lis == "SASL" {
				opts = append(opts, kgo.SASL(plainM("alice", "alice-secret")))
			}
			cl := b.clientOn(t, lis, opts...)
			ctx := ctxT(t, 10*time.Second)
			m, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Brokers) != 1 || net.JoinHostPort(m.Brokers[0].Host, itoa(m.Brokers[0].Port)) != b.addr[lis] {
				t.Fatalf("%s: metadata brokers %+v, want %s", lis, m.Brokers, b.addr[lis])
			}
			fc := kmsg.NewPtrFindCoordinatorRequest()
			fc.CoordinatorKey = "g-" + lis
			fr, err := fc.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if net.JoinHostPort(fr.Host, itoa(fr.Port)) != b.addr[lis] {
				t.Fatalf("%s: coordinator at %s:%d, want %s", lis, fr.Host, fr.Port, b.addr[lis])
			}
			dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if len(dc.Brokers) != 1 || net.JoinHostPort(dc.Brokers[0].Host, itoa(dc.Brokers[0].Port)) != b.addr[lis] {
				t.Fatalf("%s: DescribeCluster brokers %+v", lis, dc.Brokers)
			}
		}
		info, ok := b.srv.cache.Broker(1)
		if !ok || len(info.Listeners) != 4 || info.Listeners["SASLSSL"] != b.addr["SASLSSL"] {
			t.Fatalf("registration listeners %v", info.Listeners)
		}
	})
}

// TestSSLRotationAndNoClientAuth: with ssl.client.auth=none a client without
// a certificate is User:ANONYMOUS, and new certificate files are served
// without a restart.
func TestSSLRotationAndNoClientAuth(t *testing.T) {
	t.Parallel()
	b := startSecureBroker(t, security.ClientAuthNone, 0)
	b.createTopic("rotate", 1, nil)
	if err := roundTrip(t, b.clientOn(t, "SSL", kgo.DialTLSConfig(b.ca.ClientConfig(t, nil))), "rotate"); err != nil {
		t.Fatal(err)
	}
	if b.log.count("SSL User:ANONYMOUS") == 0 {
		t.Fatal("no anonymous SSL connection")
	}
	serial := func() string {
		nc, err := tls.Dial("tcp", b.addr["SSL"], b.ca.ClientConfig(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		return nc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := serial(); cn != "broker1" {
		t.Fatalf("served certificate %q", cn)
	}
	// A new certificate and key, written with a later modification time.
	next := b.ca.WriteFiles(t, filepath.Join(t.TempDir(), "next"), pkix.Name{CommonName: "broker1-rotated"})
	later := time.Now().Add(time.Minute)
	for src, dst := range map[string]string{next.Cert: b.tls.Cert, next.Key: b.tls.Key} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dst, later, later); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the rotated certificate", 10*time.Second, func() bool { return serial() == "broker1-rotated" })
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }

// dialRaw connects to a listener, with TLS when cfg is set.
func dialRaw(t *testing.T, addr string, cfg *tls.Config) net.Conn {
	t.Helper()
	var nc net.Conn
	var err error
	if cfg != nil {
		nc, err = tls.Dial("tcp", addr, cfg)
	} else {
		nc, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc
}

func writeRequest(t *testing.T, nc net.Conn, req kmsg.Request) {
	t.Helper()
	buf := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, 7)
	if _, err := nc.Write(buf); err != nil {
		t.Fatal(err)
	}
}

func readFrame(t *testing.T, nc net.Conn) []byte {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(nc, body); err != nil {
		t.Fatal(err)
	}
	return body
}

// rawRequest sends req and decodes its response.
func rawRequest(t *testing.T, nc net.Conn, req kmsg.Request) kmsg.Response {
	t.Helper()
	writeRequest(t, nc, req)
	body := readFrame(t, nc)[4:] // correlation id
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		body = body[1:] // empty tagged fields
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	return resp
}

func handshake(t *testing.T, nc net.Conn, version int16, mech string) {
	t.Helper()
	if r := rawRequest(t, nc, &kmsg.SASLHandshakeRequest{Version: version, Mechanism: mech}).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		t.Fatalf("SaslHandshake v%d %s: %d", version, mech, r.ErrorCode)
	}
}

func writeFrame(t *testing.T, nc net.Conn, b []byte) {
	t.Helper()
	if _, err := nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)); err != nil {
		t.Fatal(err)
	}
}

// rawToken sends a bare SASL token (after a v0 handshake) and reads the reply.
func rawToken(t *testing.T, nc net.Conn, b []byte) []byte {
	t.Helper()
	writeFrame(t, nc, b)
	return readFrame(t, nc)
}

// expectClosed asserts that the broker closes the connection (after any
// response already written).
func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the broker did not close the connection")
	}
}

// TestInterBrokerSASLSSL: three brokers whose inter-broker listener is
// SASL_SSL (SCRAM-SHA-512, client certificates required, 2 s sessions):
// followers replicate, and a transaction's markers and partition
// verifications reach the other leaders, over it; clients use PLAINTEXT.
func TestInterBrokerSASLSSL(t *testing.T) {
	t.Parallel()
	ca := securitytest.NewCA(t, "cluster-ca")
	files := ca.WriteFiles(t, filepath.Join(t.TempDir(), "tls"), pkix.Name{CommonName: "broker"})
	cred, err := security.NewScramCredential(security.ScramSHA512, "broker-secret", 4096)
	if err != nil {
		t.Fatal(err)
	}
	al := newAuthLog()
	store := fileTier(t)
	bs := startCluster(t, 3, func(c *Config) {
		txnConfig(c)
		c.TierUploadInterval = 100 * time.Millisecond
		c.Security.Listeners = []Listener{
			{Name: "EXTERNAL", Protocol: ProtocolPlaintext, Addr: "127.0.0.1:0"},
			{Name: "INTERNAL", Protocol: ProtocolSASLSSL, Addr: "127.0.0.1:0"},
		}
		c.InterBrokerListener = "INTERNAL"
		c.Security.TLS = security.TLSConfig{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA, ClientAuth: security.ClientAuthRequired}
		c.Security.InterBrokerUser, c.Security.InterBrokerPassword = "broker", "broker-secret"
		c.Security.MaxReauth = 2 * time.Second
	}, func(d *Deps) {
		d.Logger = slog.New(al)
		d.Tier = store
		if _, err := d.Store.PutScramCredential(context.Background(), "broker", string(security.ScramSHA512), cred.Encode()); err != nil {
			t.Fatal(err)
		}
	})
	for _, b := range bs {
		info, _ := b.srv.cache.Broker(b.srv.cfg.NodeID)
		if addr, _ := b.srv.resolveBroker(b.srv.cfg.NodeID); addr != b.srv.ListenerAddr("INTERNAL").String() || info.Listeners["EXTERNAL"] != b.addr {
			t.Fatalf("broker %d resolves to %s, registered %v", b.srv.cfg.NodeID, addr, info.Listeners)
		}
	}
	ctx := ctxT(t, 60*time.Second)
	cl := bs[0].client(kgo.SeedBrokers(bootstrap(bs)...))
	adm := kadm.NewClient(cl)
	if r, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("3")}, "ib"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	// acks=all with min.insync.replicas=3: every record is on every broker,
	// fetched by followers over SASL_SSL; across several session lifetimes.
	for i := range 4 {
		for part := range int32(3) {
			r := &kgo.Record{Topic: "ib", Partition: part, Value: val(part, i)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("acks=all produce %d to partition %d: %v", i, part, err)
			}
		}
		time.Sleep(700 * time.Millisecond)
	}
	if n := al.reauthenticated("INTERNAL User:broker"); n == 0 {
		t.Fatalf("no inter-broker connection re-authenticated (%d authentications)", al.count("INTERNAL User:broker"))
	}

	if r, err := adm.CreateTopic(ctx, 3, 2, nil, "ibtx"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	p := bs[0].client(kgo.SeedBrokers(bootstrap(bs)...), kgo.TransactionalID("ib-producer"), kgo.DefaultProduceTopic("ibtx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	committed, all := alternateTxns(t, p, "ib", 4, 3, 10)
	sameRecords(t, "read_committed", consumeAll(t, bs[0], "ibtx", kgo.ReadCommitted(), len(committed), kgo.SeedBrokers(bootstrap(bs)...)), committed)
	sameRecords(t, "read_uncommitted", consumeAll(t, bs[0], "ibtx", kgo.ReadUncommitted(), len(all), kgo.SeedBrokers(bootstrap(bs)...)), all)

	// Tiering: a leader uploads the sealed segments of a topic replicated
	// over SASL_SSL.
	segBytes := "2048"
	if r, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"segment.bytes": &segBytes}, "ibtier"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	for i := range 40 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ibtier", Value: append(val(0, i), make([]byte, 200)...)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	leaderOf := func(topic string) (*testBroker, []*testBroker) {
		t.Helper()
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		var leader *testBroker
		var rest []*testBroker
		for _, b := range bs {
			if b.srv.cfg.NodeID == md.Topics[topic].Partitions[0].Leader {
				leader = b
			} else {
				rest = append(rest, b)
			}
		}
		return leader, rest
	}
	tl, _ := leaderOf("ibtier")
	waitFor(t, "segments of ibtier uploaded", 30*time.Second, func() bool {
		return tl.srv.parts.Get("ibtier", 0).RemoteEnd() > 0
	})

	// Failover: the leader of "ib" partition 0 stops; a follower takes over
	// and acks=all produce goes on (min.insync.replicas 2) with the last
	// follower fetching from the new leader over SASL_SSL.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.insync.replicas", Value: kadm.StringPtr("2")}}, "ib"); err != nil {
		t.Fatal(err)
	}
	victim, rest := leaderOf("ib")
	before := victim.srv.parts.Get("ib", 0).HighWatermark()
	victim.stop()
	cl2 := rest[0].client(kgo.SeedBrokers(bootstrap(rest)...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 5 {
		if err := cl2.ProduceSync(ctx, &kgo.Record{Topic: "ib", Partition: 0, Value: val(0, 100+i)}).FirstErr(); err != nil {
			t.Fatalf("acks=all produce after the leader stopped: %v", err)
		}
	}
	a, b := rest[0].srv.parts.Get("ib", 0), rest[1].srv.parts.Get("ib", 0)
	waitFor(t, "both survivors to hold every record of ib-0", 30*time.Second, func() bool {
		return a.LogEnd() == before+5 && b.LogEnd() == before+5 && a.HighWatermark() == before+5 && b.HighWatermark() == before+5
	})
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestInterBrokerBadCredentials: a broker whose inter-broker password is
// wrong cannot fetch as a follower, so it never joins the ISR of the
// partitions it follows (acks=all there fails once min.insync.replicas is
// not met), while the partitions it leads, followed by a broker with good
// credentials, keep both replicas in sync.
func TestInterBrokerBadCredentials(t *testing.T) {
	t.Parallel()
	cred, err := security.NewScramCredential(security.ScramSHA256, "right", 4096)
	if err != nil {
		t.Fatal(err)
	}
	bs := startCluster(t, 2, func(c *Config) {
		c.Security.Listeners = []Listener{
			{Name: "EXTERNAL", Protocol: ProtocolPlaintext, Addr: "127.0.0.1:0"},
			{Name: "INTERNAL", Protocol: ProtocolSASLPlaintext, Addr: "127.0.0.1:0"},
		}
		c.InterBrokerListener = "INTERNAL"
		c.Security.InterBrokerMechanism = security.ScramSHA256
		c.Security.InterBrokerUser, c.Security.InterBrokerPassword = "broker", "right"
		if c.NodeID == 2 {
			c.Security.InterBrokerPassword = "wrong"
		}
		c.ReplicaLagTimeMax = time.Second
	}, func(d *Deps) {
		if _, err := d.Store.PutScramCredential(context.Background(), "broker", string(security.ScramSHA256), cred.Encode()); err != nil {
			t.Fatal(err)
		}
	})
	cl := bs[0].client(kgo.SeedBrokers(bootstrap(bs)...), kgo.RecordRetries(0), kgo.RequestRetries(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createAssigned(t, cl, "badcred", []int32{1, 2}, []int32{2, 1})
	adm := kadm.NewClient(cl)
	ctx := ctxT(t, 30*time.Second)
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.insync.replicas", Value: kadm.StringPtr("2")}}, "badcred"); err != nil {
		t.Fatal(err)
	}
	var id meta.TopicID
	waitFor(t, "the topic on both brokers", 10*time.Second, func() bool {
		p0, p1 := bs[0].srv.parts.Get("badcred", 0), bs[1].srv.parts.Get("badcred", 1)
		if p0 == nil || p1 == nil {
			return false
		}
		id = p0.TopicID()
		return true
	})
	isr := func(p int32) []int32 {
		st, _ := bs[0].srv.cache.Partition(id, p)
		return st.ISR
	}
	waitFor(t, "broker 2 out of the ISR of partition 0", 15*time.Second, func() bool { return len(isr(0)) == 1 && isr(0)[0] == 1 })
	// Partition 1 (led by 2, followed by 1 with good credentials) takes
	// acks=all writes; partition 0 refuses them.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "badcred", Partition: 1, Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatalf("acks=all on the partition broker 1 follows: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "badcred", Partition: 0, Value: []byte("no")}).FirstErr(); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all on the partition broker 2 cannot follow: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if got := isr(0); len(got) != 1 {
		t.Fatalf("broker 2 rejoined the ISR of partition 0 with a wrong password: %v", got)
	}
	if got := isr(1); len(got) != 2 {
		t.Fatalf("ISR of partition 1: %v, want both brokers", got)
	}
	if n := counterValue(t, bs[0].srv.sec.auths.WithLabelValues("INTERNAL", "SCRAM-SHA-256", "failure")); n == 0 {
		t.Fatal("broker 1 counted no failed inter-broker authentication")
	}

	// A fetch of partition 0 from broker 2 (not its leader) on the EXTERNAL
	// listener: NOT_LEADER_OR_FOLLOWER with the leader's EXTERNAL endpoint
	// (KIP-951), not its INTERNAL one.
	c2 := bs[1].client()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxWaitMillis, req.MaxBytes = 16, 0, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.TopicID = id
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 0, 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	kresp, err := c2.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	fr := kresp.(*kmsg.FetchResponse)
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 || fr.Topics[0].Partitions[0].ErrorCode != kerr.NotLeaderForPartition.Code ||
		len(fr.Brokers) != 1 || fr.Brokers[0].NodeID != 1 || net.JoinHostPort(fr.Brokers[0].Host, itoa(fr.Brokers[0].Port)) != bs[0].addr {
		t.Fatalf("fetch from a follower: %+v, brokers %+v; want NOT_LEADER_OR_FOLLOWER and broker 1 at %s", fr.Topics, fr.Brokers, bs[0].addr)
	}
}
