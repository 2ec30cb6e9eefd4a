package broker

// IncrementalAlterConfigs, versions 0-1: SET, DELETE, APPEND and SUBTRACT
// (the last two for list configs only) on a topic's overrides.

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleIncrementalAlterConfigs(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	s := c.srv
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(0))
	defer cancel()
	for _, res := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = res.ResourceType, res.ResourceName
		if sr.ErrorCode = c.configDenied(kmsg.ACLOperationAlterConfigs, res.ResourceType, res.ResourceName); sr.ErrorCode != 0 {
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		err := s.alterTopicConfigs(ctx, res.ResourceType, res.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
			if cur == nil {
				cur = map[string]string{}
			}
			for _, op := range res.Configs {
				tc, known := lookupTopicConfig(op.Name)
				if !known {
					return nil, newTopicError(kerr.InvalidConfig, "unknown topic config %q", op.Name)
				}
				val := ""
				if op.Value != nil {
					val = *op.Value
				}
				switch op.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					cur[op.Name] = val
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(cur, op.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					if tc.typ != kmsg.ConfigTypeList {
						return nil, newTopicError(kerr.InvalidConfig, "%s is not a list config; APPEND and SUBTRACT do not apply", op.Name)
					}
					v, ok := cur[op.Name]
					if !ok {
						v = tc.def(s)
					}
					items := splitList(v)
					for _, it := range splitList(val) {
						if op.Op == kmsg.IncrementalAlterConfigOpAppend && !slices.Contains(items, it) {
							items = append(items, it)
						} else if op.Op == kmsg.IncrementalAlterConfigOpSubtract {
							items = slices.DeleteFunc(items, func(x string) bool { return x == it })
						}
					}
					cur[op.Name] = strings.Join(items, ",")
				default:
					return nil, newTopicError(kerr.InvalidRequest, "unknown config operation %d", op.Op)
				}
			}
			return cur, nil
		})
		sr.ErrorCode, sr.ErrorMessage = errorCodeMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return immediate(resp)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
