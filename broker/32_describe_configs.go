package broker

// DescribeConfigs, versions 1-4. Topic resources list every topic config
// Sediment honours with its value and source (a topic override or the broker
// default); broker resources list the broker's static settings.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeConfigs(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.DescribeConfigsRequest)
	s := c.srv
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, res := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = res.ResourceType, res.ResourceName
		if sr.ErrorCode = c.configDenied(kmsg.ACLOperationDescribeConfigs, res.ResourceType, res.ResourceName); sr.ErrorCode != 0 {
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		want := func(name string) bool {
			if res.ConfigNames == nil {
				return true
			}
			for _, n := range res.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		add := func(name, value string, src kmsg.ConfigSource, typ kmsg.ConfigType, readOnly bool, doc string) {
			if !want(name) {
				return
			}
			cfg := kmsg.NewDescribeConfigsResponseResourceConfig()
			cfg.Name = name
			v := value
			cfg.Value = &v
			cfg.ReadOnly = readOnly
			cfg.Source = src
			cfg.IsDefault = src == kmsg.ConfigSourceDefaultConfig
			cfg.ConfigType = typ
			if req.IncludeDocumentation && doc != "" {
				d := doc
				cfg.Documentation = &d
			}
			if req.IncludeSynonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name, syn.Value, syn.Source = name, &v, src
				cfg.ConfigSynonyms = append(cfg.ConfigSynonyms, syn)
			}
			sr.Configs = append(sr.Configs, cfg)
		}
		switch res.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, ok := s.cache.Topic(res.ResourceName)
			if !ok {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			for _, tc := range topicConfigs {
				if v, ok := t.Configs[tc.name]; ok {
					add(tc.name, v, kmsg.ConfigSourceDynamicTopicConfig, tc.typ, false, tc.doc)
				} else {
					add(tc.name, tc.def(s), kmsg.ConfigSourceDefaultConfig, tc.typ, false, tc.doc)
				}
			}
		case kmsg.ConfigResourceTypeBroker:
			if res.ResourceName != "" && res.ResourceName != strconv.Itoa(int(s.cfg.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := "this broker is node " + strconv.Itoa(int(s.cfg.NodeID))
				sr.ErrorMessage = &msg
				break
			}
			for _, bc := range s.brokerConfigs() {
				add(bc.name, bc.value, kmsg.ConfigSourceStaticBrokerConfig, bc.typ, true, "")
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "unsupported resource type " + res.ResourceType.String()
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return immediate(resp)
}

type brokerConfig struct {
	name, value string
	typ         kmsg.ConfigType
}

func (s *Server) brokerConfigs() []brokerConfig {
	b := func(v bool) string { return strconv.FormatBool(v) }
	out := []brokerConfig{
		{"broker.id", strconv.Itoa(int(s.cfg.NodeID)), kmsg.ConfigTypeInt},
		{"node.id", strconv.Itoa(int(s.cfg.NodeID)), kmsg.ConfigTypeInt},
		{"broker.rack", s.cfg.Rack, kmsg.ConfigTypeString},
		{"advertised.listeners", "PLAINTEXT://" + s.cfg.advertised(), kmsg.ConfigTypeString},
		{"listeners", "PLAINTEXT://" + s.cfg.Listen, kmsg.ConfigTypeString},
		{"log.dirs", s.cfg.DataDir, kmsg.ConfigTypeString},
		{"auto.create.topics.enable", b(s.cfg.AutoCreateTopics), kmsg.ConfigTypeBoolean},
		{"num.partitions", strconv.Itoa(int(s.cfg.NumPartitions)), kmsg.ConfigTypeInt},
		{"default.replication.factor", strconv.Itoa(int(s.cfg.DefaultReplicationFactor)), kmsg.ConfigTypeInt},
		{"socket.request.max.bytes", strconv.Itoa(int(s.cfg.SocketRequestMaxBytes)), kmsg.ConfigTypeInt},
		{"log.retention.check.interval.ms", strconv.FormatInt(s.cfg.RetentionCheckInterval.Milliseconds(), 10), kmsg.ConfigTypeLong},
	}
	for _, tc := range topicConfigs {
		out = append(out, brokerConfig{tc.broker, tc.def(s), tc.typ})
	}
	return out
}
