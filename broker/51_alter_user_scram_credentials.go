package broker

// AlterUserScramCredentials, version 0 (KIP-554): upserts credentials from
// a client-side salted password (the password never reaches the broker)
// and deletes credentials, in etcd. One result per user, in order of first
// appearance: a user whose changes include an invalid one (empty name,
// unknown mechanism, the same user and mechanism twice, iterations outside
// 4096-16384, a bad salt or salted password, deleting what does not exist)
// gets that error and none of its changes are made.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/security"
)

// credentialChange is one deletion or upsertion.
type credentialChange struct {
	user   string
	mech   security.Mechanism
	stored string // "" for a deletion
}

func handleAlterUserScramCredentials(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	if resp := c.alterScramDenied(req); resp != nil { // authz_txn.go
		return immediate(resp)
	}
	return &pending{complete: func(ctx context.Context) outgoing {
		resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
		var order []string
		failed := map[string]*kmsg.AlterUserSCRAMCredentialsResponseResult{}
		changes := map[string][]credentialChange{}
		pairs := map[credentialChange]int{}
		seen := map[string]bool{}
		fail := func(user string, code *kerr.Error, msg string) {
			if _, ok := failed[user]; ok {
				return
			}
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode, res.ErrorMessage = user, code.Code, &msg
			failed[user] = &res
		}
		add := func(user string, code int8, stored func(security.Mechanism) (string, error)) {
			if !seen[user] {
				seen[user] = true
				order = append(order, user)
			}
			if user == "" {
				fail(user, kerr.UnacceptableCredential, "Username must not be empty")
				return
			}
			m, ok := scramMechanism(code)
			if !ok {
				fail(user, kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
				return
			}
			pair := credentialChange{user: user, mech: m}
			if pairs[pair]++; pairs[pair] > 1 {
				fail(user, kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
				return
			}
			s, err := stored(m)
			if err != nil {
				code := credentialErrCode(err)
				if code == nil {
					code = kerr.UnacceptableCredential
				}
				fail(user, code, err.Error())
				return
			}
			changes[user] = append(changes[user], credentialChange{user: user, mech: m, stored: s})
		}
		for _, d := range req.Deletions {
			add(d.Name, d.Mechanism, func(security.Mechanism) (string, error) { return "", nil })
		}
		for _, u := range req.Upsertions {
			add(u.Name, u.Mechanism, func(m security.Mechanism) (string, error) {
				sc, err := security.ScramCredentialFromSaltedPassword(m, u.Salt, u.SaltedPassword, int(u.Iterations))
				if err != nil {
					return "", err
				}
				return sc.Encode(), nil
			})
		}
		for _, user := range order {
			if res, ok := failed[user]; ok {
				resp.Results = append(resp.Results, *res)
				continue
			}
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User = user
			if code, msg := c.srv.applyCredentialChanges(ctx, user, changes[user]); code != nil {
				res.ErrorCode, res.ErrorMessage = code.Code, &msg
			}
			resp.Results = append(resp.Results, res)
		}
		return outgoing{resp: resp}
	}}, nil
}

// applyCredentialChanges writes one user's changes to etcd. Deletions of
// credentials that do not exist are checked first, so that such a request
// changes nothing; the writes themselves are one etcd transaction each.
func (s *Server) applyCredentialChanges(ctx context.Context, user string, changes []credentialChange) (*kerr.Error, string) {
	var existing map[string]string
	for _, ch := range changes {
		if ch.stored != "" {
			continue
		}
		if existing == nil {
			creds, err := s.store.ScramCredentials(ctx, user)
			if err != nil && !errors.Is(err, meta.ErrCredentialNotFound) {
				return kerr.UnknownServerError, err.Error()
			}
			existing = creds
			if existing == nil {
				existing = map[string]string{}
			}
		}
		if _, ok := existing[string(ch.mech)]; !ok {
			return kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist"
		}
	}
	for _, ch := range changes {
		var err error
		if ch.stored == "" {
			_, err = s.store.DeleteScramCredential(ctx, user, string(ch.mech))
		} else {
			_, err = s.store.PutScramCredential(ctx, user, string(ch.mech), ch.stored)
		}
		switch {
		case errors.Is(err, meta.ErrInvalid):
			return kerr.UnacceptableCredential, err.Error()
		case errors.Is(err, meta.ErrCredentialNotFound):
			return kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist"
		case err != nil:
			return kerr.UnknownServerError, err.Error()
		}
	}
	return nil, ""
}
