package it

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupKIP848 runs the scenario of TestGroupClients with franz-go's
// KIP-848 consumer (ServerSideBalancer: ConsumerGroupHeartbeat, the broker
// assigns), the group described by ConsumerGroupDescribe, which only a
// KIP-848 group answers. It is skipped only when the brokers do not
// advertise ConsumerGroupHeartbeat (key 68) in ApiVersions.
func TestGroupKIP848(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3, groupBrokerFlags...)
	versions, err := c.Admin(t).ApiVersions(testContext(t, 30*time.Second))
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	versions.Each(func(v kadm.BrokerApiVersions) {
		if v.Err != nil {
			t.Fatalf("ApiVersions of broker %d: %v", v.NodeID, v.Err)
		}
		if _, _, ok := v.KeyVersions(int16(kmsg.ConsumerGroupHeartbeat)); !ok {
			t.Skipf("broker %d does not advertise ConsumerGroupHeartbeat (key 68): KIP-848 groups are not served", v.NodeID)
		}
	})
	gc := franzGroupClient("franz-kip848", kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer())
	c.CreateTopic(groupTopic(gc.name), groupPartitions, 3, nil)
	runGroupScenario(t, c, gc, describeConsumer)
}

// describeConsumer describes a KIP-848 consumer group
// (ConsumerGroupDescribe, asked of its coordinator: see sampleCommits); a
// classic group is an error (GROUP_ID_NOT_FOUND).
func describeConsumer(cl *kgo.Client, group, topic string) func(context.Context) (groupView, error) {
	return func(ctx context.Context) (groupView, error) {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{group}
		d, err := describeOne(ctx, cl, group, req,
			func(r kmsg.Response) []kmsg.ConsumerGroupDescribeResponseGroup {
				return r.(*kmsg.ConsumerGroupDescribeResponse).Groups
			},
			func(g kmsg.ConsumerGroupDescribeResponseGroup) int16 { return g.ErrorCode })
		if err != nil {
			return groupView{}, err
		}
		v := groupView{State: d.State, ProtocolType: "consumer", Assigned: map[int32][]string{}}
		for _, m := range d.Members {
			v.Members = append(v.Members, m.MemberID)
			for _, at := range m.Assignment.TopicPartitions {
				if at.Topic == topic {
					for _, p := range at.Partitions {
						v.Assigned[p] = append(v.Assigned[p], m.MemberID)
					}
				}
			}
		}
		return v, nil
	}
}
