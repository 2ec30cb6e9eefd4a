package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// describedGroupJSON is one group of `group describe --output json`:
//
//	{"groups": [{
//	  "group": "g1", "state": "Stable", "protocol_type": "consumer", "protocol": "range",
//	  "coordinator": {"node_id": 1, "host": "127.0.0.1", "port": 9092},
//	  "members": [{"member_id": "...", "instance_id": null, "client_id": "kgo", "host": "/127.0.0.1",
//	               "subscription": ["orders"], "assignment": [{"topic": "orders", "partitions": [0, 1, 2]}]}],
//	  "offsets": [{"topic": "orders", "partition": 0, "committed_offset": 10, "log_end_offset": 15, "lag": 5,
//	               "member_id": "...", "client_id": "kgo", "host": "/127.0.0.1"}]}]}
//
// protocol (the assignor) is absent unless the group is stable or completing a
// rebalance. subscription and assignment are decoded from the consumer
// protocol and null for other protocol types. offsets has, sorted by topic
// and partition, every partition of the topics the group commits to or is
// assigned: committed_offset and lag are null where the group has
// committed nothing, log_end_offset and lag null where the end could not be
// listed (then error says why); member_id, client_id and host are "" for a
// partition no member is assigned. A group that could not be described
// has only its name, error (Kafka's error name when there is one, e.g.
// GROUP_ID_NOT_FOUND) and error_message.
type describedGroupJSON struct {
	Group        string                `json:"group"`
	State        string                `json:"state,omitzero"`
	ProtocolType string                `json:"protocol_type,omitzero"`
	Protocol     string                `json:"protocol,omitzero"`
	Coordinator  *brokerJSON           `json:"coordinator,omitzero"`
	Members      []memberJSON          `json:"members,omitzero"`
	Offsets      []partitionOffsetJSON `json:"offsets,omitzero"`
	Error        string                `json:"error,omitempty"`
	ErrorMessage string                `json:"error_message,omitempty"`

	err error // what Error and ErrorMessage were made from
}

type brokerJSON struct {
	NodeID int32  `json:"node_id"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
}

type memberJSON struct {
	MemberID     string                `json:"member_id"`
	InstanceID   *string               `json:"instance_id"`
	ClientID     string                `json:"client_id"`
	Host         string                `json:"host"`
	Subscription []string              `json:"subscription"`
	Assignment   []topicPartitionsJSON `json:"assignment"`
}

type topicPartitionsJSON struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

type partitionOffsetJSON struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset *int64 `json:"committed_offset"`
	LogEndOffset    *int64 `json:"log_end_offset"`
	Lag             *int64 `json:"lag"`
	MemberID        string `json:"member_id"`
	ClientID        string `json:"client_id"`
	Host            string `json:"host"`
	Error           string `json:"error,omitempty"`
}

func bindGroupDescribe(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		groups, adm, err := c.groupsAdmin(ctx, pos)
		if err != nil {
			return err
		}
		// A copy: kadm's Lag reuses the slice it is given, in map order.
		lags, err := adm.Lag(ctx, slices.Clone(groups)...)
		if err != nil && len(lags) == 0 {
			return err
		}
		out := make([]describedGroupJSON, 0, len(groups))
		for _, g := range groups {
			d := describedGroupJSON{Group: g}
			if l, ok := lags[g]; ok {
				d = describedFromLag(l)
			} else {
				d.err = notAnswered(err)
			}
			if d.err != nil {
				d.Error, d.ErrorMessage = kafkaError(d.err)
			}
			out = append(out, d)
		}
		if err := c.print(s.out, map[string]any{"groups": out}, func(w io.Writer) error { return printDescribed(w, out) }); err != nil {
			return err
		}
		return describeFailures(out)
	}
}

// describedFromLag turns what kadm.Lag found about a group into its JSON.
func describedFromLag(l kadm.DescribedGroupLag) describedGroupJSON {
	d := describedGroupJSON{Group: l.Group}
	if err := l.Error(); err != nil {
		d.err = err
		if errors.Is(err, kerr.GroupIDNotFound) {
			d.err = groupNotFoundError{l.Group}
		}
		return d
	}
	// Before DescribeGroups v6 an unknown group is a Dead one with no
	// members, and it has no offsets either.
	if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag.Sorted()) == 0 {
		d.err = groupNotFoundError{l.Group}
		return d
	}
	d.State, d.ProtocolType, d.Protocol = l.State, l.ProtocolType, l.Protocol
	d.Coordinator = &brokerJSON{NodeID: l.Coordinator.NodeID, Host: l.Coordinator.Host, Port: l.Coordinator.Port}
	d.Members = []memberJSON{}
	for _, m := range l.Members {
		mj := memberJSON{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost}
		if meta, ok := m.Join.AsConsumer(); ok {
			mj.Subscription = slices.Sorted(slices.Values(meta.Topics))
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			mj.Assignment = []topicPartitionsJSON{}
			for _, t := range a.Topics {
				mj.Assignment = append(mj.Assignment, topicPartitionsJSON{Topic: t.Topic, Partitions: slices.Sorted(slices.Values(t.Partitions))})
			}
			slices.SortFunc(mj.Assignment, func(a, b topicPartitionsJSON) int { return strings.Compare(a.Topic, b.Topic) })
		}
		d.Members = append(d.Members, mj)
	}
	d.Offsets = []partitionOffsetJSON{}
	for _, p := range l.Lag.Sorted() {
		pj := partitionOffsetJSON{Topic: p.Topic, Partition: p.Partition}
		if p.Commit.At >= 0 {
			pj.CommittedOffset = ptr(p.Commit.At)
		}
		if p.End.Err == nil {
			pj.LogEndOffset = ptr(p.End.Offset)
		}
		// kadm counts a partition without a commit as lagging by the
		// whole log; Kafka's tool (and this one) shows "-".
		if p.Err == nil && p.Lag >= 0 && pj.CommittedOffset != nil {
			pj.Lag = ptr(p.Lag)
		}
		if p.Err != nil {
			pj.Error = p.Err.Error()
		}
		if p.Member != nil {
			pj.MemberID, pj.ClientID, pj.Host = p.Member.MemberID, p.Member.ClientID, p.Member.ClientHost
		}
		d.Offsets = append(d.Offsets, pj)
	}
	return d
}

// describeFailures is the error of groups that could not be described:
// the one error, or how many failed and why.
func describeFailures(groups []describedGroupJSON) error {
	var lines []string
	var last error
	for _, d := range groups {
		if d.err != nil {
			last = d.err
			lines = append(lines, fmt.Sprintf("%s: %v", d.Group, d.err))
		}
	}
	return failures("groups not described", len(groups), lines, last)
}

// failures sums up the items of a command that failed: nil without any, the
// error itself when the command named one item, else how many of total
// failed (what, e.g. "groups not described") and each one's line.
func failures(what string, total int, lines []string, last error) error {
	switch {
	case len(lines) == 0:
		return nil
	case total == 1:
		return last
	}
	return fmt.Errorf("%d of %d %s:\n  %s", len(lines), total, what, strings.Join(lines, "\n  "))
}

func ptr[T any](v T) *T { return &v }

// printDescribed writes each group as Kafka's tool does with --state,
// --members --verbose and --offsets: a group line, its members, its
// offsets. Groups that failed are left to the error (describeFailures).
func printDescribed(w io.Writer, groups []describedGroupJSON) error {
	first := true
	for _, d := range groups {
		if d.err != nil {
			continue
		}
		if !first {
			fmt.Fprintln(w)
		}
		first = false
		if err := printGroup(w, d); err != nil {
			return err
		}
	}
	return nil
}

func printGroup(w io.Writer, d describedGroupJSON) error {
	t := newTable(w, "GROUP", "COORDINATOR (ID)", "PROTOCOL-TYPE", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS")
	t.row(d.Group, fmt.Sprintf("%s:%d (%d)", d.Coordinator.Host, d.Coordinator.Port, d.Coordinator.NodeID),
		d.ProtocolType, d.Protocol, d.State, strconv.Itoa(len(d.Members)))
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(d.Members) == 0 {
		fmt.Fprintf(w, "Consumer group '%s' has no active members.\n", d.Group)
	} else {
		t = newTable(w, "GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT")
		for _, m := range d.Members {
			n, assigned := 0, make([]string, 0, len(m.Assignment))
			for _, a := range m.Assignment {
				n += len(a.Partitions)
				assigned = append(assigned, a.Topic+":"+joinInt32s(a.Partitions))
			}
			count := strconv.Itoa(n)
			if m.Assignment == nil {
				count = "" // not the consumer protocol: nothing decoded
			}
			t.row(d.Group, m.MemberID, deref(m.InstanceID), m.Host, m.ClientID, count, strings.Join(assigned, " "))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	if len(d.Offsets) == 0 {
		fmt.Fprintf(w, "Consumer group '%s' has no committed offsets and no assigned partitions.\n", d.Group)
		return nil
	}
	t = newTable(w, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID")
	for _, p := range d.Offsets {
		t.row(d.Group, p.Topic, strconv.Itoa(int(p.Partition)), optInt(p.CommittedOffset), optInt(p.LogEndOffset), optInt(p.Lag),
			p.MemberID, p.Host, p.ClientID)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, p := range d.Offsets {
		if p.Error != "" {
			fmt.Fprintf(w, "%s %s[%d]: %s\n", d.Group, p.Topic, p.Partition, p.Error)
		}
	}
	return nil
}

// optInt is a table cell for an optional number ("" prints as "-").
func optInt(v *int64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(*v, 10)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func joinInt32s(ps []int32) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strconv.Itoa(int(p))
	}
	return strings.Join(out, ",")
}
