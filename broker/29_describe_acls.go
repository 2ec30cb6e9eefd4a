package broker

// DescribeAcls, versions 1-3: the ACLs a filter selects, from this broker's
// authorizer (the watch of acls/ keeps it within moments of etcd), grouped by
// resource pattern. The caller needs CLUSTER DESCRIBE; an unknown enum in the
// filter is INVALID_REQUEST, and without an authorizer the answer is
// SECURITY_DISABLED.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/security"
)

func handleDescribeACLs(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if code, msg := aclRequestError(c, kmsg.ACLOperationDescribe, 1); code != 0 {
		resp.ErrorCode, resp.ErrorMessage = code, &msg
		return immediate(resp)
	}
	f := security.ACLFilter{ResourceType: req.ResourceType, ResourceName: req.ResourceName,
		PatternType: req.ResourcePatternType, Principal: req.Principal, Host: req.Host,
		Operation: req.Operation, Permission: req.PermissionType}
	if err := f.Validate(); err != nil {
		msg := err.Error()
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, &msg
		return immediate(resp)
	}
	// ACLs come sorted by resource type, pattern type and name first, so each
	// resource's bindings are consecutive.
	for _, b := range c.srv.authz.a.ACLs(f) {
		n := len(resp.Resources)
		if n == 0 || resp.Resources[n-1].ResourceType != b.ResourceType ||
			resp.Resources[n-1].ResourcePatternType != b.PatternType || resp.Resources[n-1].ResourceName != b.ResourceName {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			resp.Resources = append(resp.Resources, res)
			n++
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host, a.Operation, a.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, a)
	}
	return immediate(resp)
}
