package broker

// DeleteAcls, versions 1-3: each filter deletes the stored ACLs it selects
// and reports them. The caller needs CLUSTER ALTER; a filter with an unknown
// enum is INVALID_REQUEST (the others still apply); without an authorizer
// every filter answers SECURITY_DISABLED. The response waits until this
// broker's authorizer no longer has the deleted ACLs.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/security"
)

func handleDeleteACLs(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	code, msg := aclRequestError(c, kmsg.ACLOperationAlter, len(req.Filters))
	ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(0))
	defer cancel()
	var last int64
	for i, rf := range req.Filters {
		res := &resp.Results[i]
		*res = kmsg.NewDeleteACLsResponseResult()
		f := security.ACLFilter{ResourceType: rf.ResourceType, ResourceName: rf.ResourceName,
			PatternType: rf.ResourcePatternType, Principal: rf.Principal, Host: rf.Host,
			Operation: rf.Operation, Permission: rf.PermissionType}
		if code != 0 {
			res.ErrorCode, res.ErrorMessage = code, new(msg)
			continue
		}
		if err := f.Validate(); err != nil {
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, new(err.Error())
			continue
		}
		deleted, rev, err := c.srv.store.DeleteACLs(ctx, func(rec meta.ACLRecord) bool { return f.Matches(bindingOf(rec)) })
		if err != nil {
			c.log.Warn("deleting ACLs failed", "err", err)
			ecode, emsg := aclStoreError(err)
			res.ErrorCode, res.ErrorMessage = ecode, &emsg
		}
		last = max(last, rev)
		for _, rec := range deleted {
			b := bindingOf(rec)
			c.srv.authz.log.Info("ACL deleted", "principal", c.Principal().String(), "host", c.Host(), "acl", b.String())
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
			res.MatchingACLs = append(res.MatchingACLs, m)
		}
	}
	if last > 0 {
		c.srv.authz.waitApplied(ctx, last)
	}
	return immediate(resp)
}
