package main

// sediment offsets: where each partition's log starts and ends, locally and
// in the tier, through ListOffsets' special timestamps: -2 the log start
// (the tier's first offset when tiered), -4 the local log start (KIP-405),
// -5 the last tiered offset (KIP-1005, ListOffsets v9), -1 the high
// watermark, and -1 under read_committed the last stable offset. Kafka's own
// tools show none of the local/remote split.

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

var offsetsCommand = &command{
	name: "offsets",
	about: "sediment offsets: per partition the log start, the local log start, the last offset in the tier,\n" +
		"the high watermark and the last stable offset, through the Kafka port of any broker.",
	verbs: []verb{
		{args: "TOPIC[:P,...]...", summary: "the offsets of the topics' partitions (all, or those listed)", bind: bindOffsets},
	},
}

// partitionOffsetsJSON is one partition of `offsets --output json`:
//
//	{"partitions": [{"topic": "orders", "partition": 0, "leader": 1, "log_start_offset": 0,
//	  "local_log_start_offset": 4211, "last_tiered_offset": 4210, "high_watermark": 5000, "last_stable_offset": 5000}]}
//
// last_tiered_offset is null when nothing of the partition is in the tier.
// Records below local_log_start_offset are read from the tier. A partition
// that could not be listed has error and error_message (partition -1: the
// topic); the offsets the broker did answer are there beside them.
type partitionOffsetsJSON struct {
	Topic               string `json:"topic"`
	Partition           int32  `json:"partition"`
	Leader              int32  `json:"leader"`
	LogStartOffset      *int64 `json:"log_start_offset,omitempty"`
	LocalLogStartOffset *int64 `json:"local_log_start_offset,omitempty"`
	LastTieredOffset    *int64 `json:"last_tiered_offset"`
	HighWatermark       *int64 `json:"high_watermark,omitempty"`
	LastStableOffset    *int64 `json:"last_stable_offset,omitempty"`
	Error               string `json:"error,omitempty"`
	ErrorMessage        string `json:"error_message,omitempty"`
	err                 error
}

// offsetKinds are the ListOffsets lookups offsets makes, in column order.
var offsetKinds = []struct {
	name string
	list func(adm *kadm.Client, ctx context.Context, topics ...string) (kadm.ListedOffsets, error)
	set  func(p *partitionOffsetsJSON, o int64)
}{
	{"log start", (*kadm.Client).ListStartOffsets, func(p *partitionOffsetsJSON, o int64) { p.LogStartOffset = &o }},
	{"local log start", (*kadm.Client).ListLocalLogStartOffsets, func(p *partitionOffsetsJSON, o int64) { p.LocalLogStartOffset = &o }},
	{"last tiered offset", (*kadm.Client).ListLatestRemoteOffsets, func(p *partitionOffsetsJSON, o int64) {
		if o >= 0 {
			p.LastTieredOffset = &o
		}
	}},
	{"high watermark", (*kadm.Client).ListEndOffsets, func(p *partitionOffsetsJSON, o int64) { p.HighWatermark = &o }},
	{"last stable offset", (*kadm.Client).ListCommittedOffsets, func(p *partitionOffsetsJSON, o int64) { p.LastStableOffset = &o }},
}

func bindOffsets(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		specs, err := topicArgs(pos)
		if err != nil {
			return err
		}
		adm, err := c.admin(ctx)
		if err != nil {
			return err
		}
		var topics []string
		for _, sp := range specs {
			topics = append(topics, sp.topic)
		}
		m, err := adm.Metadata(ctx, topics...)
		if err != nil {
			return err
		}
		brokers := map[int32]string{}
		for _, b := range m.Brokers {
			brokers[b.NodeID] = brokerLabel(b)
		}

		// The partitions asked for, in order, each once.
		out := []partitionOffsetsJSON{}
		index := map[kadm.Partition]int{}
		add := func(p partitionOffsetsJSON) {
			key := kadm.Partition{Topic: p.Topic, Partition: p.Partition}
			if _, dup := index[key]; !dup {
				index[key] = len(out)
				out = append(out, p)
			}
		}
		for _, sp := range specs {
			td, ok := m.Topics[sp.topic]
			if !ok || td.Err != nil {
				err := cmp.Or(td.Err, error(kerr.UnknownTopicOrPartition))
				add(partitionOffsetsJSON{Topic: sp.topic, Partition: -1, Leader: -1, err: &itemError{item: "topic " + sp.topic, err: err}})
				continue
			}
			parts := sp.partitions
			if parts == nil {
				for _, p := range td.Partitions.Sorted() {
					parts = append(parts, p.Partition)
				}
			}
			for _, p := range parts {
				po := partitionOffsetsJSON{Topic: sp.topic, Partition: p, Leader: -1}
				if pd, ok := td.Partitions[p]; ok {
					po.Leader = pd.Leader
				} else {
					po.err = &itemError{item: fmt.Sprintf("%s[%d]", sp.topic, p), err: kerr.UnknownTopicOrPartition}
				}
				add(po)
			}
		}

		var found []string
		for _, t := range topics {
			if td, ok := m.Topics[t]; ok && td.Err == nil {
				found = append(found, t)
			}
		}
		var reqErrs []error
		for _, k := range offsetKinds {
			if len(found) == 0 {
				break
			}
			listed, err := k.list(adm, ctx, found...)
			if err != nil {
				reqErrs = append(reqErrs, fmt.Errorf("listing the %s: %w", k.name, namedShards(err)))
			}
			for i := range out {
				p := &out[i]
				if p.err != nil {
					continue
				}
				lo, ok := listed.Lookup(p.Topic, p.Partition)
				switch {
				case !ok:
					p.err = &itemError{item: fmt.Sprintf("%s[%d] %s", p.Topic, p.Partition, k.name), broker: leaderLabel(brokers, p.Leader), err: notAnswered(err)}
				case lo.Err != nil:
					p.err = &itemError{item: fmt.Sprintf("%s[%d] %s", p.Topic, p.Partition, k.name), broker: leaderLabel(brokers, p.Leader), err: lo.Err}
				default:
					k.set(p, lo.Offset)
				}
			}
		}
		errs := make([]error, len(out))
		for i := range out {
			errs[i] = out[i].err
			out[i].Error, out[i].ErrorMessage = errorFields(out[i].err)
		}
		err = c.print(s.out, map[string]any{"partitions": out}, func(w io.Writer) error {
			t := newTable(w, "TOPIC", "PARTITION", "LEADER", "LOG-START", "LOCAL-LOG-START", "LAST-TIERED", "HIGH-WATERMARK", "LAST-STABLE")
			for _, p := range out {
				if p.err != nil && p.LogStartOffset == nil {
					continue // nothing listed; the error follows
				}
				t.row(p.Topic, strconv.Itoa(int(p.Partition)), strconv.Itoa(int(p.Leader)), optInt(p.LogStartOffset), optInt(p.LocalLogStartOffset),
					optInt(p.LastTieredOffset), optInt(p.HighWatermark), optInt(p.LastStableOffset))
			}
			return t.flush()
		})
		return cmp.Or(err, failuresOf("partitions not listed", errs), errors.Join(reqErrs...))
	}
}

// leaderLabel names a partition's leader (the broker that answers its
// ListOffsets).
func leaderLabel(brokers map[int32]string, leader int32) string {
	if l, ok := brokers[leader]; ok {
		return "leader " + l
	}
	return fmt.Sprintf("leader %d (unknown broker)", leader)
}
