package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestCheckOwnership(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets [][]int32
		want string // "" for complete, else a fragment of the error
	}{
		{"complete", [][]int32{{0, 3}, {1}, {2}}, ""},
		{"one member owns all", [][]int32{{0, 1, 2, 3}}, ""},
		{"member without partitions", [][]int32{{0, 1, 2, 3}, {}}, "member 1 owns no partition"},
		{"twice", [][]int32{{0, 1}, {1, 2, 3}}, "partition 1 is owned by members 0 and 1"},
		{"unowned", [][]int32{{0, 1}, {3}}, "partition 2 is owned by no member"},
		{"out of range", [][]int32{{0, 1, 2, 3}, {4}}, "member 1 owns partition 4"},
		{"negative", [][]int32{{0, 1, 2, 3}, {-1}}, "member 1 owns partition -1"},
	} {
		err := checkOwnership(tc.sets, 4)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

func TestOwnership(t *testing.T) {
	o := newOwnership(2)
	o.change(0, []int32{0, 1, 2, 3}, true)
	_, first, n := o.snapshot()
	if n != 1 || first.IsZero() {
		t.Fatalf("after one change: %d changes at %v", n, first)
	}
	o.change(1, nil, true) // an empty callback is no change
	if _, at, n := o.snapshot(); n != 1 || at != first {
		t.Errorf("an empty callback counted: %d changes at %v", n, at)
	}
	o.change(0, []int32{2, 3}, false)
	o.change(1, []int32{3, 2}, true)
	sets, _, n := o.snapshot()
	if n != 3 || checkOwnership(sets, 4) != nil || len(sets[1]) != 2 || sets[1][0] != 2 {
		t.Errorf("after moving 2 and 3: %v, %d changes", sets, n)
	}
	o.freeze()
	o.change(1, []int32{2, 3}, false) // a member closing
	if sets, _, n := o.snapshot(); n != 3 || len(sets[1]) != 2 {
		t.Errorf("a change after freeze counted: %v, %d changes", sets, n)
	}
}

func TestJoinStats(t *testing.T) {
	joins := []joinResult{{elapsed: 700 * time.Millisecond}, {elapsed: 300 * time.Millisecond}, {elapsed: 1200 * time.Millisecond}, {elapsed: 500 * time.Millisecond}}
	med, top := joinStats(joins)
	if med != 600*time.Millisecond || top != 1200*time.Millisecond {
		t.Errorf("joinStats = %v, %v; want 600ms, 1.2s", med, top)
	}
	if joins[0].elapsed != 700*time.Millisecond {
		t.Error("joinStats reordered its argument")
	}
	if med, top := joinStats(nil); med != 0 || top != 0 {
		t.Errorf("joinStats(nil) = %v, %v", med, top)
	}
}

func TestJoinLine(t *testing.T) {
	joins := []joinResult{{elapsed: 520 * time.Millisecond}, {elapsed: 1500 * time.Millisecond}, {elapsed: 510 * time.Millisecond}}
	got := joinLine(protoConsumer, 500*time.Millisecond, joins)
	want := "rebalance KIP-848 (server-side uniform assignor, broker's heartbeat interval 500ms): median 0.520s (1.04 heartbeat intervals), max 1.500s over 3 joins (target median < 1s: met); joins (s): 0.520 1.500 0.510"
	if got != want {
		t.Errorf("joinLine =\n%s\nwant\n%s", got, want)
	}
	slow := []joinResult{{elapsed: 1100 * time.Millisecond}}
	if got := joinLine(protoClassic, time.Second, slow); !strings.Contains(got, "rebalance classic (cooperative-sticky, members' heartbeat interval 1s)") || !strings.Contains(got, "MISSED") {
		t.Errorf("joinLine of a slow classic join = %s", got)
	}
}

// groupsRun is a groupsResult whose rates are easy to check: reads of
// 100 MiB taking plain, classic and consumer, commits at perSec for 10s.
func groupsRun(plain, classic, consumer time.Duration, perSec int64, join time.Duration) groupsResult {
	read := func(d time.Duration) phaseResult { return phaseResult{records: 100, bytes: 100 << 20, elapsed: d} }
	return groupsResult{
		classic:      []joinResult{{elapsed: join}},
		consumer:     []joinResult{{elapsed: join / 2}},
		commits:      commitResult{committers: 8, perRequest: 1, commits: perSec * 10, requests: perSec * 10, elapsed: 10 * time.Second, p50: time.Millisecond, p99: 2 * time.Millisecond},
		produce:      produced{produce: read(time.Second)},
		plain:        read(plain),
		classicRead:  read(classic),
		consumerRead: read(consumer),
	}
}

func TestGroupsMedians(t *testing.T) {
	runs := []groupsResult{
		groupsRun(1*time.Second, 2*time.Second, 3*time.Second, 30000, 900*time.Millisecond),
		groupsRun(3*time.Second, 1*time.Second, 2*time.Second, 10000, 1100*time.Millisecond),
		groupsRun(2*time.Second, 3*time.Second, 1*time.Second, 20000, 1000*time.Millisecond),
	}
	m := groupsMedians(runs)
	if m.plain.elapsed != 2*time.Second || m.classicRead.elapsed != 2*time.Second || m.consumerRead.elapsed != 2*time.Second {
		t.Errorf("read medians = %v %v %v, want 2s each", m.plain.elapsed, m.classicRead.elapsed, m.consumerRead.elapsed)
	}
	if got := m.commits.perSec(); got != 20000 {
		t.Errorf("commit median = %v/s, want 20000", got)
	}
	if m.plain.bytes != 100<<20 {
		t.Errorf("median read bytes = %d", m.plain.bytes)
	}
}

func TestPrintGroupsResults(t *testing.T) {
	var b bytes.Buffer
	r := groupsRun(time.Second, 1050*time.Millisecond, 1250*time.Millisecond, 25000, 800*time.Millisecond)
	printGroupsResults(&b, "results", 500*time.Millisecond, r, nil)
	out := b.String()
	for _, want := range []string{
		"\ngroups, results:\n",
		"rebalance classic (cooperative-sticky, members' heartbeat interval 500ms): median 0.800s (1.60 heartbeat intervals), max 0.800s over 1 joins (target median < 1s: met)",
		"rebalance KIP-848 (server-side uniform assignor, broker's heartbeat interval 500ms): median 0.400s",
		"offset commits: 25000 commits/s = requests/s (1 offset per request, acks=all), 8 committers, p50 1.0 ms, p99 2.0 ms per request (target >= 20000/s per broker: met); produce on this broker: 100.0 MiB/s",
		"plain 100.0 MiB/s, classic group 95.2 MiB/s (0.95x), KIP-848 group 80.0 MiB/s (0.80x) (target >= 0.9x plain: classic met, KIP-848 MISSED)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	b.Reset()
	batched := r
	batched.commits.perRequest, batched.commits.requests = 16, r.commits.commits/16
	printGroupsResults(&b, "results", 500*time.Millisecond, batched, nil)
	if want := "offset commits: 25000 commits/s in 1562 requests/s (16 offsets per request, acks=all; not the reference setup)"; !strings.Contains(b.String(), want) {
		t.Errorf("batched output lacks %q:\n%s", want, b.String())
	}

	b.Reset()
	runs := []groupsResult{r, groupsRun(time.Second, time.Second, time.Second, 10000, 1200*time.Millisecond)}
	printGroupsResults(&b, "median of 2 runs", 500*time.Millisecond, groupsMedians(runs), runs)
	out = b.String()
	for _, want := range []string{
		"median 1.000s (2.00 heartbeat intervals), max 1.200s over 2 joins (target median < 1s: MISSED); joins (s): 0.800 1.200", // every run's joins, pooled
		"(target >= 20000/s per broker: MISSED)", // median of 25000 and 10000
		"; per run (classic, KIP-848): 0.95/0.80 1.00/1.00",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("medians output lacks %q:\n%s", want, out)
		}
	}
}

func TestGroupsFlags(t *testing.T) {
	var f benchFlags
	if err := benchFlagSet(&f).Parse([]string{"--only", "groups", "--groups-bytes", "64MiB", "--groups-heartbeat", "250ms"}); err != nil {
		t.Fatal(err)
	}
	if err := f.validate(); err != nil {
		t.Fatalf("valid flags: %v", err)
	}
	if f.groups.bytes != 64<<20 || f.groups.heartbeat != 250*time.Millisecond {
		t.Errorf("parsed %v %v", f.groups.bytes, f.groups.heartbeat)
	}
	for _, bad := range [][]string{
		{"--groups-joins", "0"},
		{"--groups-heartbeat", "1ms"},
		{"--groups-committers", "0"},
		{"--groups-commit-time", "0s"},
		{"--groups-commit-partitions", "0"},
		{"--groups-commit-partitions", "65"},
		{"--groups-bytes", "1KiB"},
	} {
		var f benchFlags
		if err := benchFlagSet(&f).Parse(bad); err != nil {
			t.Fatal(err)
		}
		if err := f.validate(); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	only, err := parseOnly("groups")
	if err != nil || len(only) != 1 || !only[groupsTargetName] {
		t.Errorf("parseOnly(groups) = %v, %v", only, err)
	}
	cfg := groupsConfig{groupsFlags: groupsFlags{heartbeat: 250 * time.Millisecond}}
	if got := strings.Join(cfg.groupFlags(), " "); got != "--group-initial-rebalance-delay=0 --group-consumer-heartbeat-interval=250ms" {
		t.Errorf("groupFlags = %s", got)
	}
}

func TestAPITimes(t *testing.T) {
	m := func(api string, count, sum, fast float64) map[string]float64 {
		return map[string]float64{
			`sediment_broker_request_duration_seconds_count{api="` + api + `"}`:              count,
			`sediment_broker_request_duration_seconds_sum{api="` + api + `"}`:                sum,
			`sediment_broker_request_duration_seconds_bucket{api="` + api + `",le="0.1024"}`: fast,
		}
	}
	before := m("ConsumerGroupHeartbeat", 10, 0.5, 9)
	after := m("ConsumerGroupHeartbeat", 110, 1.5, 99)
	got := apiTimes(before, after, []string{"JoinGroup", "ConsumerGroupHeartbeat"})
	if len(got) != 1 || got[0] != (apiTime{api: "ConsumerGroupHeartbeat", count: 100, seconds: 1, slow: 10}) {
		t.Fatalf("apiTimes = %+v", got)
	}
	if line := apiTimesLine(got); line != " ConsumerGroupHeartbeat 100 x 10.0 ms mean (10 over 102.4 ms)" {
		t.Errorf("apiTimesLine = %q", line)
	}
	sum := sumAPITimes(nil, got)
	sum = sumAPITimes(sum, []apiTime{{api: "ConsumerGroupHeartbeat", count: 1, seconds: 1, slow: 1}, {api: "OffsetCommit", count: 2}})
	if len(sum) != 2 || sum[0].count != 101 || sum[0].slow != 11 || sum[1].api != "OffsetCommit" || got[0].count != 100 {
		t.Errorf("sumAPITimes = %+v (its first argument now %+v)", sum, got)
	}
}
