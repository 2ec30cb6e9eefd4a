package main

// sediment producers: the producers a partition's leader knows, through the
// Kafka port (DescribeProducers, like Kafka's kafka-transactions.sh
// describe-producers). The JSON is documented on its types; fields are only
// ever added.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

var producersCommand = &command{
	name: "producers",
	about: "sediment producers: each partition's idempotent and transactional producers as its leader knows\n" +
		"them, with the first offset of an open transaction (how to find a hanging one).",
	verbs: []verb{
		{name: "describe", args: "TOPIC[:P,...]...", summary: "per partition: producer id, epoch, last sequence and timestamp, coordinator epoch, open transaction's first offset", bind: bindProducersDescribe},
	},
}

// producerPartitionJSON is one partition of `producers describe --output json`:
//
//	{"partitions": [{"topic": "orders", "partition": 0, "leader": 1,
//	  "producers": [{"producer_id": 7, "producer_epoch": 0, "last_sequence": 41,
//	    "last_timestamp": "2026-12-04T18:00:00Z", "coordinator_epoch": 0, "txn_start_offset": 120}]}]}
//
// txn_start_offset is absent when the producer has no open transaction;
// a partition that could not be described has error and error_message
// instead of producers (partition -1 and leader -1: a topic not found).
type producerPartitionJSON struct {
	Topic        string         `json:"topic"`
	Partition    int32          `json:"partition"`
	Leader       int32          `json:"leader"`
	Producers    []producerJSON `json:"producers,omitempty"`
	Error        string         `json:"error,omitempty"`
	ErrorMessage string         `json:"error_message,omitempty"`
	err          error
}

type producerJSON struct {
	ProducerID       int64  `json:"producer_id"`
	ProducerEpoch    int16  `json:"producer_epoch"`
	LastSequence     int32  `json:"last_sequence"`
	LastTimestamp    string `json:"last_timestamp,omitempty"`
	CoordinatorEpoch int32  `json:"coordinator_epoch"`
	TxnStartOffset   *int64 `json:"txn_start_offset,omitempty"`
}

func bindProducersDescribe(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		specs, err := topicArgs(pos)
		if err != nil {
			return err
		}
		set := kadm.TopicsSet{}
		for _, sp := range specs {
			if sp.partitions == nil {
				set.Add(sp.topic) // kadm asks Metadata for every partition
				continue
			}
			set.Add(sp.topic, sp.partitions...)
		}
		adm, err := c.admin(ctx)
		if err != nil {
			return err
		}
		described, reqErr := adm.DescribeProducers(ctx, set)
		if described == nil && reqErr != nil {
			return reqErr
		}
		out := []producerPartitionJSON{}
		var failed []string
		var last error
		for _, sp := range described.SortedPartitions() {
			p := producerPartitionJSON{Topic: sp.Topic, Partition: sp.Partition, Leader: sp.Leader, err: sp.Err}
			if p.err != nil {
				p.Error, p.ErrorMessage = kafkaError(p.err)
				last = p.err
				failed = append(failed, fmt.Sprintf("%s[%d]: %v", p.Topic, p.Partition, p.err))
			}
			for _, d := range sp.ActiveProducers.Sorted() {
				pj := producerJSON{ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch, LastSequence: d.LastSequence, CoordinatorEpoch: d.CoordinatorEpoch}
				if d.LastTimestamp >= 0 {
					pj.LastTimestamp = time.UnixMilli(d.LastTimestamp).UTC().Format(time.RFC3339Nano)
				}
				if d.CurrentTxnStartOffset >= 0 {
					pj.TxnStartOffset = ptr(d.CurrentTxnStartOffset)
				}
				p.Producers = append(p.Producers, pj)
			}
			out = append(out, p)
		}
		// kadm leaves out what Metadata did not know.
		for _, sp := range specs {
			t, ok := described[sp.topic]
			switch {
			case !ok || len(t.Partitions) == 0 && sp.partitions == nil:
				out = append(out, missingPartition(sp.topic, -1, &failed, &last))
			default:
				for _, p := range sp.partitions {
					if _, ok := t.Partitions[p]; !ok {
						out = append(out, missingPartition(sp.topic, p, &failed, &last))
					}
				}
			}
		}
		err = c.print(s.out, map[string]any{"partitions": out}, func(w io.Writer) error {
			t := newTable(w, "TOPIC", "PARTITION", "LEADER", "PRODUCER-ID", "EPOCH", "LAST-SEQUENCE", "LAST-TIMESTAMP", "COORDINATOR-EPOCH", "TXN-START-OFFSET")
			for _, p := range out {
				for _, d := range p.Producers {
					t.row(p.Topic, fmt.Sprint(p.Partition), fmt.Sprint(p.Leader), fmt.Sprint(d.ProducerID), fmt.Sprint(d.ProducerEpoch),
						fmt.Sprint(d.LastSequence), orDash(d.LastTimestamp), fmt.Sprint(d.CoordinatorEpoch), optInt(d.TxnStartOffset))
				}
			}
			return t.flush()
		})
		if err != nil {
			return err
		}
		if len(failed) > 0 {
			return failures("partitions not described", len(out), failed, last)
		}
		return reqErr
	}
}

// missingPartition is the entry of a partition (-1: the whole topic) the
// cluster does not have, counted in failed.
func missingPartition(topic string, partition int32, failed *[]string, last *error) producerPartitionJSON {
	err := kerr.UnknownTopicOrPartition
	p := producerPartitionJSON{Topic: topic, Partition: partition, Leader: -1, err: err}
	p.Error, p.ErrorMessage = kafkaError(err)
	what := topic
	if partition >= 0 {
		what = fmt.Sprintf("%s[%d]", topic, partition)
	}
	*failed = append(*failed, fmt.Sprintf("%s: %v", what, err))
	*last = err
	return p
}
