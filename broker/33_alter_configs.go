package broker

// AlterConfigs, versions 0-2: replaces a topic's whole override set
// (Kafka's legacy semantics). Broker configs are static in Sediment and are
// refused with a message saying so.

import (
	"context"
	"maps"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
)

func handleAlterConfigs(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.AlterConfigsRequest)
	s := c.srv
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(0))
	defer cancel()
	for _, res := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = res.ResourceType, res.ResourceName
		if sr.ErrorCode = c.configDenied(kmsg.ACLOperationAlterConfigs, res.ResourceType, res.ResourceName); sr.ErrorCode != 0 {
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		set := map[string]string{}
		for _, cfg := range res.Configs {
			if cfg.Value != nil {
				set[cfg.Name] = *cfg.Value
			}
		}
		err := s.alterTopicConfigs(ctx, res.ResourceType, res.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
			return set, nil
		})
		sr.ErrorCode, sr.ErrorMessage = errorCodeMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return immediate(resp)
}

// alterTopicConfigs computes a topic's new overrides with fn, validates them
// and writes them with a compare-and-swap.
func (s *Server) alterTopicConfigs(ctx context.Context, typ kmsg.ConfigResourceType, name string, validateOnly bool, fn func(cur map[string]string) (map[string]string, error)) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		return newTopicError(kerr.InvalidRequest, "broker configs are static in Sediment: set them with flags or SEDIMENT_* variables")
	default:
		return newTopicError(kerr.InvalidRequest, "unsupported resource type %s", typ)
	}
	return s.updateTopic(ctx, name, func(t *meta.Topic) (map[int32]meta.PartitionState, error) {
		next, err := fn(maps.Clone(t.Configs))
		if err != nil {
			return nil, err
		}
		if err := s.validateTopicConfigs(next); err != nil {
			return nil, newTopicError(kerr.InvalidConfig, "%v", err)
		}
		if validateOnly {
			return nil, errValidateOnly
		}
		t.Configs = next
		return nil, nil
	})
}
