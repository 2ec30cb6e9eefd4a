package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/it/harness"
)

// The JSON of the group verbs as README documents it, spelled out here
// rather than taken from the command's own types, so that a renamed field
// fails the test.
type (
	listJSON struct {
		Groups []struct {
			Group        string `json:"group"`
			State        string `json:"state"`
			ProtocolType string `json:"protocol_type"`
			Type         string `json:"type"`
			Coordinator  *int32 `json:"coordinator"`
		} `json:"groups"`
	}
	describeJSON struct {
		Groups []struct {
			Group        string `json:"group"`
			State        string `json:"state"`
			ProtocolType string `json:"protocol_type"`
			Protocol     string `json:"protocol"`
			Coordinator  *struct {
				NodeID int32  `json:"node_id"`
				Host   string `json:"host"`
				Port   int32  `json:"port"`
			} `json:"coordinator"`
			Members []struct {
				MemberID     string   `json:"member_id"`
				InstanceID   *string  `json:"instance_id"`
				ClientID     string   `json:"client_id"`
				Host         string   `json:"host"`
				Subscription []string `json:"subscription"`
				Assignment   []struct {
					Topic      string  `json:"topic"`
					Partitions []int32 `json:"partitions"`
				} `json:"assignment"`
			} `json:"members"`
			Offsets []struct {
				Topic           string `json:"topic"`
				Partition       int32  `json:"partition"`
				CommittedOffset *int64 `json:"committed_offset"`
				LogEndOffset    *int64 `json:"log_end_offset"`
				Lag             *int64 `json:"lag"`
				MemberID        string `json:"member_id"`
				ClientID        string `json:"client_id"`
			} `json:"offsets"`
			Error        string `json:"error"`
			ErrorMessage string `json:"error_message"`
		} `json:"groups"`
	}
	deleteJSON struct {
		Groups []struct {
			Group        string `json:"group"`
			Deleted      bool   `json:"deleted"`
			Error        string `json:"error"`
			ErrorMessage string `json:"error_message"`
		} `json:"groups"`
	}
	resetJSON struct {
		Groups []struct {
			Group    string `json:"group"`
			State    string `json:"state"`
			Executed bool   `json:"executed"`
			Offsets  []struct {
				Topic         string `json:"topic"`
				Partition     int32  `json:"partition"`
				CurrentOffset *int64 `json:"current_offset"`
				NewOffset     int64  `json:"new_offset"`
				Error         string `json:"error"`
			} `json:"offsets"`
		} `json:"groups"`
	}
)

// TestGroupCommands runs the group verbs against a broker and a franz-go
// consumer group: list and describe while the consumer is in (members,
// assignment, committed offsets, lag, "-" without a commit), delete and
// reset-offsets refused then, and after it left, reset-offsets (dry run,
// then --execute with each way of choosing offsets) and delete.
func TestGroupCommands(t *testing.T) {
	addr := startBroker(t, "--offsets-topic-num-partitions", "2", "--offsets-topic-replication-factor", "1",
		"--group-initial-rebalance-delay", "0s", "--log-level", "warn")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, group = "orders", "g1"

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if r, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	produce := func(p int32, n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "p%d-%d", p, i)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	for p := range int32(3) {
		produce(p, 10)
	}

	// A member consumes everything and commits partitions 0 and 1 only;
	// then partition 0 grows by 5: lags 5, 0 and "-".
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ClientID("test-consumer"), kgo.DisableAutoCommit(), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for got := 0; got < 30; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 30 records: %v", got, err)
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		got += fs.NumRecords()
	}
	var commitErr error
	cons.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: -1, Offset: 10}, 1: {Epoch: -1, Offset: 10}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
			if err == nil {
				commitErr = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
			}
		})
	if commitErr != nil {
		t.Fatalf("commit: %v", commitErr)
	}
	produce(0, 5)

	run := func(want int, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := cli(t, append(args, "--bootstrap-server", addr)...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, stdout, stderr)
		}
		return stdout, stderr
	}
	decode := func(stdout string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(stdout), v); err != nil {
			t.Fatalf("%v in %s", err, stdout)
		}
	}

	t.Run("list", func(t *testing.T) {
		var l listJSON
		decode(first(run(0, "group", "list", "--output", "json")), &l)
		if len(l.Groups) != 1 || l.Groups[0].Group != group || l.Groups[0].State != "Stable" ||
			l.Groups[0].ProtocolType != "consumer" || l.Groups[0].Type != "classic" || l.Groups[0].Coordinator == nil {
			t.Fatalf("list: %+v", l)
		}
		decode(first(run(0, "group", "list", "--output", "json", "--state", "empty,dead")), &l)
		if len(l.Groups) != 0 {
			t.Fatalf("list --state empty,dead: %+v", l)
		}
		table := first(run(0, "group", "list"))
		if !strings.Contains(table, "GROUP") || !strings.Contains(table, group) || !strings.Contains(table, "Stable") {
			t.Fatalf("list table:\n%s", table)
		}
	})

	t.Run("describe", func(t *testing.T) {
		var d describeJSON
		decode(first(run(0, "group", "describe", group, "--output", "json")), &d)
		if len(d.Groups) != 1 {
			t.Fatalf("describe: %+v", d)
		}
		g := d.Groups[0]
		if g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol == "" || g.Coordinator == nil || len(g.Members) != 1 {
			t.Fatalf("describe: %+v", g)
		}
		m := g.Members[0]
		if m.ClientID != "test-consumer" || m.MemberID == "" || m.InstanceID != nil || len(m.Assignment) != 1 ||
			m.Assignment[0].Topic != topic || fmt.Sprint(m.Assignment[0].Partitions) != "[0 1 2]" || fmt.Sprint(m.Subscription) != "[orders]" {
			t.Fatalf("member: %+v", m)
		}
		want := []string{"orders[0] committed 10 end 15 lag 5", "orders[1] committed 10 end 10 lag 0", "orders[2] committed - end 10 lag -"}
		var got []string
		for _, o := range g.Offsets {
			if o.MemberID != m.MemberID || o.ClientID != "test-consumer" {
				t.Errorf("%s[%d]: member %q client %q", o.Topic, o.Partition, o.MemberID, o.ClientID)
			}
			got = append(got, fmt.Sprintf("%s[%d] committed %s end %s lag %s", o.Topic, o.Partition, dash(o.CommittedOffset), dash(o.LogEndOffset), dash(o.Lag)))
		}
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Fatalf("offsets:\n got %q\nwant %q", got, want)
		}

		table := first(run(0, "group", "describe", group))
		for _, s := range []string{"ASSIGNMENT-STRATEGY", "Stable", "CONSUMER-ID", "orders:0,1,2", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"} {
			if !strings.Contains(table, s) {
				t.Errorf("describe table lacks %q:\n%s", s, table)
			}
		}
		if !regexpMatch(`(?m)^g1\s+orders\s+2\s+-\s+10\s+-\s+`, table) || !regexpMatch(`(?m)^g1\s+orders\s+0\s+10\s+15\s+5\s+`, table) {
			t.Errorf("describe table rows:\n%s", table)
		}

		_, stderr := run(1, "group", "describe", "nope")
		if !strings.Contains(stderr, "consumer group 'nope' does not exist") {
			t.Fatalf("describe nope: %s", stderr)
		}
		stdout, stderr := run(1, "group", "describe", group, "nope", "--output", "json")
		d = describeJSON{}
		decode(stdout, &d)
		if len(d.Groups) != 2 || d.Groups[0].Group != group || d.Groups[1].Error != "GROUP_ID_NOT_FOUND" || !strings.Contains(stderr, "1 of 2") {
			t.Fatalf("describe g1 nope: %+v\n%s", d, stderr)
		}
		// Groups come out in the order named (kadm reorders the slice it is
		// given by a map's order).
		named := []string{"nope-z", group, "nope-a", "nope-m", "nope-b"}
		stdout, _ = run(1, append([]string{"group", "describe"}, append(named, "--output", "json")...)...)
		d = describeJSON{}
		decode(stdout, &d)
		var order []string
		for _, g := range d.Groups {
			order = append(order, g.Group)
			if (g.Group == group) != (g.Error == "") {
				t.Errorf("describe %v: group %s has error %q", named, g.Group, g.Error)
			}
		}
		if !slices.Equal(order, named) {
			t.Fatalf("describe %v: groups %v", named, order)
		}
	})

	t.Run("refused while a member is in", func(t *testing.T) {
		var del deleteJSON
		stdout, _ := run(1, "group", "delete", group, "--output", "json")
		decode(stdout, &del)
		if len(del.Groups) != 1 || del.Groups[0].Deleted || del.Groups[0].Error != "NON_EMPTY_GROUP" {
			t.Fatalf("delete: %+v", del)
		}
		stdout, _ = run(1, "group", "delete", group)
		if !strings.Contains(stdout, "NON_EMPTY_GROUP") {
			t.Fatalf("delete table: %s", stdout)
		}
		_, stderr := run(1, "group", "reset-offsets", group, "--topic", topic, "--to-earliest")
		if !strings.Contains(stderr, "Assignments can only be reset if the group 'g1' is inactive, but the current state is Stable.") {
			t.Fatalf("reset while stable: %s", stderr)
		}
	})

	cons.Close() // leaves the group
	waitState(t, addr, group, "Empty")

	reset := func(want int, args ...string) (resetJSON, string) {
		t.Helper()
		var r resetJSON
		stdout, stderr := run(want, append([]string{"group", "reset-offsets", group, "--output", "json"}, args...)...)
		if stdout != "" {
			decode(stdout, &r)
		}
		return r, stderr
	}
	plan := func(r resetJSON) string {
		var out []string
		for _, g := range r.Groups {
			for _, o := range g.Offsets {
				out = append(out, fmt.Sprintf("%d:%s->%d", o.Partition, dash(o.CurrentOffset), o.NewOffset))
			}
		}
		return strings.Join(out, " ")
	}
	committed := func() string {
		t.Helper()
		var d describeJSON
		decode(first(run(0, "group", "describe", group, "--output", "json")), &d)
		var out []string
		for _, o := range d.Groups[0].Offsets {
			if o.CommittedOffset != nil {
				out = append(out, fmt.Sprintf("%d:%d", o.Partition, *o.CommittedOffset))
			}
		}
		return strings.Join(out, " ")
	}

	t.Run("reset-offsets", func(t *testing.T) {
		r, stderr := reset(0, "--topic", topic, "--to-earliest")
		if len(r.Groups) != 1 || r.Groups[0].Executed || r.Groups[0].State != "Empty" || plan(r) != "0:10->0 1:10->0 2:-->0" ||
			!strings.Contains(stderr, "--execute") {
			t.Fatalf("dry run: %+v (%s)\n%s", r, plan(r), stderr)
		}
		if got := committed(); got != "0:10 1:10" {
			t.Fatalf("after a dry run, committed %s", got)
		}
		table := first(run(0, "group", "reset-offsets", group, "--topic", topic+":1", "--to-earliest", "--dry-run"))
		if !regexpMatch(`(?m)^g1\s+orders\s+1\s+10\s+0\s*$`, table) {
			t.Fatalf("dry run table:\n%s", table)
		}

		for _, step := range []struct {
			args      []string
			plan      string
			committed string
			warn      string
		}{
			{[]string{"--topic", topic + ":0", "--to-offset", "3"}, "0:10->3", "0:3 1:10", ""},
			{[]string{"--topic", topic + ":1", "--shift-by", "-2"}, "1:10->8", "0:3 1:8", ""},
			{[]string{"--topic", topic + ":2", "--to-offset", "100"}, "2:-->10", "0:3 1:8 2:10", "higher than latest offset for topic partition orders-2. Value will be set to 10"},
			{[]string{"--all-topics", "--shift-by", "-20"}, "0:3->0 1:8->0 2:10->0", "0:0 1:0 2:0", "lower than earliest offset"},
			{[]string{"--topic", topic, "--to-latest"}, "0:0->15 1:0->10 2:0->10", "0:15 1:10 2:10", ""},
			{[]string{"--topic", topic, "--to-datetime", "2000-01-01T00:00:00Z"}, "0:15->0 1:10->0 2:10->0", "0:0 1:0 2:0", ""},
			{[]string{"--topic", topic + ":0,2", "--to-datetime", time.Now().Add(time.Hour).Format(time.RFC3339)}, "0:0->15 2:0->10", "0:15 1:0 2:10", ""},
		} {
			r, stderr := reset(0, append(step.args, "--execute")...)
			if len(r.Groups) != 1 || !r.Groups[0].Executed || plan(r) != step.plan || !strings.Contains(stderr, step.warn) {
				t.Fatalf("%v: %+v plan %q, want %q\n%s", step.args, r, plan(r), step.plan, stderr)
			}
			if got := committed(); got != step.committed {
				t.Fatalf("%v: committed %s, want %s", step.args, got, step.committed)
			}
		}

		for _, bad := range []struct {
			args []string
			want string
		}{
			{[]string{"--topic", "nope", "--to-earliest"}, "topic nope does not exist"},
			{[]string{"--topic", topic + ":7", "--to-earliest"}, "topic orders has no partition 7 (it has 3)"},
		} {
			if _, stderr := reset(1, bad.args...); !strings.Contains(stderr, bad.want) {
				t.Fatalf("%v: %s", bad.args, stderr)
			}
		}

		// A group that does not exist yet (Dead) can be given offsets,
		// but not shifted.
		var r2 resetJSON
		_, stderr = run(1, "group", "reset-offsets", "g2", "--topic", topic, "--shift-by", "1")
		if !strings.Contains(stderr, "cannot shift offset for partition orders-0 since there is no current committed offset") {
			t.Fatalf("shift without commits: %s", stderr)
		}
		decode(first(run(0, "group", "reset-offsets", "g2", "--topic", topic+":1", "--to-latest", "--execute", "--output", "json")), &r2)
		if r2.Groups[0].State != "Dead" || !r2.Groups[0].Executed {
			t.Fatalf("reset of a new group: %+v", r2)
		}

	})

	t.Run("delete", func(t *testing.T) {
		var del deleteJSON
		stdout, _ := run(1, "group", "delete", group, "g2", "nope", "--output", "json")
		decode(stdout, &del)
		got := fmt.Sprintf("%+v", del.Groups)
		if len(del.Groups) != 3 || !del.Groups[0].Deleted || !del.Groups[1].Deleted || del.Groups[2].Deleted ||
			del.Groups[2].Error != "GROUP_ID_NOT_FOUND" || del.Groups[2].ErrorMessage == "" {
			t.Fatalf("delete: %s", got)
		}
		var l listJSON
		decode(first(run(0, "group", "list", "--output", "json")), &l)
		if len(l.Groups) != 0 {
			t.Fatalf("list after delete: %+v", l)
		}
		run(1, "group", "describe", group)
	})

	t.Run("environment", func(t *testing.T) {
		t.Setenv("SEDIMENT_BOOTSTRAP_SERVER", addr)
		t.Setenv("SEDIMENT_OUTPUT", "json")
		stdout, stderr, code := cli(t, "group", "list")
		var l listJSON
		if code != 0 || json.Unmarshal([]byte(stdout), &l) != nil {
			t.Fatalf("list from SEDIMENT_*: exit %d\n%s\n%s", code, stdout, stderr)
		}
		// The command line beats the environment.
		if _, stderr, code := cli(t, "group", "list", "--bootstrap-server", closedAddr(t)); code != 1 || !strings.Contains(stderr, "cannot reach") {
			t.Fatalf("--bootstrap-server over SEDIMENT_BOOTSTRAP_SERVER: exit %d, %s", code, stderr)
		}
	})
}

// waitState waits until the group is in state.
func waitState(t *testing.T, addr, group, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := harness.WaitFor(ctx, 100*time.Millisecond, nil, func() error {
		stdout, stderr, _ := cli(t, "group", "list", "--bootstrap-server", addr, "--output", "json")
		var l listJSON
		if err := json.Unmarshal([]byte(stdout), &l); err != nil {
			return fmt.Errorf("%v: %s", err, stderr)
		}
		for _, g := range l.Groups {
			if g.Group == group && g.State == state {
				return nil
			}
		}
		return fmt.Errorf("groups: %+v", l.Groups)
	}, func(last error) error { return fmt.Errorf("group %s not %s: %v", group, state, last) })
	if err != nil {
		t.Fatal(err)
	}
}

// dash is an optional number as the tables show it.
func dash(v *int64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(*v)
}

func first(a, _ string) string { return a }

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
