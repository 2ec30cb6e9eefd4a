package broker

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/security"
)

// Until authentication lands every connection is User:ANONYMOUS, so these
// tests prove denials and grants with ACLs for User:ANONYMOUS and
// allow.everyone.if.no.acl.found off: a legitimate Kafka configuration.

const anon = "User:ANONYMOUS"

// authzClient sends raw requests to one broker.
type authzClient struct {
	t    *testing.T
	cl   *kgo.Client
	node int32
}

func (a authzClient) do(t *testing.T, r kmsg.Request) kmsg.Response {
	t.Helper()
	resp, err := a.cl.Broker(int(a.node)).Request(ctxT(t, 10*time.Second), r)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(r.Key()), err)
	}
	return resp
}

// acl is one binding for anon from any host.
func acl(rt kmsg.ACLResourceType, name string, pattern kmsg.ACLResourcePatternType, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) kmsg.CreateACLsRequestCreation {
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType = rt, name, pattern
	c.Principal, c.Host, c.Operation, c.PermissionType = anon, "*", op, perm
	return c
}

func allowTopic(name string, op kmsg.ACLOperation) kmsg.CreateACLsRequestCreation {
	return acl(kmsg.ACLResourceTypeTopic, name, kmsg.ACLResourcePatternTypeLiteral, op, kmsg.ACLPermissionTypeAllow)
}

// create sends CreateAcls and returns each creation's error code.
func (a authzClient) create(t *testing.T, cs ...kmsg.CreateACLsRequestCreation) []int16 {
	t.Helper()
	req := kmsg.NewPtrCreateACLsRequest()
	req.Creations = cs
	resp := a.do(t, req).(*kmsg.CreateACLsResponse)
	var codes []int16
	for _, r := range resp.Results {
		codes = append(codes, r.ErrorCode)
	}
	return codes
}

// grant creates ACLs and fails the test unless all were created.
func (a authzClient) grant(t *testing.T, cs ...kmsg.CreateACLsRequestCreation) {
	t.Helper()
	for i, code := range a.create(t, cs...) {
		if code != 0 {
			t.Fatalf("CreateAcls %+v: %v", cs[i], kerr.ErrorForCode(code))
		}
	}
}

func wantErr(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func (a authzClient) metadata(t *testing.T, topics ...string) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	req.IncludeTopicAuthorizedOperations = true
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, n := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	return a.do(t, req).(*kmsg.MetadataResponse)
}

func metadataNames(resp *kmsg.MetadataResponse) []string {
	var out []string
	for _, t := range resp.Topics {
		if t.ErrorCode == 0 {
			out = append(out, *t.Topic)
		}
	}
	slices.Sort(out)
	return out
}

// seedACLs writes bindings straight to etcd (the bootstrap Kafka does with
// kafka-acls against the controller) and waits until the broker has them.
func seedACLs(t *testing.T, b *testBroker, cs ...kmsg.CreateACLsRequestCreation) {
	t.Helper()
	var recs []meta.ACLRecord
	for _, c := range cs {
		recs = append(recs, meta.ACLRecord{ResourceType: int8(c.ResourceType), ResourceName: c.ResourceName,
			PatternType: int8(c.ResourcePatternType), Principal: c.Principal, Host: c.Host,
			Operation: int8(c.Operation), Permission: int8(c.PermissionType)})
	}
	ctx := ctxT(t, 10*time.Second)
	rev, err := b.srv.store.CreateACLs(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.srv.authz.watch.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

func (a authzClient) fetch(t *testing.T, b *testBroker, topic string, replica int32) int16 {
	t.Helper()
	tp, ok := b.srv.cache.Topic(topic)
	if !ok {
		t.Fatalf("no topic %s", topic)
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.ReplicaState.ID = replica, replica
	req.MaxBytes, req.SessionEpoch = 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, tp.ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := a.do(t, req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func (a authzClient) listOffsets(t *testing.T, topic string) int16 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return a.do(t, req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode
}

func (a authzClient) findCoordinator(t *testing.T, typ int8, key string) int16 {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType, req.CoordinatorKeys = typ, []string{key}
	return a.do(t, req).(*kmsg.FindCoordinatorResponse).Coordinators[0].ErrorCode
}

func (a authzClient) initProducerID(t *testing.T, txnID *string) int16 {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = txnID, 60000
	return a.do(t, req).(*kmsg.InitProducerIDResponse).ErrorCode
}

// alterScram deletes user's SCRAM-SHA-256 credential and returns its code.
func (a authzClient) alterScram(t *testing.T, user string) int16 {
	t.Helper()
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	d.Name, d.Mechanism = user, 1
	req.Deletions = append(req.Deletions, d)
	return a.do(t, req).(*kmsg.AlterUserSCRAMCredentialsResponse).Results[0].ErrorCode
}

func produceErr(t *testing.T, cl *kgo.Client, topic string) error {
	t.Helper()
	return cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
}

// TestAuthzAPIs runs one broker with --authorizer acl and proves, API family
// by API family, a denial with Kafka's code and a grant after CreateAcls.
func TestAuthzAPIs(t *testing.T) {
	b := startBroker(t, func(c *Config) {
		c.Authorizer = AuthorizerACL
		c.SuperUsers = []string{"User:admin"}
	})
	cl := b.client(kgo.DisableIdempotentWrite(), kgo.RecordRetries(1), kgo.RetryTimeout(time.Second))
	x := authzClient{t: t, cl: cl, node: 1}

	t.Run("ApiVersions advertises the ACL APIs", func(t *testing.T) {
		resp := x.do(t, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
		got := map[int16][2]int16{}
		for _, k := range resp.ApiKeys {
			got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		for _, key := range []int16{29, 30, 31} {
			if got[key] != [2]int16{1, 3} {
				t.Errorf("api %d advertised %v, want [1 3]", key, got[key])
			}
		}
	})

	t.Run("nothing is allowed without ACLs", func(t *testing.T) {
		codes := x.create(t, acl(kmsg.ACLResourceTypeCluster, security.ClusterName, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow))
		wantErr(t, "CreateAcls", codes[0], kerr.ClusterAuthorizationFailed)
		d := kmsg.NewPtrDescribeACLsRequest()
		d.ResourceType, d.ResourcePatternType, d.Operation, d.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		wantErr(t, "DescribeAcls", x.do(t, d).(*kmsg.DescribeACLsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
		del := kmsg.NewPtrDeleteACLsRequest()
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourcePatternType, f.Operation, f.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		del.Filters = append(del.Filters, f)
		wantErr(t, "DeleteAcls", x.do(t, del).(*kmsg.DeleteACLsResponse).Results[0].ErrorCode, kerr.ClusterAuthorizationFailed)

		ct := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "t-a", 1, 1
		ct.Topics = append(ct.Topics, rt)
		wantErr(t, "CreateTopics", x.do(t, ct).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
		md := x.metadata(t, "t-auto")
		wantErr(t, "Metadata auto-create", md.Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
		if _, ok := b.srv.cache.Topic("t-auto"); ok {
			t.Fatal("Metadata created a topic without CREATE")
		}
		wantErr(t, "InitProducerId (idempotent)", x.initProducerID(t, nil), kerr.ClusterAuthorizationFailed)
		wantErr(t, "FindCoordinator (group)", x.findCoordinator(t, 0, "g1"), kerr.GroupAuthorizationFailed)
		wantErr(t, "FindCoordinator (txn)", x.findCoordinator(t, 1, "tx1"), kerr.TransactionalIDAuthorizationFailed)
		el := kmsg.NewPtrElectLeadersRequest()
		wantErr(t, "ElectLeaders", x.do(t, el).(*kmsg.ElectLeadersResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
		wantErr(t, "ListPartitionReassignments", x.do(t, kmsg.NewPtrListPartitionReassignmentsRequest()).(*kmsg.ListPartitionReassignmentsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
		wantErr(t, "DescribeLogDirs", x.do(t, kmsg.NewPtrDescribeLogDirsRequest()).(*kmsg.DescribeLogDirsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
		dc := kmsg.NewPtrDescribeConfigsRequest()
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
		dc.Resources = append(dc.Resources, res)
		wantErr(t, "DescribeConfigs (broker)", x.do(t, dc).(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode, kerr.ClusterAuthorizationFailed)
		wm := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.Committed = 1, true
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = "t-a", []int32{0}
		m.Topics = append(m.Topics, mt)
		wm.Markers = append(wm.Markers, m)
		wantErr(t, "WriteTxnMarkers", x.do(t, wm).(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode, kerr.ClusterAuthorizationFailed)
		wantErr(t, "DescribeUserScramCredentials", x.do(t, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()).(*kmsg.DescribeUserSCRAMCredentialsResponse).ErrorCode, kerr.ClusterAuthorizationFailed)
		wantErr(t, "AlterUserScramCredentials", x.alterScram(t, "alice"), kerr.ClusterAuthorizationFailed)
		dcl := kmsg.NewPtrDescribeClusterRequest()
		dcl.IncludeClusterAuthorizedOperations = true
		if ops := x.do(t, dcl).(*kmsg.DescribeClusterResponse).ClusterAuthorizedOperations; ops != 0 {
			t.Fatalf("DescribeCluster authorized operations %b, want none", ops)
		}
	})

	// The bootstrap: ACL management rights for anon, written to etcd.
	seedACLs(t, b, acl(kmsg.ACLResourceTypeCluster, security.ClusterName, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationAlter, kmsg.ACLPermissionTypeAllow))

	t.Run("SCRAM credential APIs with CLUSTER ALTER", func(t *testing.T) {
		wantErr(t, "DescribeUserScramCredentials", x.do(t, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()).(*kmsg.DescribeUserSCRAMCredentialsResponse).ErrorCode, nil)
		wantErr(t, "AlterUserScramCredentials of a missing user", x.alterScram(t, "alice"), kerr.ResourceNotFound)
	})

	t.Run("CreateAcls and DescribeAcls refuse bad bindings and filters", func(t *testing.T) {
		bad := acl(kmsg.ACLResourceTypeCluster, "not-the-cluster", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationAlter, kmsg.ACLPermissionTypeAllow)
		noColon := allowTopic("x", kmsg.ACLOperationRead)
		noColon.Principal = "ANONYMOUS"
		match := acl(kmsg.ACLResourceTypeTopic, "x", kmsg.ACLResourcePatternTypeMatch, kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow)
		good := allowTopic("x", kmsg.ACLOperationDescribeConfigs)
		codes := x.create(t, bad, noColon, match, good)
		want := []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, 0}
		if !slices.Equal(codes, want) {
			t.Fatalf("CreateAcls codes %v, want %v", codes, want)
		}
		d := kmsg.NewPtrDescribeACLsRequest()
		d.ResourceType, d.ResourcePatternType, d.Operation, d.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeUnknown, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		wantErr(t, "DescribeAcls with pattern UNKNOWN", x.do(t, d).(*kmsg.DescribeACLsResponse).ErrorCode, kerr.InvalidRequest)
	})

	t.Run("PREFIXED CREATE, LITERAL READ, Metadata hides the rest", func(t *testing.T) {
		x.grant(t, acl(kmsg.ACLResourceTypeTopic, "t-", kmsg.ACLResourcePatternTypePrefixed, kmsg.ACLOperationCreate, kmsg.ACLPermissionTypeAllow))
		ct := kmsg.NewPtrCreateTopicsRequest()
		for _, n := range []string{"t-a", "t-b", "u-x"} {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = n, 1, 1
			ct.Topics = append(ct.Topics, rt)
		}
		for i, st := range x.do(t, ct).(*kmsg.CreateTopicsResponse).Topics {
			want := []*kerr.Error{nil, nil, kerr.TopicAuthorizationFailed}[i]
			wantErr(t, "CreateTopics "+st.Topic, st.ErrorCode, want)
			if want == nil && (st.ConfigErrorCode != kerr.TopicAuthorizationFailed.Code || len(st.Configs) > 0) {
				t.Errorf("CreateTopics %s without DESCRIBE_CONFIGS returned configs: %v, %d", st.Topic, kerr.ErrorForCode(st.ConfigErrorCode), len(st.Configs))
			}
		}
		// CREATE does not imply DESCRIBE: both topics exist and are hidden.
		if names := metadataNames(x.metadata(t)); len(names) != 0 {
			t.Fatalf("Metadata lists %v without DESCRIBE", names)
		}
		md := x.metadata(t, "t-a", "nope")
		wantErr(t, "Metadata t-a", md.Topics[0].ErrorCode, kerr.TopicAuthorizationFailed)
		wantErr(t, "Metadata of a missing topic without DESCRIBE", md.Topics[1].ErrorCode, kerr.TopicAuthorizationFailed)
		wantErr(t, "ListOffsets t-a", x.listOffsets(t, "t-a"), kerr.TopicAuthorizationFailed)

		x.grant(t, allowTopic("t-a", kmsg.ACLOperationRead))
		md = x.metadata(t)
		if names := metadataNames(md); !slices.Equal(names, []string{"t-a"}) {
			t.Fatalf("Metadata lists %v, want [t-a]", names)
		}
		ops := md.Topics[0].AuthorizedOperations
		for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationCreate} {
			if ops&(1<<op) == 0 {
				t.Errorf("authorized operations %b lack %v", ops, op)
			}
		}
		if ops&(1<<kmsg.ACLOperationWrite) != 0 {
			t.Errorf("authorized operations %b include WRITE", ops)
		}
		wantErr(t, "ListOffsets t-a", x.listOffsets(t, "t-a"), nil)
		wantErr(t, "ListOffsets t-b", x.listOffsets(t, "t-b"), kerr.TopicAuthorizationFailed)
	})

	t.Run("Produce needs WRITE; DENY beats ALLOW", func(t *testing.T) {
		if err := produceErr(t, cl, "t-a"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("produce without WRITE: %v", err)
		}
		x.grant(t, acl(kmsg.ACLResourceTypeTopic, "t-", kmsg.ACLResourcePatternTypePrefixed, kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeAllow),
			acl(kmsg.ACLResourceTypeTopic, "t-b", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeDeny))
		if err := produceErr(t, cl, "t-a"); err != nil {
			t.Fatalf("produce with WRITE: %v", err)
		}
		if err := produceErr(t, cl, "t-b"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("produce with ALLOW and DENY: %v", err)
		}
		// The idempotent producer: WRITE on some topic is enough (KIP-679).
		wantErr(t, "InitProducerId (idempotent) with WRITE on a topic", x.initProducerID(t, nil), nil)
	})

	t.Run("Fetch needs READ; a follower needs CLUSTER_ACTION", func(t *testing.T) {
		wantErr(t, "Fetch t-a", x.fetch(t, b, "t-a", -1), nil)
		wantErr(t, "Fetch t-b", x.fetch(t, b, "t-b", -1), kerr.TopicAuthorizationFailed)
		wantErr(t, "follower Fetch t-a", x.fetch(t, b, "t-a", 5), kerr.TopicAuthorizationFailed)
	})

	t.Run("groups", func(t *testing.T) {
		join := kmsg.NewPtrJoinGroupRequest()
		join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g1", "consumer", 10000, 10000
		join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
		wantErr(t, "JoinGroup", x.do(t, join).(*kmsg.JoinGroupResponse).ErrorCode, kerr.GroupAuthorizationFailed)
		x.grant(t, acl(kmsg.ACLResourceTypeGroup, "g1", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow))
		// KIP-848: READ on the group, DESCRIBE on the subscribed topics.
		hb := func(group, topic string) int16 {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = group, "m1-00000000000000000000", 0, 10000
			req.SubscribedTopicNames = []string{topic}
			return x.do(t, req).(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode
		}
		wantErr(t, "ConsumerGroupHeartbeat g2", hb("g2", "t-a"), kerr.GroupAuthorizationFailed)
		wantErr(t, "ConsumerGroupHeartbeat g1 subscribing to u-x", hb("g1", "u-x"), kerr.TopicAuthorizationFailed)
		// A real consumer group consumes and commits.
		cons := b.client(kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("t-a"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		fs := cons.PollRecords(ctxT(t, 15*time.Second), 10)
		if err := fs.Err(); err != nil || fs.NumRecords() == 0 {
			t.Fatalf("consuming t-a in g1: %d records, %v", fs.NumRecords(), err)
		}
		if err := cons.CommitUncommittedOffsets(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("commit: %v", err)
		}
		// One OffsetCommit: t-a allowed, t-b (no READ) denied.
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group, oc.Generation = "g1", -1
		for _, n := range []string{"t-a", "t-b"} {
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = n
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Offset = 0
			rt.Partitions = append(rt.Partitions, rp)
			oc.Topics = append(oc.Topics, rt)
		}
		codes := map[string]int16{}
		for _, rt := range x.do(t, oc).(*kmsg.OffsetCommitResponse).Topics {
			codes[rt.Topic] = rt.Partitions[0].ErrorCode
		}
		wantErr(t, "OffsetCommit t-b", codes["t-b"], kerr.TopicAuthorizationFailed)
		// t-a is refused by the group (the consumer above is a member), not by authorization.
		if codes["t-a"] == kerr.TopicAuthorizationFailed.Code || codes["t-a"] == kerr.GroupAuthorizationFailed.Code {
			t.Fatalf("OffsetCommit t-a: %v", kerr.ErrorForCode(codes["t-a"]))
		}
		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Groups, dg.IncludeAuthorizedOperations = []string{"g1", "g2"}, true
		groups := x.do(t, dg).(*kmsg.DescribeGroupsResponse).Groups
		wantErr(t, "DescribeGroups g1", groups[0].ErrorCode, nil)
		if ops := groups[0].AuthorizedOperations; ops != 1<<kmsg.ACLOperationRead|1<<kmsg.ACLOperationDescribe {
			t.Errorf("g1 authorized operations %b, want READ|DESCRIBE", ops)
		}
		wantErr(t, "DescribeGroups g2", groups[1].ErrorCode, kerr.GroupAuthorizationFailed)
		lg := x.do(t, kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse)
		if len(lg.Groups) != 1 || lg.Groups[0].Group != "g1" {
			t.Fatalf("ListGroups: %+v", lg.Groups)
		}
		of := kmsg.NewPtrOffsetFetchRequest()
		ofg := kmsg.NewOffsetFetchRequestGroup()
		ofg.Group = "g2"
		of.Groups = append(of.Groups, ofg)
		wantErr(t, "OffsetFetch g2", x.do(t, of).(*kmsg.OffsetFetchResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
		del := kmsg.NewPtrDeleteGroupsRequest()
		del.Groups = []string{"g1"}
		wantErr(t, "DeleteGroups g1 without DELETE", x.do(t, del).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, kerr.GroupAuthorizationFailed)
		cons.Close()
	})

	t.Run("transactions", func(t *testing.T) {
		wantErr(t, "InitProducerId tx1", x.initProducerID(t, kmsg.StringPtr("tx1")), kerr.TransactionalIDAuthorizationFailed)
		x.grant(t, acl(kmsg.ACLResourceTypeTransactionalId, "tx1", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeAllow))
		tcl := b.client(kgo.TransactionalID("tx1"), kgo.DefaultProduceTopic("t-a"))
		ctx := ctxT(t, 20*time.Second)
		if err := tcl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := tcl.ProduceSync(ctx, &kgo.Record{Value: []byte("in a txn")}).FirstErr(); err != nil {
			t.Fatalf("transactional produce: %v", err)
		}
		if err := tcl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("commit: %v", err)
		}
		end := kmsg.NewPtrEndTxnRequest()
		end.TransactionalID = "tx2"
		wantErr(t, "EndTxn tx2", x.do(t, end).(*kmsg.EndTxnResponse).ErrorCode, kerr.TransactionalIDAuthorizationFailed)
		lt := x.do(t, kmsg.NewPtrListTransactionsRequest()).(*kmsg.ListTransactionsResponse)
		if len(lt.TransactionStates) != 1 || lt.TransactionStates[0].TransactionalID != "tx1" {
			t.Fatalf("ListTransactions: %+v", lt.TransactionStates)
		}
	})

	t.Run("configs, records, partitions, topic deletion", func(t *testing.T) {
		alter := func() int16 {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			res := kmsg.NewIncrementalAlterConfigsRequestResource()
			res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "t-a"
			cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			cfg.Name, cfg.Value = "retention.ms", kmsg.StringPtr("3600000")
			res.Configs = append(res.Configs, cfg)
			req.Resources = append(req.Resources, res)
			return x.do(t, req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode
		}
		wantErr(t, "IncrementalAlterConfigs", alter(), kerr.TopicAuthorizationFailed)
		delRecords := func() int16 {
			req := kmsg.NewPtrDeleteRecordsRequest()
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = "t-a"
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Offset = 1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return x.do(t, req).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode
		}
		wantErr(t, "DeleteRecords", delRecords(), kerr.TopicAuthorizationFailed)
		createParts := func() int16 {
			req := kmsg.NewPtrCreatePartitionsRequest()
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = "t-a", 2
			req.Topics = append(req.Topics, rt)
			return x.do(t, req).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode
		}
		wantErr(t, "CreatePartitions", createParts(), kerr.TopicAuthorizationFailed)
		delTopic := func() int16 {
			req := kmsg.NewPtrDeleteTopicsRequest()
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr("t-a")
			req.Topics, req.TopicNames = append(req.Topics, rt), []string{"t-a"}
			return x.do(t, req).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode
		}
		wantErr(t, "DeleteTopics", delTopic(), kerr.TopicAuthorizationFailed)
		// A missing topic: TOPIC_AUTHORIZATION_FAILED without DESCRIBE on its
		// name, UNKNOWN_TOPIC_OR_PARTITION with it.
		delMissing := func(name string) int16 {
			req := kmsg.NewPtrDeleteTopicsRequest()
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics, req.TopicNames = append(req.Topics, rt), []string{name}
			return x.do(t, req).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode
		}
		wantErr(t, "DeleteTopics of a missing topic without DESCRIBE", delMissing("u-missing"), kerr.TopicAuthorizationFailed)
		x.grant(t, acl(kmsg.ACLResourceTypeTopic, "u-", kmsg.ACLResourcePatternTypePrefixed, kmsg.ACLOperationDescribe, kmsg.ACLPermissionTypeAllow))
		wantErr(t, "DeleteTopics of a missing topic with DESCRIBE", delMissing("u-missing"), kerr.UnknownTopicOrPartition)

		x.grant(t, allowTopic("t-a", kmsg.ACLOperationAlterConfigs), allowTopic("t-a", kmsg.ACLOperationDelete), allowTopic("t-a", kmsg.ACLOperationAlter))
		wantErr(t, "IncrementalAlterConfigs", alter(), nil)
		wantErr(t, "DeleteRecords", delRecords(), nil)
		wantErr(t, "CreatePartitions", createParts(), nil)
		wantErr(t, "DeleteTopics", delTopic(), nil)
	})

	t.Run("DescribeAcls and DeleteAcls filters", func(t *testing.T) {
		describe := func(rt kmsg.ACLResourceType, name *string, pattern kmsg.ACLResourcePatternType) []string {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourceName, req.ResourcePatternType = rt, name, pattern
			req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			resp := x.do(t, req).(*kmsg.DescribeACLsResponse)
			wantErr(t, "DescribeAcls", resp.ErrorCode, nil)
			var out []string
			for _, r := range resp.Resources {
				for _, a := range r.ACLs {
					out = append(out, r.ResourcePatternType.String()+":"+r.ResourceName+":"+a.Operation.String()+":"+a.PermissionType.String())
				}
			}
			return out
		}
		got := describe(kmsg.ACLResourceTypeTopic, kmsg.StringPtr("t-b"), kmsg.ACLResourcePatternTypeMatch)
		want := []string{"LITERAL:t-b:WRITE:DENY", "PREFIXED:t-:WRITE:ALLOW", "PREFIXED:t-:CREATE:ALLOW"}
		if !slices.Equal(got, want) {
			t.Fatalf("DescribeAcls MATCH t-b: %v, want %v", got, want)
		}
		if got := describe(kmsg.ACLResourceTypeGroup, nil, kmsg.ACLResourcePatternTypeAny); !slices.Equal(got, []string{"LITERAL:g1:READ:ALLOW"}) {
			t.Fatalf("DescribeAcls groups: %v", got)
		}
		req := kmsg.NewPtrDeleteACLsRequest()
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("t-b"), kmsg.ACLResourcePatternTypeLiteral
		f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeDeny
		bad := kmsg.NewDeleteACLsRequestFilter()
		bad.ResourceType, bad.ResourcePatternType, bad.Operation, bad.PermissionType = kmsg.ACLResourceTypeUnknown, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		req.Filters = append(req.Filters, f, bad)
		resp := x.do(t, req).(*kmsg.DeleteACLsResponse)
		wantErr(t, "DeleteAcls", resp.Results[0].ErrorCode, nil)
		if m := resp.Results[0].MatchingACLs; len(m) != 1 || m[0].ResourceName != "t-b" || m[0].PermissionType != kmsg.ACLPermissionTypeDeny {
			t.Fatalf("DeleteAcls matched %+v", m)
		}
		wantErr(t, "DeleteAcls with resource type UNKNOWN", resp.Results[1].ErrorCode, kerr.InvalidRequest)
		// The DENY is gone: t-b takes writes now.
		if err := produceErr(t, cl, "t-b"); err != nil {
			t.Fatalf("produce after deleting the DENY: %v", err)
		}
	})
}

// TestAuthzAcrossBrokers: an ACL created through one broker applies on
// another within a second; allow.everyone.if.no.acl.found opens resources no
// ACL names; a super user needs no ACL; without an authorizer the ACL APIs
// answer SECURITY_DISABLED.
func TestAuthzAcrossBrokers(t *testing.T) {
	bs := startCluster(t, 4, func(c *Config) {
		switch c.NodeID {
		case 1:
			c.Authorizer = AuthorizerACL
		case 2:
			c.Authorizer, c.AllowEveryoneIfNoACLFound = AuthorizerACL, true
		case 3:
			c.Authorizer, c.SuperUsers = AuthorizerACL, []string{"User:admin", anon}
		}
	})
	seedACLs(t, bs[0], acl(kmsg.ACLResourceTypeCluster, security.ClusterName, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationAlter, kmsg.ACLPermissionTypeAllow),
		acl(kmsg.ACLResourceTypeCluster, security.ClusterName, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationCreate, kmsg.ACLPermissionTypeAllow))
	cl := bs[0].client()
	on := func(id int32) authzClient { return authzClient{t: t, cl: cl, node: id} }
	ct := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "open", 1, 1
	ct.Topics = append(ct.Topics, rt)
	wantErr(t, "CreateTopics with CLUSTER CREATE", on(1).do(t, ct).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, nil)
	waitFor(t, "every broker to know the topic", 10*time.Second, func() bool {
		for _, b := range bs {
			if _, ok := b.srv.cache.Topic("open"); !ok {
				return false
			}
		}
		return true
	})

	if names := metadataNames(on(1).metadata(t)); len(names) != 0 {
		t.Fatalf("broker 1 lists %v without ACLs", names)
	}
	if names := metadataNames(on(2).metadata(t)); !slices.Equal(names, []string{"open"}) {
		t.Fatalf("broker 2 (allow everyone if no ACL) lists %v, want [open]", names)
	}
	if names := metadataNames(on(3).metadata(t)); !slices.Equal(names, []string{"open"}) {
		t.Fatalf("broker 3 (anon a super user) lists %v, want [open]", names)
	}
	if names := metadataNames(on(4).metadata(t)); !slices.Equal(names, []string{"open"}) {
		t.Fatalf("broker 4 (no authorizer) lists %v, want [open]", names)
	}
	codes := on(4).create(t, allowTopic("open", kmsg.ACLOperationRead))
	wantErr(t, "CreateAcls without an authorizer", codes[0], kerr.SecurityDisabled)
	d := kmsg.NewPtrDescribeACLsRequest()
	d.ResourceType, d.ResourcePatternType, d.Operation, d.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	wantErr(t, "DescribeAcls without an authorizer", on(4).do(t, d).(*kmsg.DescribeACLsResponse).ErrorCode, kerr.SecurityDisabled)
	wantErr(t, "DescribeAcls by a super user", on(3).do(t, d).(*kmsg.DescribeACLsResponse).ErrorCode, nil)

	// An ACL for someone else on "open", created through broker 1: broker 2
	// no longer finds the topic without ACLs, so anon loses it there.
	other := allowTopic("open", kmsg.ACLOperationRead)
	other.Principal = "User:other"
	start := time.Now()
	on(1).grant(t, other)
	for names := metadataNames(on(2).metadata(t)); len(names) != 0; names = metadataNames(on(2).metadata(t)) {
		if time.Since(start) > time.Second {
			t.Fatalf("broker 2 still lists %v a second after the ACL was created", names)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And a grant for anon through broker 2 reaches broker 1.
	start = time.Now()
	on(2).grant(t, allowTopic("open", kmsg.ACLOperationDescribe))
	for names := metadataNames(on(1).metadata(t)); !slices.Equal(names, []string{"open"}); names = metadataNames(on(1).metadata(t)) {
		if time.Since(start) > time.Second {
			t.Fatalf("broker 1 lists %v a second after the grant", names)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAuthzConfig: bad authorizer settings are refused when the broker is
// built.
func TestAuthzConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Authorizer: "simple"},
		{Authorizer: AuthorizerACL, SuperUsers: []string{"admin"}},
	} {
		if z, err := newAuthz(cfg, nil, nil); err == nil || z != nil {
			t.Errorf("%+v: accepted", cfg)
		}
	}
}

// TestDenyResponses: deny sets the top-level error code of every request
// kind it answers (a missing field would panic in the handler).
func TestDenyResponses(t *testing.T) {
	for _, req := range []kmsg.Request{
		kmsg.NewPtrJoinGroupRequest(), kmsg.NewPtrSyncGroupRequest(), kmsg.NewPtrHeartbeatRequest(),
		kmsg.NewPtrLeaveGroupRequest(), kmsg.NewPtrOffsetDeleteRequest(), kmsg.NewPtrConsumerGroupHeartbeatRequest(),
		kmsg.NewPtrAddOffsetsToTxnRequest(), kmsg.NewPtrEndTxnRequest(), kmsg.NewPtrDescribeLogDirsRequest(),
		kmsg.NewPtrElectLeadersRequest(), kmsg.NewPtrAlterPartitionAssignmentsRequest(), kmsg.NewPtrListPartitionReassignmentsRequest(),
		kmsg.NewPtrDescribeUserSCRAMCredentialsRequest(),
	} {
		p, err := deny(req, kerr.ClusterAuthorizationFailed.Code)
		if err != nil {
			t.Fatal(err)
		}
		if err := kerr.ErrorForCode(topErrorCode(p.resp)); err != kerr.ClusterAuthorizationFailed {
			t.Errorf("%s: %v", kmsg.NameForKey(req.Key()), err)
		}
	}
}

func topErrorCode(resp kmsg.Response) int16 {
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		return r.ErrorCode
	case *kmsg.SyncGroupResponse:
		return r.ErrorCode
	case *kmsg.HeartbeatResponse:
		return r.ErrorCode
	case *kmsg.LeaveGroupResponse:
		return r.ErrorCode
	case *kmsg.OffsetDeleteResponse:
		return r.ErrorCode
	case *kmsg.ConsumerGroupHeartbeatResponse:
		return r.ErrorCode
	case *kmsg.AddOffsetsToTxnResponse:
		return r.ErrorCode
	case *kmsg.EndTxnResponse:
		return r.ErrorCode
	case *kmsg.DescribeLogDirsResponse:
		return r.ErrorCode
	case *kmsg.ElectLeadersResponse:
		return r.ErrorCode
	case *kmsg.AlterPartitionAssignmentsResponse:
		return r.ErrorCode
	case *kmsg.ListPartitionReassignmentsResponse:
		return r.ErrorCode
	case *kmsg.DescribeUserSCRAMCredentialsResponse:
		return r.ErrorCode
	}
	return -1
}
