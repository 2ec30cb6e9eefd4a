package broker

// CreateAcls, versions 1-3 (Kafka 4 removed v0, which had no pattern type).
// The caller needs CLUSTER ALTER; each binding is validated (INVALID_REQUEST:
// an unknown or ANY/MATCH enum, an empty name, a CLUSTER resource other than
// kafka-cluster, a principal that is not Type:Name) and the valid ones are
// written to etcd together. Without an authorizer every creation answers
// SECURITY_DISABLED. The response waits until this broker's authorizer has
// the new ACLs; the other brokers get them through their watch.

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/security"
)

// maxACLsPerRequest bounds the bindings or filters of one ACL request (a
// frame of socket.request.max.bytes could otherwise carry millions).
const maxACLsPerRequest = 10000

func handleCreateACLs(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	fail := func(i int, code int16, msg string) {
		resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, &msg
	}
	code, msg := aclRequestError(c, kmsg.ACLOperationAlter, len(req.Creations))
	var (
		recs []meta.ACLRecord
		idx  []int
	)
	for i, cr := range req.Creations {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
		if code != 0 {
			fail(i, code, msg)
			continue
		}
		b := security.ACLBinding{ResourceType: cr.ResourceType, ResourceName: cr.ResourceName,
			PatternType: cr.ResourcePatternType, Principal: cr.Principal, Host: cr.Host,
			Operation: cr.Operation, Permission: cr.PermissionType}
		if err := b.Validate(); err != nil {
			fail(i, kerr.InvalidRequest.Code, err.Error())
			continue
		}
		if b.ResourceType == kmsg.ACLResourceTypeCluster && b.ResourceName != security.ClusterName {
			fail(i, kerr.InvalidRequest.Code, "The only valid name for the CLUSTER resource is "+security.ClusterName)
			continue
		}
		recs, idx = append(recs, recordOf(b)), append(idx, i)
	}
	if len(recs) == 0 {
		return immediate(resp)
	}
	ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(0))
	defer cancel()
	rev, err := c.srv.store.CreateACLs(ctx, recs)
	if err != nil {
		c.log.Warn("creating ACLs failed", "err", err)
		code, msg := aclStoreError(err)
		for _, i := range idx {
			fail(i, code, msg)
		}
		return immediate(resp)
	}
	for _, rec := range recs {
		c.srv.authz.log.Info("ACL created", "principal", c.Principal().String(), "host", c.Host(), "acl", bindingOf(rec).String())
	}
	c.srv.authz.waitApplied(ctx, rev)
	return immediate(resp)
}

// aclRequestError is the error every entry of an ACL request gets before
// looking at it: SECURITY_DISABLED without an authorizer,
// CLUSTER_AUTHORIZATION_FAILED without op on the cluster, INVALID_REQUEST for
// an oversized request.
func aclRequestError(c *conn, op kmsg.ACLOperation, n int) (int16, string) {
	switch {
	case c.srv.authz == nil:
		return kerr.SecurityDisabled.Code, "No Authorizer is configured."
	case !c.authorizedCluster(op):
		return kerr.ClusterAuthorizationFailed.Code, fmt.Sprintf("%s is not allowed %s on the cluster", c.Principal(), op)
	case n > maxACLsPerRequest:
		return kerr.InvalidRequest.Code, fmt.Sprintf("%d entries in one request; at most %d", n, maxACLsPerRequest)
	}
	return 0, ""
}

// aclStoreError maps a failure to write ACLs to etcd.
func aclStoreError(err error) (int16, string) {
	if errors.Is(err, meta.ErrInvalid) {
		return kerr.InvalidRequest.Code, err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return kerr.RequestTimedOut.Code, "timed out writing to the metadata store"
	}
	return kerr.UnknownServerError.Code, "the metadata store is unavailable"
}
