package main

// sediment log-dirs: each broker's data directory (DescribeLogDirs, like
// Kafka's kafka-log-dirs.sh): the file system's total and usable bytes and
// the size of every partition replica in it. Sizes are local: what is only
// in the tier is not counted (see sediment offsets for where the local log
// starts).

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
)

var logDirsCommand = &command{
	name: "log-dirs",
	about: "sediment log-dirs: each broker's data directory with its disk's total and usable bytes and the\n" +
		"local size of each partition replica, through the Kafka port of any broker (like kafka-log-dirs.sh).",
	verbs: []verb{
		{args: "[TOPIC...] [--broker N,...]", summary: "data directories of every broker (or those given) and the partitions in them (of every topic, or those given)", bind: bindLogDirs},
	},
}

// logDirJSON is one directory of `log-dirs --output json`:
//
//	{"log_dirs": [{"broker": 1, "dir": "/data", "total_bytes": 107374182400, "usable_bytes": 53687091200,
//	  "size_bytes": 1048576, "partitions": [{"topic": "orders", "partition": 0, "size_bytes": 1048576, "offset_lag": 0}]}]}
//
// total_bytes and usable_bytes are -1 when the broker does not know them; a
// broker that could not be described is one entry with only broker, error
// and error_message.
type logDirJSON struct {
	Broker       int32             `json:"broker"`
	Dir          string            `json:"dir,omitempty"`
	TotalBytes   *int64            `json:"total_bytes,omitempty"`
	UsableBytes  *int64            `json:"usable_bytes,omitempty"`
	SizeBytes    *int64            `json:"size_bytes,omitempty"`
	Partitions   []logDirPartition `json:"partitions,omitempty"`
	Error        string            `json:"error,omitempty"`
	ErrorMessage string            `json:"error_message,omitempty"`
	err          error
}

type logDirPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	SizeBytes int64  `json:"size_bytes"`
	OffsetLag int64  `json:"offset_lag"`
	IsFuture  bool   `json:"is_future,omitempty"`
}

func bindLogDirs(fs *flag.FlagSet) runFunc {
	var brokerList string
	fs.StringVar(&brokerList, "broker", "", "only these comma-separated broker `ids` (default: every live broker)")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		var ids []int32
		for _, f := range splitList(brokerList) {
			id, err := strconv.ParseInt(f, 10, 32)
			if err != nil || id < 0 {
				return usagef("--broker %q: want a broker id (a non-negative integer)", f)
			}
			if !slices.Contains(ids, int32(id)) {
				ids = append(ids, int32(id))
			}
		}
		var topics []string
		if len(pos) > 0 {
			var err error
			if topics, err = uniqueArgs(pos, "TOPIC"); err != nil {
				return err
			}
		}
		adm, err := c.admin(ctx)
		if err != nil {
			return err
		}
		brokers, err := adm.ListBrokers(ctx)
		if err != nil {
			return err
		}
		labels := map[int32]string{}
		for _, b := range brokers {
			labels[b.NodeID] = brokerLabel(b)
		}
		label := func(id int32) string { return cmp.Or(labels[id], fmt.Sprintf("broker %d", id)) }

		var out []logDirJSON
		var errs []error
		var reqErr error
		if len(ids) == 0 {
			var all kadm.DescribedAllLogDirs
			all, reqErr = adm.DescribeAllLogDirs(ctx, nil)
			for _, d := range all.Sorted() {
				out = append(out, logDirEntry(d, topics, label))
			}
			for _, b := range brokers {
				if _, ok := all[b.NodeID]; !ok {
					out = append(out, logDirJSON{Broker: b.NodeID, err: &itemError{item: "log dirs", broker: label(b.NodeID), err: shardErrOf(reqErr, b.NodeID)}})
				}
			}
		} else {
			for _, id := range ids {
				if _, known := labels[id]; !known {
					out = append(out, logDirJSON{Broker: id, err: fmt.Errorf("broker %d: not a live broker of this cluster", id)})
					continue
				}
				dirs, err := adm.DescribeBrokerLogDirs(ctx, id, nil)
				if err != nil {
					out = append(out, logDirJSON{Broker: id, err: &itemError{item: "log dirs", broker: label(id), err: err}})
					continue
				}
				for _, d := range dirs.Sorted() {
					out = append(out, logDirEntry(d, topics, label))
				}
			}
		}
		slices.SortStableFunc(out, func(a, b logDirJSON) int { return cmp.Compare(a.Broker, b.Broker) })
		for i := range out {
			out[i].Error, out[i].ErrorMessage = errorFields(out[i].err)
			errs = append(errs, out[i].err)
		}
		if out == nil {
			out = []logDirJSON{}
		}
		err = c.print(s.out, map[string]any{"log_dirs": out}, func(w io.Writer) error { return printLogDirs(w, out) })
		if reqErr != nil && !slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
			return namedShards(reqErr)
		}
		return cmp.Or(err, failuresOf("log dirs not described", errs))
	}
}

// logDirEntry is the entry of one described directory, with only the
// partitions of topics (all when none are given).
func logDirEntry(d kadm.DescribedLogDir, topics []string, label func(int32) string) logDirJSON {
	e := logDirJSON{Broker: d.Broker, Dir: d.Dir}
	if d.Err != nil {
		e.err = &itemError{item: "log dir " + d.Dir, broker: label(d.Broker), err: d.Err}
		return e
	}
	e.TotalBytes, e.UsableBytes = ptr(d.TotalBytes), ptr(d.UsableBytes)
	var size int64
	for _, p := range d.Topics.Sorted() {
		if len(topics) > 0 && !slices.Contains(topics, p.Topic) {
			continue
		}
		size += p.Size
		e.Partitions = append(e.Partitions, logDirPartition{Topic: p.Topic, Partition: p.Partition, SizeBytes: p.Size, OffsetLag: p.OffsetLag, IsFuture: p.IsFuture})
	}
	e.SizeBytes = &size
	return e
}

// printLogDirs writes a table of the directories, then one of their
// partitions.
func printLogDirs(w io.Writer, dirs []logDirJSON) error {
	t := newTable(w, "BROKER", "DIR", "TOTAL-BYTES", "USABLE-BYTES", "PARTITIONS", "SIZE-BYTES", "ERROR")
	for _, d := range dirs {
		t.row(strconv.Itoa(int(d.Broker)), d.Dir, optInt(d.TotalBytes), optInt(d.UsableBytes), strconv.Itoa(len(d.Partitions)), optInt(d.SizeBytes), d.Error)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t = newTable(w, "BROKER", "TOPIC", "PARTITION", "SIZE-BYTES", "OFFSET-LAG")
	for _, d := range dirs {
		for _, p := range d.Partitions {
			t.row(strconv.Itoa(int(d.Broker)), p.Topic, strconv.Itoa(int(p.Partition)), strconv.FormatInt(p.SizeBytes, 10), strconv.FormatInt(p.OffsetLag, 10))
		}
	}
	return t.flush()
}

// shardErrOf is the error of broker id's part of a kadm request that
// returned err, or why it is missing from the answer.
func shardErrOf(err error, id int32) error {
	var se *kadm.ShardErrors
	if errors.As(err, &se) {
		for _, e := range se.Errs {
			if e.Broker.NodeID == id {
				return e.Err
			}
		}
	}
	return notAnswered(err)
}
