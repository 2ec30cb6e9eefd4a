package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sedimentio/sediment/security"
)

// TestAuthzSASLPrincipals: with SASL listeners the ACLs apply to the
// authenticated principals. Two brokers replicate over a SASL inter-broker
// listener as User:broker, which is not a super user: its follower fetches
// are refused until an ACL grants it CLUSTER_ACTION, so the high watermark
// stays behind before and moves after. alice, with
// WRITE on the topic, produces; bob, without, gets TOPIC_AUTHORIZATION_FAILED;
// admin, a super user, manages the ACLs.
func TestAuthzSASLPrincipals(t *testing.T) {
	users := map[string]string{"broker": "broker-secret", "admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
	bs := startCluster(t, 2, func(c *Config) {
		c.Security.Listeners = []Listener{
			{Name: "EXTERNAL", Protocol: ProtocolSASLPlaintext, Addr: "127.0.0.1:0"},
			{Name: "INTERNAL", Protocol: ProtocolSASLPlaintext, Addr: "127.0.0.1:0"},
		}
		c.InterBrokerListener = "INTERNAL"
		c.Security.InterBrokerUser, c.Security.InterBrokerPassword = "broker", users["broker"]
		c.Authorizer, c.SuperUsers = AuthorizerACL, []string{"User:admin"}
	}, func(d *Deps) {
		for name, pw := range users {
			cred, err := security.NewScramCredential(security.ScramSHA512, pw, 4096)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Store.PutScramCredential(context.Background(), name, string(security.ScramSHA512), cred.Encode()); err != nil {
				t.Fatal(err)
			}
		}
	})
	as := func(user string, opts ...kgo.Opt) *kgo.Client {
		t.Helper()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap(bs)...),
			kgo.SASL(scram.Auth{User: user, Pass: users[user]}.AsSha512Mechanism()), kgo.RetryTimeout(3 * time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	ctx := ctxT(t, 60*time.Second)
	admin := kadm.NewClient(as("admin"))
	if r, err := admin.CreateTopic(ctx, 1, 2, nil, "pay"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	grant := func(b *kadm.ACLBuilder) {
		t.Helper()
		res, err := admin.CreateACLs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("CreateAcls %+v: %v", r, r.Err)
			}
		}
	}
	grant(kadm.NewACLs().Allow("User:alice").Topics("pay").Operations(kadm.OpWrite))

	alice := as("alice", kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "pay", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("alice's produce: %v", err)
	}
	hw := func() int64 {
		ends, err := admin.ListEndOffsets(ctx, "pay")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := ends.Lookup("pay", 0)
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		return o.Offset
	}
	// The follower is refused, so the high watermark stays behind (until
	// replica.lag.time.max would drop it from the ISR, 30 s away).
	for range 10 {
		if n := hw(); n != 0 {
			t.Fatalf("high watermark %d while the follower's fetches are refused", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	grant(kadm.NewACLs().Allow("User:broker").Clusters().Operations(kadm.OpClusterAction))
	waitFor(t, "the follower to replicate once User:broker holds CLUSTER_ACTION", 25*time.Second, func() bool { return hw() == 1 })
	bob := as("bob", kgo.DisableIdempotentWrite())
	if err := bob.ProduceSync(ctx, &kgo.Record{Topic: "pay", Value: []byte("bob")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob's produce: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	// alice may not manage ACLs; admin, a super user, may.
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourcePatternType, req.Operation, req.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	resp, err := req.RequestWith(ctx, alice)
	if err != nil || resp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("DescribeAcls by alice: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
	}
}
