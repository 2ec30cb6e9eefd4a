package main

import (
	"flag"
	"fmt"
	"slices"

	"github.com/sedimentio/sediment/broker"
	"github.com/sedimentio/sediment/security"
)

// authzFlags are serve's authorization settings (Kafka's authorizer.class.name,
// super.users and allow.everyone.if.no.acl.found).
type authzFlags struct {
	authorizer string
	superUsers string
	allowNoACL bool
}

func (x *authzFlags) register(fs *flag.FlagSet, d broker.Config) {
	fs.StringVar(&x.authorizer, "authorizer", d.Authorizer, `authorizer.class.name: "acl" checks every request against the ACLs stored in etcd (sediment acl create|list|delete); empty allows everything`)
	fs.StringVar(&x.superUsers, "super-users", "", "super.users: principals allowed everything, separated by ';' (User:admin;User:broker); must include the principal the brokers use on the inter-broker listener")
	fs.BoolVar(&x.allowNoACL, "allow-everyone-if-no-acl-found", d.AllowEveryoneIfNoACLFound, "allow.everyone.if.no.acl.found: with --authorizer acl, allow actions on resources no ACL applies to")
}

func (x *authzFlags) apply(c *broker.Config) error {
	switch x.authorizer {
	case "", broker.AuthorizerACL:
	default:
		return fmt.Errorf("--authorizer %q: must be %q or empty", x.authorizer, broker.AuthorizerACL)
	}
	su, err := security.ParseSuperUsers(x.superUsers)
	if err != nil {
		return fmt.Errorf("--super-users: %w", err)
	}
	c.Authorizer, c.SuperUsers, c.AllowEveryoneIfNoACLFound = x.authorizer, su, x.allowNoACL
	return nil
}

// Kafka's authorizer class names that mean --authorizer acl: KRaft's
// StandardAuthorizer and the ZooKeeper era's AclAuthorizer (and its older
// name), all of the same ACL semantics.
var kafkaACLAuthorizers = []string{
	"org.apache.kafka.metadata.authorizer.StandardAuthorizer",
	"kafka.security.authorizer.AclAuthorizer",
	"kafka.security.auth.SimpleAclAuthorizer",
}

// mapAuthorizer maps server.properties' authorizer.class.name onto
// --authorizer: empty is none, Kafka's ACL authorizers are acl, any other
// class is an error.
func mapAuthorizer(c *configFile, p property, value string) {
	switch {
	case value == "":
		c.set(p, "authorizer", "", 0)
	case slices.Contains(kafkaACLAuthorizers, value):
		c.set(p, "authorizer", broker.AuthorizerACL, 0)
	default:
		c.errorf(p, "%q: Sediment has Kafka's ACL authorizer only (%s)", value, kafkaACLAuthorizers[0])
	}
}
