package main

// sediment cluster describe: the cluster as Metadata shows it: its id, the
// controller, the live brokers, and counts of topics and of partitions that
// are under-replicated (ISR smaller than the replicas) or offline (no
// leader).

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
)

var clusterCommand = &command{
	name:  "cluster",
	about: "sediment cluster: the cluster id, the controller and the live brokers, through the Kafka port of any broker.",
	verbs: []verb{
		{name: "describe", args: "", summary: "cluster id, controller, brokers (id, address, rack) and counts of topics, partitions, under-replicated and offline partitions", bind: bindClusterDescribe},
	},
}

// clusterJSON is `cluster describe --output json`:
//
//	{"cluster_id": "sdmt-...", "controller": 1,
//	 "brokers": [{"node_id": 1, "host": "127.0.0.1", "port": 9092, "rack": "a"}],
//	 "topics": 3, "partitions": 53, "under_replicated_partitions": 0, "offline_partitions": 0}
//
// rack is absent for a broker without one; controller is -1 when there is
// none; the counts include internal topics.
type clusterJSON struct {
	ClusterID       string              `json:"cluster_id"`
	Controller      int32               `json:"controller"`
	Brokers         []clusterBrokerJSON `json:"brokers"`
	Topics          int                 `json:"topics"`
	Partitions      int                 `json:"partitions"`
	UnderReplicated int                 `json:"under_replicated_partitions"`
	Offline         int                 `json:"offline_partitions"`
}

type clusterBrokerJSON struct {
	NodeID int32  `json:"node_id"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
	Rack   string `json:"rack,omitempty"`
}

func bindClusterDescribe(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		if len(pos) > 0 {
			return usagef("describe takes no arguments, got %q", pos)
		}
		adm, err := c.admin(ctx)
		if err != nil {
			return err
		}
		m, err := adm.Metadata(ctx)
		if err != nil {
			return err
		}
		out := clusterJSON{ClusterID: m.Cluster, Controller: m.Controller, Brokers: []clusterBrokerJSON{}, Topics: len(m.Topics)}
		for _, b := range m.Brokers {
			out.Brokers = append(out.Brokers, clusterBrokerJSON{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: deref(b.Rack)})
		}
		for _, td := range m.Topics {
			for _, p := range td.Partitions {
				out.Partitions++
				if p.Leader < 0 {
					out.Offline++
				}
				if len(p.ISR) < len(p.Replicas) {
					out.UnderReplicated++
				}
			}
		}
		return c.print(s.out, out, func(w io.Writer) error {
			controller := "none"
			if out.Controller >= 0 {
				controller = strconv.Itoa(int(out.Controller))
			}
			fmt.Fprintf(w, "Cluster id:  %s\nController:  %s\nTopics:      %d\nPartitions:  %d (%d under-replicated, %d offline)\n\n",
				out.ClusterID, controller, out.Topics, out.Partitions, out.UnderReplicated, out.Offline)
			t := newTable(w, "BROKER", "HOST", "PORT", "RACK", "CONTROLLER")
			for _, b := range out.Brokers {
				var mark string
				if b.NodeID == out.Controller {
					mark = "yes"
				}
				t.row(strconv.Itoa(int(b.NodeID)), b.Host, strconv.Itoa(int(b.Port)), b.Rack, mark)
			}
			return t.flush()
		})
	}
}
