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
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// resetGroupJSON is `group reset-offsets --output json` (one group):
//
//	{"groups": [{"group": "g1", "state": "Empty", "executed": false,
//	             "offsets": [{"topic": "orders", "partition": 0, "current_offset": 10, "new_offset": 0}]}]}
//
// state is the group's state when it was checked (Empty, or Dead for a
// group that does not exist yet); executed is true when the new offsets
// were committed (--execute), false when they were only planned;
// current_offset is null where the group had committed nothing. A
// partition whose commit failed has error (Kafka's error name, or a
// message), and the command exits 1.
type resetGroupJSON struct {
	Group    string            `json:"group"`
	State    string            `json:"state"`
	Executed bool              `json:"executed"`
	Offsets  []resetOffsetJSON `json:"offsets"`
}

type resetOffsetJSON struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset *int64 `json:"current_offset"`
	NewOffset     int64  `json:"new_offset"`
	Error         string `json:"error,omitempty"`
}

// topicFlag is a repeatable --topic T or --topic T:P,P,...
type topicFlag []topicSpec

type topicSpec struct {
	topic      string
	partitions []int32 // nil: every partition
}

func (f *topicFlag) String() string {
	var out []string
	for _, s := range *f {
		if s.partitions == nil {
			out = append(out, s.topic)
		} else {
			out = append(out, s.topic+":"+joinInt32s(s.partitions))
		}
	}
	return strings.Join(out, " ")
}

func (f *topicFlag) Set(v string) error {
	topic, list, hasList := strings.Cut(v, ":")
	if topic == "" {
		return errors.New("want TOPIC or TOPIC:PARTITION,...")
	}
	spec := topicSpec{topic: topic}
	if hasList {
		spec.partitions = []int32{}
		for _, p := range strings.Split(list, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if err != nil || n < 0 {
				return fmt.Errorf("partition %q: want a number from 0", p)
			}
			if !slices.Contains(spec.partitions, int32(n)) {
				spec.partitions = append(spec.partitions, int32(n))
			}
		}
	}
	*f = append(*f, spec)
	return nil
}

// resetFlags are reset-offsets' own flags.
type resetFlags struct {
	topics    topicFlag
	allTopics bool

	toEarliest, toLatest bool
	toOffset             int64
	toDatetime           string
	shiftBy              int64

	execute, dryRun bool
}

// scenarioFlags are the ways to choose the new offsets; exactly one is given.
var scenarioFlags = []string{"to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by"}

func bindGroupReset(fs *flag.FlagSet) runFunc {
	var f resetFlags
	fs.Var(&f.topics, "topic", "reset this topic's partitions: `TOPIC` (all of them) or TOPIC:P,P,...; repeatable")
	fs.BoolVar(&f.allTopics, "all-topics", false, "reset every partition the group has committed offsets for")
	fs.BoolVar(&f.toEarliest, "to-earliest", false, "to each partition's log start offset")
	fs.BoolVar(&f.toLatest, "to-latest", false, "to each partition's log end offset")
	fs.Int64Var(&f.toOffset, "to-offset", 0, "to offset `N` (kept within each partition's start and end)")
	fs.StringVar(&f.toDatetime, "to-datetime", "", "to the first offset whose timestamp is at or after `TIME`, RFC 3339 (2026-01-02T15:04:05Z); the log end offset if none is")
	fs.Int64Var(&f.shiftBy, "shift-by", 0, "to the committed offset plus `N` (negative: back; kept within start and end)")
	fs.BoolVar(&f.execute, "execute", false, "commit the new offsets (without it, a dry run prints the plan)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "only print the plan (the default; for scripts that want to say so)")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		set := map[string]bool{}
		fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
		group, err := f.check(pos, set)
		if err != nil {
			return err
		}
		res, err := f.run(ctx, c, group, set, s)
		if res == nil {
			return err
		}
		werr := c.print(s.out, map[string]any{"groups": []*resetGroupJSON{res}}, func(w io.Writer) error {
			t := newTable(w, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET")
			for _, o := range res.Offsets {
				t.row(res.Group, o.Topic, strconv.Itoa(int(o.Partition)), optInt(o.CurrentOffset), strconv.FormatInt(o.NewOffset, 10))
			}
			return t.flush()
		})
		if werr != nil {
			return werr
		}
		if err == nil && !f.execute && !f.dryRun {
			fmt.Fprintln(s.err, "Dry run: nothing was committed. Add --execute to commit these offsets.")
		}
		return err
	}
}

// check validates the command line and returns the group.
func (f *resetFlags) check(pos []string, set map[string]bool) (string, error) {
	if len(pos) != 1 || pos[0] == "" {
		return "", usagef("reset-offsets takes one GROUP, got %q", pos)
	}
	var chosen []string
	for _, n := range scenarioFlags {
		if set[n] {
			chosen = append(chosen, "--"+n)
		}
	}
	switch len(chosen) {
	case 0:
		return "", usagef("say where to with one of --%s", strings.Join(scenarioFlags, ", --"))
	case 1:
	default:
		return "", usagef("%s: give only one", strings.Join(chosen, ", "))
	}
	if (set["to-earliest"] && !f.toEarliest) || (set["to-latest"] && !f.toLatest) {
		return "", usagef("%s=false chooses nothing", chosen[0])
	}
	if len(f.topics) > 0 == f.allTopics {
		return "", usagef("give --topic (repeatable) or --all-topics, not both")
	}
	if f.execute && f.dryRun {
		return "", usagef("--execute and --dry-run contradict each other")
	}
	if set["to-datetime"] {
		if _, err := time.Parse(time.RFC3339, f.toDatetime); err != nil {
			return "", usagef("--to-datetime %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z or 2026-01-02T15:04:05.123+01:00", f.toDatetime)
		}
	}
	return pos[0], nil
}

// run plans the reset and, with --execute, commits it. It returns the plan
// (nil when there is none) and what went wrong.
func (f *resetFlags) run(ctx context.Context, c *adminConn, group string, set map[string]bool, s streams) (*resetGroupJSON, error) {
	adm, err := c.admin(ctx)
	if err != nil {
		return nil, err
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, err
	}
	d := described[group]
	if derr := describedGroupErr(d); derr != nil && !errors.Is(derr, kerr.GroupIDNotFound) {
		return nil, derr
	}
	state := d.State
	if state == "" {
		state = "Dead" // GROUP_ID_NOT_FOUND (v6+): no group yet
	}
	// Kafka's ConsumerGroupCommand: only a group nobody consumes in may
	// have its offsets moved, or a member would commit over them.
	if state != "Empty" && state != "Dead" {
		return nil, fmt.Errorf("Assignments can only be reset if the group '%s' is inactive, but the current state is %s.", group, state)
	}

	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	if err := committed.Error(); err != nil {
		return nil, fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	parts, err := f.partitions(ctx, adm, group, committed)
	if err != nil {
		return nil, err
	}
	targets, err := f.targets(ctx, adm, parts, committed, set, s)
	if err != nil {
		return nil, err
	}

	res := &resetGroupJSON{Group: group, State: state, Offsets: []resetOffsetJSON{}}
	offsets := make(kadm.Offsets)
	for _, tp := range sortedPartitions(parts) {
		o := resetOffsetJSON{Topic: tp.Topic, Partition: tp.Partition, NewOffset: targets[tp]}
		if cur, ok := committed.Lookup(tp.Topic, tp.Partition); ok && cur.At >= 0 {
			o.CurrentOffset = ptr(cur.At)
		}
		res.Offsets = append(res.Offsets, o)
		offsets.Add(kadm.Offset{Topic: tp.Topic, Partition: tp.Partition, At: o.NewOffset, LeaderEpoch: -1})
	}
	if !f.execute {
		return res, nil
	}
	resps, err := adm.CommitOffsets(ctx, group, offsets)
	if err != nil {
		return nil, fmt.Errorf("committing: %w", err)
	}
	failed := 0
	for i, o := range res.Offsets {
		r, ok := resps.Lookup(o.Topic, o.Partition)
		switch {
		case !ok:
			res.Offsets[i].Error = errNotAnswered.Error()
		case r.Err != nil:
			name, msg := kafkaError(r.Err)
			if name == "" {
				name = msg
			}
			res.Offsets[i].Error = name
		default:
			continue
		}
		failed++
	}
	res.Executed = true
	if failed > 0 {
		first := slices.IndexFunc(res.Offsets, func(o resetOffsetJSON) bool { return o.Error != "" })
		o := res.Offsets[first]
		return res, fmt.Errorf("%d of %d offsets not committed (%s[%d]: %s)", failed, len(res.Offsets), o.Topic, o.Partition, o.Error)
	}
	return res, nil
}

// sortedPartitions are the partitions of s by topic, then partition.
func sortedPartitions(s kadm.TopicsSet) []kadm.Partition {
	var out []kadm.Partition
	for _, t := range s.Sorted() {
		for _, p := range t.Partitions {
			out = append(out, kadm.Partition{Topic: t.Topic, Partition: p})
		}
	}
	return out
}

// partitions are the partitions to reset: those named by --topic (checked
// against Metadata), or every partition the group committed for.
func (f *resetFlags) partitions(ctx context.Context, adm *kadm.Client, group string, committed kadm.OffsetResponses) (kadm.TopicsSet, error) {
	parts := make(kadm.TopicsSet)
	if f.allTopics {
		committed.Each(func(o kadm.OffsetResponse) {
			if o.At >= 0 {
				parts.Add(o.Topic, o.Partition)
			}
		})
		if len(parts) == 0 {
			return nil, fmt.Errorf("group %s has no committed offsets; name the topics with --topic", group)
		}
		return parts, nil
	}
	var names []string
	for _, spec := range f.topics {
		if !slices.Contains(names, spec.topic) {
			names = append(names, spec.topic)
		}
	}
	md, err := adm.Metadata(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", strings.Join(names, ", "), err)
	}
	for _, spec := range f.topics {
		td := md.Topics[spec.topic]
		switch {
		case errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			return nil, fmt.Errorf("topic %s does not exist", spec.topic)
		case td.Err != nil:
			return nil, fmt.Errorf("topic %s: %w", spec.topic, td.Err)
		}
		if spec.partitions == nil {
			parts.Add(spec.topic, td.Partitions.Numbers()...)
			continue
		}
		for _, p := range spec.partitions {
			if _, ok := td.Partitions[p]; !ok {
				return nil, fmt.Errorf("topic %s has no partition %d (it has %d)", spec.topic, p, len(td.Partitions))
			}
		}
		parts.Add(spec.topic, spec.partitions...)
	}
	return parts, nil
}

// targets computes the new offset of every partition, kept within the
// partition's log start and end as Kafka's tool keeps it (with a warning
// on s.err).
func (f *resetFlags) targets(ctx context.Context, adm *kadm.Client, parts kadm.TopicsSet, committed kadm.OffsetResponses,
	set map[string]bool, s streams) (map[kadm.Partition]int64, error) {
	topics := parts.Topics()
	list := func(what string, fn func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
		l, err := fn(ctx, topics...)
		if err == nil {
			err = l.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s offsets: %w", what, err)
		}
		return l, nil
	}
	starts, err := list("start", adm.ListStartOffsets)
	if err != nil {
		return nil, err
	}
	ends, err := list("end", adm.ListEndOffsets)
	if err != nil {
		return nil, err
	}
	var byTime kadm.ListedOffsets
	if set["to-datetime"] {
		at, _ := time.Parse(time.RFC3339, f.toDatetime) // checked already
		byTime, err = list("by-time", func(ctx context.Context, ts ...string) (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, max(at.UnixMilli(), 0), ts...)
		})
		if err != nil {
			return nil, err
		}
	}

	out := make(map[kadm.Partition]int64)
	for _, tp := range sortedPartitions(parts) {
		start, sok := starts.Lookup(tp.Topic, tp.Partition)
		end, eok := ends.Lookup(tp.Topic, tp.Partition)
		if !sok || !eok {
			return nil, fmt.Errorf("%s[%d]: the broker listed no start or end offset", tp.Topic, tp.Partition)
		}
		var want int64
		switch {
		case f.toEarliest:
			want = start.Offset
		case f.toLatest:
			want = end.Offset
		case set["to-offset"]:
			want = f.toOffset
		case set["to-datetime"]:
			want = end.Offset
			if o, ok := byTime.Lookup(tp.Topic, tp.Partition); ok && o.Offset >= 0 {
				want = o.Offset
			}
		case set["shift-by"]:
			cur, ok := committed.Lookup(tp.Topic, tp.Partition)
			if !ok || cur.At < 0 {
				return nil, fmt.Errorf("cannot shift offset for partition %s-%d since there is no current committed offset", tp.Topic, tp.Partition)
			}
			want = cur.At + f.shiftBy
		}
		switch {
		case want < start.Offset:
			fmt.Fprintf(s.err, "New offset (%d) is lower than earliest offset for topic partition %s-%d. Value will be set to %d\n", want, tp.Topic, tp.Partition, start.Offset)
			want = start.Offset
		case want > end.Offset:
			fmt.Fprintf(s.err, "New offset (%d) is higher than latest offset for topic partition %s-%d. Value will be set to %d\n", want, tp.Topic, tp.Partition, end.Offset)
			want = end.Offset
		}
		out[tp] = want
	}
	return out, nil
}
