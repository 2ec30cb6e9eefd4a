package security_test

import (
	"fmt"

	"github.com/sedimentio/sediment/security"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A SCRAM credential, a PLAIN login checked against it, and an ACL decision.
func Example() {
	creds := security.CredentialMap{}
	c, err := security.NewScramCredential(security.ScramSHA512, "alice-secret", 4096)
	if err != nil {
		panic(err)
	}
	creds.Set("alice", c) // what meta stores under users/alice is c.Encode()

	cfg := security.DefaultSASLConfig()
	cfg.Mechanisms = append(cfg.Mechanisms, security.Plain)
	cfg.MaskSecret = []byte("a cluster-wide secret of 16+ bytes")
	auth, err := security.NewAuthenticator(cfg, creds, nil)
	if err != nil {
		panic(err)
	}
	ex, _ := auth.Start("PLAIN")
	_, done, err := ex.Next([]byte("\x00alice\x00alice-secret"))
	fmt.Println(done, err, ex.User())
	ex, _ = auth.Start("PLAIN")
	_, _, err = ex.Next([]byte("\x00alice\x00guess"))
	fmt.Println(err)

	authz, _ := security.NewAuthorizer(security.AuthorizerConfig{SuperUsers: []string{"User:admin"}})
	authz.SetACLs([]security.ACLBinding{{
		ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "orders-",
		PatternType: kmsg.ACLResourcePatternTypePrefixed, Principal: "User:alice", Host: "*",
		Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow,
	}})
	alice := security.UserPrincipal("alice")
	fmt.Println(authz.Authorize(alice, "10.0.0.1", kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, "orders-eu"))
	fmt.Println(authz.Authorize(alice, "10.0.0.1", kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, "orders-eu"))

	mapper, _ := security.ParsePrincipalMappingRules("RULE:^CN=([^,]*),OU=Services,.*$/$1/L,DEFAULT")
	name, _ := mapper.Map("CN=Billing,OU=Services,O=Acme,C=FR")
	fmt.Println(security.UserPrincipal(name))
	// Output:
	// true <nil> alice
	// security: authentication failed: invalid credentials with SASL mechanism PLAIN
	// true
	// false
	// User:billing
}
