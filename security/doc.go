/*
Package security owns authentication and authorization: TLS configurations from PEM files
(with reload), the server side of SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, Kafka
principals and the SSL principal mapping rules, and the ACL authorizer with Kafka's
semantics. It talks to no network and no etcd: credentials and ACLs come in as plain data
(meta stores them and follows them by watch) and the broker does the wire protocol.

# Files

	credential.go  SCRAM credentials: derivation, Kafka's stored form, CredentialSource
	sasl.go        Authenticator (enabled mechanisms, mask credentials) and Exchange
	scram.go       the SCRAM conversation (RFC 5802/7677) and its message parsers
	plain.go       SASL PLAIN (RFC 4616), verified against the SCRAM credentials
	principal.go   Principal, ssl.principal.mapping.rules, X.509 names as Java prints them
	acl.go         ACLBinding, ACLFilter, Authorizer
	tls.go         TLSFiles: server and inter-broker tls.Configs, reloaded when files change

# Wiring it into the broker

Everything a listener needs is built once at startup; every type here is safe for
concurrent use except an Exchange, which belongs to one connection.

TLS (SSL and SASL_SSL listeners; --ssl-cert-file, --ssl-key-file, --ssl-ca-file,
--ssl-client-auth):

	files, err := security.NewTLSFiles(security.TLSConfig{CertFile: c, KeyFile: k, CAFile: ca,
		ClientAuth: auth, ReloadInterval: time.Second}, logger)
	ln = tls.NewListener(ln, files.ServerConfig())
	// after the handshake, on an SSL listener:
	mapper, err := security.ParsePrincipalMappingRules(rules) // --ssl-principal-mapping-rules, default "DEFAULT"
	p, err := security.CertificatePrincipal(conn.ConnectionState().PeerCertificates, mapper)
	// dialing another broker over SSL or SASL_SSL:
	cfg, err := files.ClientConfig(host)

SASL (SASL_PLAINTEXT and SASL_SSL listeners; --sasl-enabled-mechanisms):

	secret, err := store.MaskSecret(ctx)   // shared by all brokers
	users, err := store.WatchUsers(ctx)    // *meta.UserCache is a CredentialSource
	auth, err := security.NewAuthenticator(security.SASLConfig{Mechanisms: ms, MaskSecret: secret}, users, logger)

SaslHandshake answers auth.Mechanisms(); auth.Start(name) returns ErrUnsupportedMechanism
(UNSUPPORTED_SASL_MECHANISM) for one that is not enabled. Each SaslAuthenticate (or v0 raw
frame) goes through Exchange.Next; its reply is the response's auth_bytes. An error wraps
ErrAuthenticationFailed (SASL_AUTHENTICATION_FAILED) and its text may be sent to the client
as the error message: it never contains a secret, and it reads the same for an unknown user
and a wrong password. When Next reports done, the connection's principal is
UserPrincipal(ex.User()). Re-authentication (KIP-368) runs a fresh Exchange and must yield the
same principal.

Credentials (KIP-554 and `sediment user set`): NewScramCredential(mech, password, iterations)
or, for AlterUserScramCredentials upsertions, ScramCredentialFromSaltedPassword(mech, salt,
salted, iterations); store the result's Encode() with meta's PutScramCredential. ErrInvalidCredential (too
few or too many iterations, an empty salt, a salted password of the wrong size) is Kafka's
UNACCEPTABLE_CREDENTIAL, ErrUnsupportedMechanism its UNSUPPORTED_SASL_MECHANISM, and meta's
ErrCredentialNotFound its RESOURCE_NOT_FOUND.
DescribeUserScramCredentials reads users.Users() and ParseScramCredential for the iteration
counts. No plain password is ever stored: PLAIN checks against the SCRAM credential.

Authorization (--authorizer acl, --super-users, --allow-everyone-if-no-acl-found):

	authz, err := security.NewAuthorizer(security.AuthorizerConfig{SuperUsers: su, AllowEveryoneIfNoACLFound: open})
	watch, err := store.WatchACLs(ctx, func(recs []meta.ACLRecord) {
		if err := authz.SetACLs(bindings(recs)); err != nil { logger.Warn(...) }
	})

where bindings copies each meta.ACLRecord field into an ACLBinding (the enums are kmsg types
over the same int8 codes). Until the first SetACLs, only super users are allowed.
Each API asks Authorize (or AuthorizeActions for a batch) with the client's IP address and the
resource's name, ClusterName for CLUSTER; false becomes the API's *_AUTHORIZATION_FAILED code.
InitProducerId without a transactional id asks CLUSTER IDEMPOTENT_WRITE, then
AuthorizeByResourceType(TOPIC, WRITE) (KIP-679). AuthorizedOperations answers KIP-430's
include_*_authorized_operations. DescribeAcls filters the loaded ACLs with ACLs(filter);
CreateAcls checks ACLBinding.Validate (ErrInvalidACL: INVALID_REQUEST) and writes through
meta's CreateACLs; DeleteAcls checks ACLFilter.Validate and passes filter.Matches to meta's
DeleteACLs. The watch brings every change to every broker, typically within milliseconds.

# Where this differs from Kafka

  - An ACL host and the client address are compared as IP addresses when both parse, so an
    ACL written with Java's "0:0:0:0:0:0:0:1" matches Go's "::1"; Kafka compares the strings.
  - ssl.principal.mapping.rules patterns are RE2 (no backreferences or lookaround), and an
    empty rule list or a replacement error ("$1" without groups, a dangling "\" or "$") is a
    configuration error instead of a failure of every matching connection.
  - Unknown SCRAM users get a salt and iteration count derived from the mask secret and fail
    at the proof, like a wrong password; credentials with tokenauth=true (delegation tokens,
    which Sediment does not have) fail the same way.
  - Usernames and passwords are compared as sent: no SASLprep, as in Kafka.
*/
package security
