package it

// Fault tests of tiered storage, over real brokers and a real MinIO: a
// leader killed in the middle of an upload, the object store down under
// load, a broker whose data directory is wiped, and remote retention across
// a leader change. Each ends by reading every acknowledged record back,
// exactly once at its acknowledged offset, from offset 0 (or from the log
// start retention left) through the tier: the tests first wait until the
// leaders' local logs no longer hold that history (ListOffsets -4).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sedimentio/sediment/tier"
)

// tierTopicConfigs are the configs of the tests' tiered topics: small
// segments, and local copies dropped as soon as they are uploaded.
func tierTopicConfigs(segmentBytes int, extra ...string) map[string]*string {
	cfg := map[string]*string{
		"segment.bytes":         kmsg.StringPtr(strconv.Itoa(segmentBytes)),
		"local.retention.bytes": kmsg.StringPtr("0"),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i]] = kmsg.StringPtr(extra[i+1])
	}
	return cfg
}

// TestTierKillLeaderMidUpload kills (SIGKILL) the leader of a partition of
// a tiered RF=3 topic while one of its uploads is in flight, under a
// continuous acks=all load. To land in the middle of an upload it watches
// etcd for a COPY_STARTED record, freezes the uploading leader (SIGSTOP) at
// once, and kills it if the record is still COPY_STARTED (else it lets it
// go and waits for the next upload). The new leader must then clean the
// interrupted upload up (its record leaves COPY_STARTED and its objects
// leave the bucket), tier everything acknowledged before the kill with no
// gap and no duplicate segment in the manifest, and leave no object in the
// bucket that no finished upload names; every acknowledged record is read
// back from offset 0, through the tier. Last, the killed broker restarts
// with a log ending below the leaders' local log start: it must rejoin
// every ISR, its replicas identical to the others where they overlap.
func TestTierKillLeaderMidUpload(t *testing.T) {
	const (
		topic      = "tier-kill"
		partitions = 3
	)
	env := startTierEnv(t)
	c := StartCluster(t, 3, env.flags()...)
	c.CreateTopic(topic, partitions, 3, tierTopicConfigs(256<<10))
	tid := topicIDText(t, c.Admin(t), topic)
	ld := startTierLoad(t, c.Addrs(), topic, partitions, 3)
	boundsOf := func(p int32) (partBounds, error) { return c.bounds(topic, p) }
	waitBounds(t, "every partition has a history of uploaded segments", partitions, 90*time.Second, boundsOf,
		func(_ int32, b partBounds) bool { return b.LatestTiered >= 1000 && b.EarliestLocal > 0 })

	// Land in an upload: COPY_STARTED is written before the first object
	// is put and COPY_FINISHED after the last.
	ctx := testContext(t, 5*time.Minute)
	all := c.etcdClient(t, 0, 1, 2)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := all.Watch(wctx, "/sediment/", clientv3.WithPrefix())
	keyRE := tierRecordsKey(tid)
	v, err := c.View(topic)
	if err != nil {
		t.Fatal(err)
	}
	var (
		victimID int32
		inflight etcdRecord
		misses   int
	)
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
watch:
	for {
		var (
			wr clientv3.WatchResponse
			ok bool
		)
		select {
		case wr, ok = <-wch:
			if !ok {
				t.Fatal("the etcd watch ended")
			}
		case <-deadline.C:
			t.Fatalf("no upload caught in flight within 2 minutes (%d caught too late)", misses)
		}
		if err := wr.Err(); err != nil {
			t.Fatalf("watching etcd: %v", err)
		}
		for _, ev := range wr.Events {
			if ev.Type != mvccpb.PUT || !keyRE.Match(ev.Kv.Key) {
				continue
			}
			var r etcdRecord
			if err := json.Unmarshal(ev.Kv.Value, &r); err != nil {
				t.Fatalf("record %s: %v", ev.Kv.Key, err)
			}
			r.Key = string(ev.Kv.Key)
			if r.State != string(tier.CopyStarted) {
				continue
			}
			st := v.Parts[r.Partition]
			if r.LeaderEpoch > st.Epoch {
				// Leadership moved since the view was taken.
				if v, err = c.View(topic); err != nil {
					t.Fatal(err)
				}
				st = v.Parts[r.Partition]
			}
			if st.Epoch != r.LeaderEpoch {
				continue
			}
			b := c.Node(st.Leader)
			c.Pause(b)
			// Read the record through the other etcd members: b's may be frozen.
			var others []int
			for i := range c.Brokers[:3] {
				if c.Brokers[i] != b {
					others = append(others, i)
				}
			}
			rcli := c.etcdClient(t, others...)
			gctx, gcancel := context.WithTimeout(ctx, 20*time.Second)
			resp, err := rcli.Get(gctx, r.Key)
			gcancel()
			if err != nil {
				c.Resume(b)
				t.Fatalf("reading %s: %v", r.Key, err)
			}
			if len(resp.Kvs) == 1 && strings.Contains(string(resp.Kvs[0].Value), `"state":"COPY_STARTED"`) {
				c.KillAndWait(b)
				victimID, inflight = st.Leader, r
				break watch
			}
			c.Resume(b)
			misses++
		}
	}
	wcancel()
	killed := time.Now()
	before := ld.maxAcked()
	leaders := map[int32]int32{}
	for p, st := range v.Parts {
		leaders[p] = st.Leader
	}
	led := ledBy(leaders, victimID)
	t.Logf("killed broker %d (leader of %v) while uploading %s[%d] [%d, %d] (upload %s, epoch %d); %d uploads had finished before the freeze; acknowledged so far: %v",
		victimID, led, topic, inflight.Partition, inflight.BaseOffset, inflight.EndOffset, inflight.UploadID, inflight.LeaderEpoch, misses, before)
	moved := c.WaitLeaderMoved(topic, led, victimID, 30*time.Second)
	t.Logf("new leaders %v after %v", moved, time.Since(killed).Round(time.Millisecond))
	for _, p := range led {
		// The history stays visible across the leader change: a consumer
		// asking for the earliest offset right away must get 0, not the
		// new leader's local log start.
		if b := firstBoundsAt(t, c.Node(moved[p]).Addr, topic, p, 30*time.Second); b.Earliest != 0 {
			t.Errorf("%s[%d]: the new leader %d first answered %v: the tier's history is invisible", topic, p, moved[p], b)
		}
	}
	t.Logf("first acknowledgements after the kill, per partition: %v",
		c.waitAckedAfterAll(ld, []int32{0, 1, 2}, killed, 30*time.Second))

	// The new leaders tier everything acknowledged before the kill.
	waitBounds(t, "the tier covers every record acknowledged before the kill", partitions, 2*time.Minute, boundsOf,
		func(p int32, b partBounds) bool { return b.LatestTiered >= before[p] })
	t.Logf("tier caught up %v after the kill", time.Since(killed).Round(time.Millisecond))

	// ...after cleaning up the interrupted upload.
	surv := c.etcdClient(t, func() []int {
		var out []int
		for i, b := range c.Brokers[:3] {
			if b.Running() {
				out = append(out, i)
			}
		}
		return out
	}()...)
	waitUntil(t, "the interrupted upload is cleaned up", 60*time.Second, func() (bool, string) {
		recs, err := tierRecords(ctx, surv, tid)
		if err != nil {
			return false, err.Error()
		}
		for _, r := range recs {
			if r.UploadID == inflight.UploadID && (r.State == string(tier.CopyStarted) || r.State == string(tier.DeleteStarted)) {
				return false, "its record is " + r.State
			}
		}
		ups, err := env.uploads(ctx)
		if err != nil {
			return false, err.Error()
		}
		if u := ups[inflight.UploadID]; u != nil {
			return false, fmt.Sprintf("its objects %v are still in the bucket", u.Kinds)
		}
		return true, ""
	})

	ld.waitAcks(ld.ackCount()+500, 60*time.Second)
	ld.finish()
	final := ld.maxAcked()

	// Quiet now: etcd, the manifests and the bucket agree.
	manifests := map[int32]*tier.Manifest{}
	waitUntil(t, "etcd, manifests and bucket agree", 60*time.Second, func() (bool, string) {
		recs, err := tierRecords(ctx, surv, tid)
		if err != nil {
			return false, err.Error()
		}
		finished := map[int32]map[string]bool{}
		for _, r := range recs {
			switch r.State {
			case string(tier.CopyFinished):
				if finished[r.Partition] == nil {
					finished[r.Partition] = map[string]bool{}
				}
				finished[r.Partition][r.UploadID] = true
			case string(tier.CopyStarted), string(tier.DeleteStarted):
				return false, fmt.Sprintf("record %s is %s", r.Key, r.State)
			}
		}
		ups, err := env.uploads(ctx)
		if err != nil {
			return false, err.Error()
		}
		for id, u := range ups {
			if u.TopicID == tid && !finished[u.Partition][id] {
				return false, fmt.Sprintf("objects %v of upload %s (%s[%d] base %d, epoch %d) are named by no finished upload",
					u.Kinds, id, topic, u.Partition, u.BaseOffset, u.Epoch)
			}
		}
		for p := range int32(partitions) {
			m, err := env.manifest(ctx, tid, p)
			if err != nil {
				return false, fmt.Sprintf("manifest of partition %d: %v", p, err)
			}
			var ids []string
			for _, s := range m.Segments {
				ids = append(ids, s.UploadID)
				if u := ups[s.UploadID]; u == nil || !slices.Contains(u.Kinds, tier.KindLog) {
					return false, fmt.Sprintf("partition %d: the manifest names upload %s, whose log object is not in the bucket", p, s.UploadID)
				}
			}
			if len(ids) != len(finished[p]) {
				return false, fmt.Sprintf("partition %d: manifest lists %d uploads, etcd %d finished", p, len(ids), len(finished[p]))
			}
			for _, id := range ids {
				if !finished[p][id] {
					return false, fmt.Sprintf("partition %d: manifest lists upload %s, not finished in etcd", p, id)
				}
			}
			manifests[p] = m
		}
		return true, ""
	})
	for p := range int32(partitions) {
		m := manifests[p]
		if err := checkCoverage(m, 0, before[p]); err != nil {
			t.Fatalf("%s[%d]: remote segments: %v;%s", topic, p, err, describeSegments(m))
		}
		for _, s := range m.Segments {
			if s.UploadID == inflight.UploadID {
				t.Fatalf("%s[%d]: the interrupted upload %s is in the manifest", topic, p, s.UploadID)
			}
		}
		t.Logf("%s[%d]: %d remote segments, contiguous:%s", topic, p, len(m.Segments), describeSegments(m))
	}

	// History is only in the tier now; read it back from there.
	waitBounds(t, "the leaders' local logs no longer hold what was acknowledged before the kill", partitions, 60*time.Second, boundsOf,
		func(p int32, b partBounds) bool { return b.Earliest == 0 && b.EarliestLocal > before[p] })
	for p := range int32(partitions) {
		b, _ := c.bounds(topic, p)
		t.Logf("%s[%d]: %v (last acknowledged %d)", topic, p, b, final[p])
	}
	lv, err := c.View(topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(partitions) {
		st := lv.Parts[p]
		b, err := boundsAt(c.Node(st.Leader).Addr, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		checkEpochEnds(t, c.Node(st.Leader).Addr, topic, p, st.Epoch, b.End, c.Node(st.Leader).Dir)
	}
	ld.verify(c.serving()[0])

	// The killed broker comes back with a log that ends below the leaders'
	// local log start: it must catch up from there and rejoin every ISR.
	victim := c.Node(victimID)
	victim.Restart()
	restarted := time.Now()
	c.WaitISR(topic, partitions, 3, 2*time.Minute)
	t.Logf("broker %d back in every ISR %v after its restart", victimID, time.Since(restarted).Round(time.Millisecond))
	c.compareTieredReplicas(topic, partitions)
}

// TestTierMinIOOutage stops MinIO for 30 seconds under a continuous acks=all
// load on a tiering broker: produce keeps being acknowledged, /readyz says
// 503 and sediment_tier_upload_stalled 1 while uploads fail, and once MinIO
// is back (same address and data) the uploads resume: the bucket gets new
// segments, the tier covers everything acknowledged during the outage, /readyz
// is 200 again, and every acknowledged record reads back through the tier.
func TestTierMinIOOutage(t *testing.T) {
	const (
		topic      = "tier-outage"
		partitions = 2
		outage     = 30 * time.Second
	)
	env := startTierEnv(t)
	b := StartBroker(t, env.flags()...)
	createTopic(t, b.Admin(t), topic, partitions, tierTopicConfigs(128<<10))
	tid := topicIDText(t, b.Admin(t), topic)
	// Most clusters also have idle tiered partitions: nothing to upload
	// must not read as "uploads work again" while the store is down.
	createTopic(t, b.Admin(t), topic+"-idle", 1, tierTopicConfigs(128<<10))
	produceSync(t, b.Client(t, manualPartitions), topic+"-idle", 0, 0, 10, 0)
	ld := startTierLoad(t, []string{b.Addr}, topic, partitions, 2)
	boundsOf := func(p int32) (partBounds, error) { return boundsAt(b.Addr, topic, p) }
	waitBounds(t, "every partition has uploaded segments", partitions, 90*time.Second, boundsOf,
		func(_ int32, b partBounds) bool { return b.LatestTiered >= 0 })
	ready := func() (int, string) {
		code, body, err := httpGet(b.HTTP, "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		return code, strings.TrimSpace(body)
	}
	waitUntil(t, "/readyz 200 before the outage", 30*time.Second, func() (bool, string) {
		code, body := ready()
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	ctx := testContext(t, 5*time.Minute)
	ups0, err := env.uploads(ctx)
	if err != nil {
		t.Fatal(err)
	}

	ackedAtStop := ld.ackCount()
	stopped := time.Now()
	if err := env.MinIO.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("MinIO stopped with %d uploads in the bucket and %d records acknowledged", len(ups0), ackedAtStop)
	var (
		samples, notReady, stalledOnes int
		firstNotReady                  time.Duration = -1
		readyAfterStall                int
		lastBody                       string
	)
	for time.Since(stopped) < outage {
		code, body := ready()
		stalled, _, merr := metricValue(b, "sediment_tier_upload_stalled")
		if merr != nil {
			t.Fatalf("/metrics during the outage: %v", merr)
		}
		samples++
		switch {
		case code == http.StatusServiceUnavailable:
			notReady++
			lastBody = body
			if firstNotReady < 0 {
				firstNotReady = time.Since(stopped)
			}
		case code == http.StatusOK && firstNotReady >= 0:
			readyAfterStall++
		case code != http.StatusOK:
			t.Fatalf("/readyz during the outage: %d %s", code, body)
		}
		if stalled == 1 {
			stalledOnes++
		}
		time.Sleep(250 * time.Millisecond)
	}
	ackedDuring := ld.ackCount() - ackedAtStop
	outageAcked := ld.maxAcked()
	tieredAtRestart := map[int32]int64{}
	for p := range int32(partitions) {
		bb, err := boundsOf(p)
		if err != nil {
			t.Fatalf("ListOffsets during the outage: %v", err)
		}
		tieredAtRestart[p] = bb.LatestTiered
	}
	if err := env.MinIO.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	t.Logf("MinIO down for %v: %d records acknowledged meanwhile (up to offsets %v); /readyz 503 in %d of %d samples (first after %v: %q), 200 again in %d samples after that; upload_stalled 1 in %d samples",
		restarted.Sub(stopped).Round(time.Millisecond), ackedDuring, outageAcked, notReady, samples, firstNotReady.Round(time.Millisecond), lastBody, readyAfterStall, stalledOnes)
	if ackedDuring < 100 {
		t.Errorf("only %d records acknowledged while MinIO was down: producing must not depend on the object store", ackedDuring)
	}
	if notReady == 0 {
		t.Errorf("/readyz never said 503 during a %v object-store outage with segments to upload", outage)
	}
	if stalledOnes == 0 {
		t.Errorf("sediment_tier_upload_stalled never 1 during a %v object-store outage with segments to upload", outage)
	}
	if readyAfterStall > 0 {
		t.Errorf("/readyz went back to 200 in %d of %d samples while MinIO was still down (after its first 503)", readyAfterStall, samples)
	}

	// Uploads resume (after the uploaders' backoff, at most 30s).
	var firstProgress, readyAgain time.Duration = -1, -1
	waitUntil(t, "the tier covers every record acknowledged during the outage", 2*time.Minute, func() (bool, string) {
		if code, _ := ready(); code == http.StatusOK && readyAgain < 0 {
			readyAgain = time.Since(restarted)
		}
		for p := range int32(partitions) {
			bb, err := boundsOf(p)
			if err != nil {
				return false, err.Error()
			}
			if bb.LatestTiered > tieredAtRestart[p] && firstProgress < 0 {
				firstProgress = time.Since(restarted)
			}
			if bb.LatestTiered < outageAcked[p] {
				return false, fmt.Sprintf("partition %d: %v", p, bb)
			}
		}
		return true, ""
	})
	t.Logf("after MinIO came back: /readyz 200 after %v; the tier's end (ListOffsets -5) first moved after %v and covered the outage after %v",
		readyAgain.Round(time.Millisecond), firstProgress.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	waitUntil(t, "/readyz 200 and upload_stalled 0 after the outage", 60*time.Second, func() (bool, string) {
		code, body := ready()
		stalled, _, err := metricValue(b, "sediment_tier_upload_stalled")
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK && stalled == 0, fmt.Sprintf("/readyz %d %s, upload_stalled %v", code, body, stalled)
	})
	ups1, err := env.uploads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fresh := 0
	for id := range ups1 {
		if ups0[id] == nil {
			fresh++
		}
	}
	if fresh == 0 {
		t.Fatalf("no new upload in the bucket after the outage (%d before, %d after)", len(ups0), len(ups1))
	}
	waitBounds(t, "the local logs no longer hold what was acknowledged during the outage", partitions, 60*time.Second, boundsOf,
		func(p int32, b partBounds) bool { return b.Earliest == 0 && b.EarliestLocal > outageAcked[p] })
	ld.finish()
	for p := range int32(partitions) {
		m, err := env.manifest(ctx, tid, p)
		if err != nil {
			t.Fatalf("manifest of %s[%d]: %v", topic, p, err)
		}
		if err := checkCoverage(m, 0, outageAcked[p]); err != nil {
			t.Fatalf("%s[%d]: remote segments: %v;%s", topic, p, err, describeSegments(m))
		}
		bb, _ := boundsOf(p)
		t.Logf("%s[%d]: %d remote segments (%d uploads new since the outage began in the whole bucket); %v", topic, p, len(m.Segments), fresh, bb)
	}
	ld.verify(b)
}

// TestTierWipedBrokerRejoins kills (SIGKILL) a broker that leads every
// partition of a tiered RF=3 topic, wipes its data directory, and starts
// it again under a continuous acks=all load. Its history is only in the
// tier (the leaders keep nothing but their newest segments), so it must
// rebuild its replicas from the leaders' local log start, rejoin every
// ISR, take the leadership back (preferred election) and serve every
// acknowledged record from offset 0, the old ones from the tier.
//
// The wiped broker is a fourth broker that runs no etcd member (it joins as
// an etcd client): the data directory of an etcd member also holds the
// member's data, and a member that lost it must be removed from and added
// back to the etcd cluster, which is an operation of its own.
func TestTierWipedBrokerRejoins(t *testing.T) {
	const (
		topic      = "tier-wipe"
		partitions = 3
	)
	env := startTierEnv(t)
	c := StartCluster(t, 3, env.flags()...)
	w := c.AddBroker()
	wid := c.NodeID(w)
	// Broker 4 is every partition's preferred leader.
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for p := range int32(partitions) {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition = p
		a.Replicas = []int32{wid, 1 + p%3, 1 + (p+1)%3}
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	for k, v := range tierTopicConfigs(128 << 10) {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, v
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	ctx := testContext(t, 5*time.Minute)
	resp, err := req.RequestWith(ctx, c.Client(t))
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, err, aws.ToString(resp.Topics[0].ErrorMessage))
	}
	c.WaitISR(topic, partitions, 3, clusterSettleTimeout)
	adm := c.Admin(t)
	electWiped := func() {
		t.Helper()
		set := kadm.TopicsSet{}
		set.Add(topic, 0, 1, 2)
		var elected time.Time
		elect := ""
		c.WaitFor(fmt.Sprintf("broker %d leads every partition", wid), topic, 60*time.Second, func(v clusterView) (bool, string) {
			for p := range int32(partitions) {
				if v.Parts[p].Leader == wid {
					continue
				}
				if time.Since(elected) > time.Second {
					elected = time.Now()
					ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
					res, err := adm.ElectLeaders(ectx, kadm.ElectPreferredReplica, set)
					cancel()
					elect = fmt.Sprintf("ElectLeaders: %v %v", res, err)
				}
				return false, fmt.Sprintf("partition %d: %v; %s", p, v.Parts[p], elect)
			}
			return true, ""
		})
	}
	electWiped()

	ld := startTierLoad(t, c.Addrs(), topic, partitions, 3)
	boundsOf := func(p int32) (partBounds, error) { return c.bounds(topic, p) }
	waitBounds(t, "history only in the tier", partitions, 90*time.Second, boundsOf,
		func(_ int32, b partBounds) bool { return b.LatestTiered >= 1000 && b.EarliestLocal > 0 })

	c.KillAndWait(w)
	killed := time.Now()
	atKill := ld.maxAcked()
	moved := c.WaitLeaderMoved(topic, []int32{0, 1, 2}, wid, 30*time.Second)
	t.Logf("killed broker %d (acknowledged so far %v); new leaders %v after %v", wid, atKill, moved, time.Since(killed).Round(time.Millisecond))
	c.WaitFor(fmt.Sprintf("broker %d out of every ISR", wid), topic, 30*time.Second, func(v clusterView) (bool, string) {
		for p := range int32(partitions) {
			if slices.Contains(v.Parts[p].ISR, wid) {
				return false, fmt.Sprintf("partition %d: %v", p, v.Parts[p])
			}
		}
		return true, ""
	})
	if err := os.RemoveAll(w.Dir); err != nil {
		t.Fatal(err)
	}
	// History grows and moves to the tier while it is away.
	t.Logf("first acknowledgements after the kill, per partition: %v",
		c.waitAckedAfterAll(ld, []int32{0, 1, 2}, killed, 30*time.Second))
	ld.waitAcks(ld.ackCount()+1000, 60*time.Second)
	away := ld.maxAcked()
	waitBounds(t, "the leaders' local logs start past what broker 4 last saw", partitions, 60*time.Second, boundsOf,
		func(p int32, b partBounds) bool { return b.EarliestLocal > atKill[p] })
	// From now on broker 4 checks retention at the production default
	// interval (5 minutes) rather than the test's 500ms, so it learns what
	// is in the tier as a leader would in production, not from a
	// follower's frequent retention checks.
	w.AddFlags("--log-retention-check-interval", "5m")
	w.Restart()
	restarted := time.Now()
	c.WaitISR(topic, partitions, 3, 2*time.Minute)
	t.Logf("broker %d restarted on an empty data directory: back in every ISR after %v", wid, time.Since(restarted).Round(time.Millisecond))
	for p := range int32(partitions) {
		logs, _ := filepath.Glob(filepath.Join(w.Dir, fmt.Sprintf("%s-%d", topic, p), "*.log"))
		sort.Strings(logs)
		if len(logs) == 0 {
			t.Fatalf("broker %d has no log segment of %s[%d] after rejoining", wid, topic, p)
		}
		first, _ := strconv.ParseInt(strings.TrimSuffix(filepath.Base(logs[0]), ".log"), 10, 64)
		t.Logf("broker %d: %s[%d] rebuilt from offset %d (%d local segments)", wid, topic, p, first, len(logs))
		if first == 0 {
			t.Errorf("broker %d rebuilt %s[%d] from offset 0, but the leader no longer had it locally", wid, topic, p)
		}
	}

	electWiped()
	for p := range int32(partitions) {
		// A consumer asking for the earliest offset right after the
		// election must get 0 (in the tier), not broker 4's local log start.
		if b := firstBoundsAt(t, w.Addr, topic, p, 30*time.Second); b.Earliest != 0 {
			t.Errorf("%s[%d]: broker %d, just elected, first answered %v: the tier's history is invisible", topic, p, wid, b)
		}
	}
	ld.waitNewAcks(60 * time.Second)
	ld.finish()
	for p := range int32(partitions) {
		b, err := boundsAt(w.Addr, topic, p)
		if err != nil {
			t.Fatalf("broker %d: %v", wid, err)
		}
		t.Logf("broker %d leads %s[%d]: %v (acknowledged before it was wiped up to %d, while it was away up to %d)", wid, topic, p, b, atKill[p], away[p])
		// It never held anything below the offset it rebuilt from, which is
		// past what it held before the wipe: all that comes from the tier.
		if b.Earliest != 0 || b.EarliestLocal <= atKill[p] {
			t.Fatalf("broker %d, %s[%d]: %v; want earliest 0 (in the tier) and the local log starting past %d", wid, topic, p, b, atKill[p])
		}
	}
	// Consumers validate their position with OffsetForLeaderEpoch: broker
	// 4's answers must cover the epochs it only knows from the tier.
	v, err := c.View(topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(partitions) {
		b, err := boundsAt(w.Addr, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		checkEpochEnds(t, w.Addr, topic, p, v.Parts[p].Epoch, b.End, w.Dir)
	}
	// Read through broker 4 alone: it leads every partition.
	ld.verify(w)
	c.compareTieredReplicas(topic, partitions)
}

// waitNewAcks waits until every partition has acknowledged a record at an
// offset above the highest acknowledged when it was called.
func (pg *producerGroup) waitNewAcks(timeout time.Duration) {
	pg.t.Helper()
	start := pg.maxAcked()
	waitUntil(pg.t, "every partition acknowledges new records", timeout, func() (bool, string) {
		now := pg.maxAcked()
		for p := range pg.partitions {
			if now[p] <= start[p] {
				return false, fmt.Sprintf("partition %d: last acknowledged offset %d (failures %d)", p, now[p], pg.failed)
			}
		}
		return true, ""
	})
}

// TestTierRemoteRetentionAfterLeaderChange checks remote retention by time
// across a leader change, with records whose timestamps are set by the
// producer (CreateTime): group A is 3 hours old, B 40 minutes, C and D
// current. With retention.ms of 1 hour the first leader deletes A's
// segments from the bucket; its successor, after a kill -9, must keep every
// segment still in retention (B, C), and once retention.ms drops to 30
// minutes delete B's and keep C's. A segment is deleted whole and only when
// its newest record has expired. Every record from the final log start on
// is read back from the tier at its acknowledged offset.
func TestTierRemoteRetentionAfterLeaderChange(t *testing.T) {
	const (
		topic = "tier-retention"
		// Neither a multiple of the other nor of the records per segment
		// (about 50): segments straddle the groups.
		group = 310 // records per group
		batch = 10  // records per produce call
	)
	env := startTierEnv(t)
	c := StartCluster(t, 3, env.flags()...)
	c.CreateTopic(topic, 1, 3, tierTopicConfigs(64<<10, "retention.ms", strconv.Itoa(int(time.Hour.Milliseconds()))))
	tid := topicIDText(t, c.Admin(t), topic)
	ctx := testContext(t, 5*time.Minute)
	boundsOf := func(p int32) (partBounds, error) { return c.bounds(topic, p) }

	cl := c.Client(t, manualPartitions, kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(24<<10), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // no RecordDeliveryTimeout: franz-go counts it from the record timestamp
	pad := []byte(strings.Repeat("p", tierPadBytes))
	type ack struct {
		value string
		ts    time.Time
	}
	acked := map[int64]ack{} // offset -> record
	next := int64(0)
	produce := func(name string, age time.Duration) (first, last int64) {
		t.Helper()
		ts := time.Now().Add(-age).Truncate(time.Millisecond)
		first = next
		for i := 0; i < group; i += batch {
			var recs []*kgo.Record
			for j := i; j < i+batch; j++ {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Key: pad, Value: []byte(fmt.Sprintf("%s-%06d", name, j)), Timestamp: ts})
			}
			for _, r := range cl.ProduceSync(ctx, recs...) {
				if r.Err != nil {
					t.Fatalf("produce group %s: %v", name, r.Err)
				}
				if r.Record.Offset != next {
					t.Fatalf("group %s record %s acknowledged at offset %d, want %d", name, r.Record.Value, r.Record.Offset, next)
				}
				acked[next] = ack{string(r.Record.Value), ts}
				next++
			}
		}
		return first, next - 1
	}
	_, aLast := produce("A", 3*time.Hour)
	bFirst, bLast := produce("B", 40*time.Minute)
	cFirst, _ := produce("C", 0)
	t.Logf("produced A [0, %d] 3h old, B [%d, %d] 40m old, C [%d, %d] current", aLast, bFirst, bLast, cFirst, next-1)

	// The first leader tiers A and B and deletes A's segments (expired).
	var m1 *tier.Manifest
	waitUntil(t, "A's segments tiered and deleted, B's in the tier", 90*time.Second, func() (bool, string) {
		b, err := boundsOf(0)
		if err != nil {
			return false, err.Error()
		}
		if b.LatestTiered < bLast || b.Earliest == 0 || b.EarliestLocal <= bLast {
			return false, b.String()
		}
		m, err := env.manifest(ctx, tid, 0)
		if err != nil {
			return false, err.Error()
		}
		for _, s := range m.Segments {
			if s.EndOffset <= aLast {
				return false, fmt.Sprintf("segment [%d, %d] of group A only is still in the manifest", s.BaseOffset, s.EndOffset)
			}
		}
		if err := checkCoverage(m, b.Earliest, bLast); err != nil {
			return false, err.Error() + ";" + describeSegments(m)
		}
		m1 = m
		return true, ""
	})
	checkBucket := func(m *tier.Manifest) (bool, string) {
		ups, err := env.uploads(ctx)
		if err != nil {
			return false, err.Error()
		}
		for id, u := range ups {
			if !slices.ContainsFunc(m.Segments, func(s tier.RemoteSegment) bool { return s.UploadID == id }) {
				return false, fmt.Sprintf("objects %v of upload %s (base %d) are in the bucket but not in the manifest", u.Kinds, id, u.BaseOffset)
			}
		}
		for _, s := range m.Segments {
			if u := ups[s.UploadID]; u == nil || !slices.Contains(u.Kinds, tier.KindLog) {
				return false, fmt.Sprintf("segment [%d, %d] (upload %s) is in the manifest but its log object is not in the bucket", s.BaseOffset, s.EndOffset, s.UploadID)
			}
		}
		return true, ""
	}
	// The manifest is read afresh: C's segments may be uploaded after m1 was.
	waitUntil(t, "A's objects gone from the bucket", 60*time.Second, func() (bool, string) {
		m, err := env.manifest(ctx, tid, 0)
		if err != nil {
			return false, err.Error()
		}
		for _, s := range m.Segments {
			if s.EndOffset <= aLast {
				return false, fmt.Sprintf("segment [%d, %d] of group A only is back in the manifest", s.BaseOffset, s.EndOffset)
			}
		}
		return checkBucket(m)
	})
	b1, _ := boundsOf(0)
	if b1.Earliest > bFirst {
		t.Fatalf("after deleting A: %v; the log must start at or below B's first offset %d", b1, bFirst)
	}
	t.Logf("first leader deleted A's segments: %v; in the tier:%s", b1, describeSegments(m1))

	// Kill the leader; the new one uploads (C, then D) and applies retention.
	leader := c.Leaders(topic)[0]
	c.KillAndWait(c.Node(leader))
	killed := time.Now()
	moved := c.WaitLeaderMoved(topic, []int32{0}, leader, 30*time.Second)
	newLeader := moved[0]
	t.Logf("killed leader %d; new leader %d after %v", leader, newLeader, time.Since(killed).Round(time.Millisecond))
	dFirst, dLast := produce("D", 0)
	waitUntil(t, "the new leader tiered C", 90*time.Second, func() (bool, string) {
		b, err := boundsOf(0)
		return err == nil && b.LatestTiered >= dFirst, fmt.Sprint(b, err)
	})
	// Nothing is in the bucket that should not be, and, over ten retention
	// checks of the new leader, nothing in retention leaves it.
	for range 10 {
		time.Sleep(500 * time.Millisecond)
		m, err := env.manifest(ctx, tid, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range m1.Segments {
			if !slices.ContainsFunc(m.Segments, func(n tier.RemoteSegment) bool { return n.UploadID == s.UploadID }) {
				t.Fatalf("after the leader change, segment [%d, %d] (max timestamp %v, in retention) left the manifest:%s",
					s.BaseOffset, s.EndOffset, time.UnixMilli(s.MaxTimestamp), describeSegments(m))
			}
		}
		if ok, _ := checkBucket(m); !ok {
			// An upload in progress may be in the bucket before the manifest.
			waitUntil(t, "bucket and manifest agree", 30*time.Second, func() (bool, string) {
				m, err := env.manifest(ctx, tid, 0)
				if err != nil {
					return false, err.Error()
				}
				return checkBucket(m)
			})
		}
		if b, _ := boundsOf(0); b.Earliest != b1.Earliest {
			t.Fatalf("after the leader change the log start moved from %d to %d (%v), with nothing expired", b1.Earliest, b.Earliest, b)
		}
	}
	t.Logf("new leader %d kept every segment in retention", newLeader)

	// Retention 30 minutes: B expires, C and D stay.
	if _, err := c.Admin(t).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr(strconv.Itoa(int((30 * time.Minute).Milliseconds())))}}, topic); err != nil {
		t.Fatal(err)
	}
	var m2 *tier.Manifest
	waitUntil(t, "B's segments deleted, C's kept", 90*time.Second, func() (bool, string) {
		m, err := env.manifest(ctx, tid, 0)
		if err != nil {
			return false, err.Error()
		}
		for _, s := range m.Segments {
			if s.EndOffset < cFirst {
				return false, fmt.Sprintf("segment [%d, %d] (max timestamp %v) is still in the manifest", s.BaseOffset, s.EndOffset, time.UnixMilli(s.MaxTimestamp))
			}
		}
		if ok, why := checkBucket(m); !ok {
			return false, why
		}
		m2 = m
		return true, ""
	})
	for _, s := range m1.Segments {
		kept := slices.ContainsFunc(m2.Segments, func(n tier.RemoteSegment) bool { return n.UploadID == s.UploadID })
		if s.EndOffset >= cFirst && !kept {
			t.Fatalf("segment [%d, %d] holds records in retention (from offset %d on) but was deleted:%s", s.BaseOffset, s.EndOffset, cFirst, describeSegments(m2))
		}
	}
	if err := checkCoverage(m2, cFirst, dFirst-1); err != nil {
		t.Fatalf("remote segments after B expired: %v;%s", err, describeSegments(m2))
	}
	deletedRE := regexp.MustCompile(`msg="remote retention deleted segments"`)
	if _, ok := matchLine(c.Node(newLeader).RunLogs(), deletedRE); !ok {
		t.Errorf("the new leader %d did not log %q", newLeader, deletedRE)
	}
	b2 := waitBounds(t, "the log starts at the first kept segment", 1, 30*time.Second, boundsOf,
		func(_ int32, b partBounds) bool {
			return b.Earliest == m2.Segments[0].BaseOffset && b.EarliestLocal > dFirst
		})[0]
	if b2.Earliest <= aLast || b2.Earliest > cFirst {
		t.Fatalf("after B expired: %v; want the log to start in (%d, %d]", b2, aLast, cFirst)
	}
	t.Logf("after B expired: %v; in the tier:%s", b2, describeSegments(m2))

	// Everything from the log start on reads back from the tier.
	recs := consumePartition(t, c.serving()[0], topic, 0, b2.Earliest, int(b2.End-b2.Earliest))
	for k, r := range recs {
		off := b2.Earliest + int64(k)
		want, ok := acked[off]
		if !ok || r.Offset != off || string(r.Value) != want.value || !r.Timestamp.Equal(want.ts) {
			t.Fatalf("record %d: offset %d value %q timestamp %v; want offset %d value %q timestamp %v",
				k, r.Offset, r.Value, r.Timestamp, off, want.value, want.ts)
		}
	}
	t.Logf("read offsets [%d, %d] back (D up to %d)", b2.Earliest, b2.End-1, dLast)
}
