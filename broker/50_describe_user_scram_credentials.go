package broker

// DescribeUserScramCredentials, versions 0 (KIP-554): the mechanisms and
// iteration counts of users' SCRAM credentials, read from etcd; never a
// salt or key. No users (null or empty) means every user. A user asked for
// twice is DUPLICATE_RESOURCE, one without credentials RESOURCE_NOT_FOUND,
// as in Kafka.

import (
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/security"
)

// scramMechanismCodes are KIP-554's mechanism codes.
var scramMechanismCodes = map[security.Mechanism]int8{security.ScramSHA256: 1, security.ScramSHA512: 2}

func scramMechanism(code int8) (security.Mechanism, bool) {
	for m, c := range scramMechanismCodes {
		if c == code {
			return m, true
		}
	}
	return "", false
}

func handleDescribeUserScramCredentials(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	if !c.authorizedCluster(kmsg.ACLOperationDescribe) { // authz.go
		return deny(req, kerr.ClusterAuthorizationFailed.Code)
	}
	return &pending{complete: func(ctx context.Context) outgoing {
		resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
		users, _, err := c.srv.store.Users(ctx)
		if err != nil {
			resp.ErrorCode = kerr.UnknownServerError.Code
			msg := err.Error()
			resp.ErrorMessage = &msg
			return outgoing{resp: resp}
		}
		var names []string
		if len(req.Users) == 0 {
			for name := range users {
				names = append(names, name)
			}
			slices.Sort(names)
		} else {
			for _, u := range req.Users {
				names = append(names, u.Name)
			}
		}
		seen := map[string]int{}
		for _, n := range names {
			seen[n]++
		}
		reported := map[string]bool{}
		for _, name := range names {
			if reported[name] {
				continue
			}
			reported[name] = true
			res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			res.User = name
			fail := func(code *kerr.Error, msg string) {
				res.ErrorCode, res.ErrorMessage = code.Code, &msg
			}
			creds, ok := users[name]
			switch {
			case seen[name] > 1:
				fail(kerr.DuplicateResource, "Cannot describe SCRAM credentials for the same user twice in a single request: "+name)
			case !ok || len(creds) == 0:
				fail(kerr.ResourceNotFound, "Attempt to describe a user credential that does not exist: "+name)
			default:
				for _, m := range []security.Mechanism{security.ScramSHA256, security.ScramSHA512} {
					stored, ok := creds[string(m)]
					if !ok {
						continue
					}
					sc, err := security.ParseScramCredential(m, stored)
					if err != nil {
						c.log.Warn("stored SCRAM credential does not parse", "user", name, "mechanism", string(m), "err", err)
						continue
					}
					ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
					ci.Mechanism, ci.Iterations = scramMechanismCodes[m], int32(sc.Iterations)
					res.CredentialInfos = append(res.CredentialInfos, ci)
				}
			}
			resp.Results = append(resp.Results, res)
		}
		return outgoing{resp: resp}
	}}, nil
}

// errCode maps the errors of credential changes to Kafka's codes.
func credentialErrCode(err error) *kerr.Error {
	switch {
	case errors.Is(err, security.ErrInvalidCredential):
		return kerr.UnacceptableCredential
	case errors.Is(err, security.ErrUnsupportedMechanism):
		return kerr.UnsupportedSaslMechanism
	}
	return nil
}
