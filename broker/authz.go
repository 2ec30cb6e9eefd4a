package broker

// Authorization: Kafka's ACL authorizer (security.Authorizer) fed by a watch of
// acls/ in etcd, and the helpers every API asks. With Config.Authorizer empty
// there is no authorizer and everything is allowed, as in Kafka without
// authorizer.class.name. The principal is the connection's (conn.Principal)
// and the host its client's IP address (conn.Host).
//
// Brokers talk to each other with the principal of their inter-broker
// listener: replica fetches, WriteTxnMarkers and the verification
// AddPartitionsToTxn need CLUSTER CLUSTER_ACTION, so that principal must be a
// super user (or hold CLUSTER_ACTION), as in Kafka.

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/security"
)

// AuthorizerACL is the value of Config.Authorizer that turns on the ACL
// authorizer.
const AuthorizerACL = "acl"

// authz is the server's authorizer and the watch that loads its ACLs.
type authz struct {
	a      *security.Authorizer
	log    *slog.Logger
	denied *prometheus.CounterVec
	watch  *meta.ACLWatch // set by start
}

// newAuthz returns nil when no authorizer is configured.
func newAuthz(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*authz, error) {
	switch cfg.Authorizer {
	case "":
		return nil, nil
	case AuthorizerACL:
	default:
		return nil, fmt.Errorf("broker: authorizer %q: the only authorizer is %q", cfg.Authorizer, AuthorizerACL)
	}
	a, err := security.NewAuthorizer(security.AuthorizerConfig{SuperUsers: cfg.SuperUsers, AllowEveryoneIfNoACLFound: cfg.AllowEveryoneIfNoACLFound})
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	z := &authz{a: a, log: log.With("component", "authorizer"), denied: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sediment", Subsystem: "broker", Name: "authorization_denials_total",
		Help: "Requests (or parts of requests) the ACL authorizer denied, by resource type.",
	}, []string{"resource_type"})}
	reg.MustRegister(z.denied)
	return z, nil
}

// start loads the ACLs and follows every change to them.
func (z *authz) start(ctx context.Context, store *meta.Store) error {
	if z == nil {
		return nil
	}
	w, err := store.WatchACLs(ctx, func(recs []meta.ACLRecord) {
		bs := make([]security.ACLBinding, len(recs))
		for i, r := range recs {
			bs[i] = bindingOf(r)
		}
		if err := z.a.SetACLs(bs); err != nil {
			z.log.Warn("some stored ACLs are invalid and ignored", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("broker: loading ACLs: %w", err)
	}
	z.watch = w
	return nil
}

func (z *authz) stop() {
	if z != nil && z.watch != nil {
		z.watch.Close()
	}
}

// waitApplied waits (briefly) until this broker's authorizer reflects the ACL
// write that returned rev, so a client that changed ACLs here sees them here.
func (z *authz) waitApplied(ctx context.Context, rev int64) {
	if rev <= 0 || z.watch == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	z.watch.WaitRevision(ctx, rev)
}

func bindingOf(r meta.ACLRecord) security.ACLBinding {
	return security.ACLBinding{
		ResourceType: kmsg.ACLResourceType(r.ResourceType), ResourceName: r.ResourceName,
		PatternType: kmsg.ACLResourcePatternType(r.PatternType), Principal: r.Principal, Host: r.Host,
		Operation: kmsg.ACLOperation(r.Operation), Permission: kmsg.ACLPermissionType(r.Permission),
	}
}

func recordOf(b security.ACLBinding) meta.ACLRecord {
	return meta.ACLRecord{
		ResourceType: int8(b.ResourceType), ResourceName: b.ResourceName, PatternType: int8(b.PatternType),
		Principal: b.Principal, Host: b.Host, Operation: int8(b.Operation), Permission: int8(b.Permission),
	}
}

// authorized reports whether the connection's principal may perform op on the
// resource; a denial is counted and logged (the audit line Kafka's authorizer
// logger writes).
func (c *conn) authorized(op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	z := c.srv.authz
	if z == nil {
		return true
	}
	if z.a.Authorize(c.Principal(), c.Host(), op, rt, name) {
		return true
	}
	z.denied.WithLabelValues(rt.String()).Inc()
	z.log.Info("authorization denied", "principal", c.Principal().String(), "host", c.Host(),
		"operation", op.String(), "resource_type", rt.String(), "resource", name)
	return false
}

// visible is authorized without the audit: for filtering what a listing shows
// (Metadata of all topics, ListGroups, ListTransactions), where Kafka does
// not log denials either.
func (c *conn) visible(op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	z := c.srv.authz
	return z == nil || z.a.Authorize(c.Principal(), c.Host(), op, rt, name)
}

// authorizedCluster asks op on the CLUSTER resource.
func (c *conn) authorizedCluster(op kmsg.ACLOperation) bool {
	return c.authorized(op, kmsg.ACLResourceTypeCluster, security.ClusterName)
}

// authorizedTopic asks op on a topic.
func (c *conn) authorizedTopic(op kmsg.ACLOperation, topic string) bool {
	return c.authorized(op, kmsg.ACLResourceTypeTopic, topic)
}

// authorizedGroup asks op on a consumer group.
func (c *conn) authorizedGroup(op kmsg.ACLOperation, group string) bool {
	return c.authorized(op, kmsg.ACLResourceTypeGroup, group)
}

// authorizedTxnID asks op on a transactional id.
func (c *conn) authorizedTxnID(op kmsg.ACLOperation, id string) bool {
	return c.authorized(op, kmsg.ACLResourceTypeTransactionalId, id)
}

// authorizedCreateTopic is Kafka's rule for creating a topic: CLUSTER CREATE
// or TOPIC CREATE on its name.
func (c *conn) authorizedCreateTopic(topic string) bool {
	return c.visible(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeCluster, security.ClusterName) ||
		c.authorizedTopic(kmsg.ACLOperationCreate, topic)
}

// authorizedIdempotent is InitProducerId without a transactional id: CLUSTER
// IDEMPOTENT_WRITE, or WRITE on at least one topic (KIP-679).
func (c *conn) authorizedIdempotent() bool {
	z := c.srv.authz
	if z == nil || c.visible(kmsg.ACLOperationIdempotentWrite, kmsg.ACLResourceTypeCluster, security.ClusterName) {
		return true
	}
	if z.a.AuthorizeByResourceType(c.Principal(), c.Host(), kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic) {
		return true
	}
	return c.authorizedCluster(kmsg.ACLOperationIdempotentWrite) // counts and logs the denial
}

// authorizedOps answers KIP-430's include_*_authorized_operations: the bit
// field of what the principal may do on the resource. Without an authorizer
// that is every operation the resource type supports, as in Kafka.
func (c *conn) authorizedOps(rt kmsg.ACLResourceType, name string) int32 {
	z := c.srv.authz
	if z == nil {
		var bits int32
		for _, op := range security.ResourceOperations(rt) {
			bits |= 1 << op
		}
		return bits
	}
	return z.a.AuthorizedOperations(c.Principal(), c.Host(), rt, name)
}

// deny answers a request whole with code in its response's top-level
// error_code: for the APIs whose response has one and nothing else that
// must be filled in.
func deny(req kmsg.Request, code int16) (*pending, error) {
	resp := req.ResponseKind()
	reflect.ValueOf(resp).Elem().FieldByName("ErrorCode").SetInt(int64(code))
	return immediate(resp)
}

// topicCheck decides one operation on topics for one request: each topic
// is asked (and a denial logged) once however many partitions name it.
type topicCheck struct {
	c     *conn
	op    kmsg.ACLOperation
	fixed *bool // the decision for every topic (a follower's CLUSTER_ACTION)
	code0 int16 // the code of a fixed denial
	seen  map[string]bool
}

func (c *conn) topicCheck(op kmsg.ACLOperation) *topicCheck {
	return &topicCheck{c: c, op: op, seen: map[string]bool{}}
}

// replicaCheck is the check of a read that may come from a follower
// (replicaID >= 0): CLUSTER_ACTION once for the whole request (a denial is
// followerCode for every partition), else op on each topic.
func (c *conn) replicaCheck(op kmsg.ACLOperation, replicaID int32, followerCode int16) *topicCheck {
	t := c.topicCheck(op)
	if replicaID >= 0 {
		ok := c.authorizedCluster(kmsg.ACLOperationClusterAction)
		t.fixed, t.code0 = &ok, followerCode
	}
	return t
}

func (t *topicCheck) ok(topic string) bool {
	if t.fixed != nil {
		return *t.fixed
	}
	ok, seen := t.seen[topic]
	if !seen {
		ok = t.c.authorizedTopic(t.op, topic)
		t.seen[topic] = ok
	}
	return ok
}

// code is 0 for an allowed topic, TOPIC_AUTHORIZATION_FAILED otherwise.
func (t *topicCheck) code(topic string) int16 {
	switch {
	case t.ok(topic):
		return 0
	case t.fixed != nil:
		return t.code0
	}
	return kerr.TopicAuthorizationFailed.Code
}

// produceCheck is Produce's: WRITE on the transactional id of a
// transactional produce (else every partition fails with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and WRITE on each topic.
func (c *conn) produceCheck(txnID *string) func(topic string) int16 {
	if txnID != nil && !c.authorizedTxnID(kmsg.ACLOperationWrite, *txnID) {
		return func(string) int16 { return kerr.TransactionalIDAuthorizationFailed.Code }
	}
	return c.topicCheck(kmsg.ACLOperationWrite).code
}

// metadataDenied is Metadata's check of a requested topic: without
// DESCRIBE, TOPIC_AUTHORIZATION_FAILED whether or not the topic exists (a
// topic named by an unknown id is left to UNKNOWN_TOPIC_ID); a missing topic
// the request would auto-create needs CLUSTER CREATE or TOPIC CREATE.
func (c *conn) metadataDenied(rt kmsg.MetadataRequestTopic, allowCreate bool) (kmsg.MetadataResponseTopic, bool) {
	st := kmsg.NewMetadataResponseTopic()
	st.Topic, st.TopicID = rt.Topic, rt.TopicID
	st.ErrorCode = kerr.TopicAuthorizationFailed.Code
	if c.srv.authz == nil {
		return st, false
	}
	if rt.Topic == nil {
		name, ok := c.srv.cache.TopicName(meta.TopicID(rt.TopicID))
		return st, ok && !c.authorizedTopic(kmsg.ACLOperationDescribe, name)
	}
	if !c.authorizedTopic(kmsg.ACLOperationDescribe, *rt.Topic) {
		return st, true
	}
	if _, exists := c.srv.cache.PartitionCount(*rt.Topic); !exists && allowCreate && !c.authorizedCreateTopic(*rt.Topic) {
		return st, true
	}
	return st, false
}

// metadataOps fills in KIP-430's authorized operations when the request asks.
func (c *conn) metadataOps(req *kmsg.MetadataRequest, resp *kmsg.MetadataResponse) (*pending, error) {
	if req.IncludeClusterAuthorizedOperations && req.Version >= 8 && req.Version <= 10 {
		resp.AuthorizedOperations = c.clusterOps()
	}
	if req.IncludeTopicAuthorizedOperations && req.Version >= 8 {
		for i := range resp.Topics {
			if t := &resp.Topics[i]; t.ErrorCode != kerr.TopicAuthorizationFailed.Code && t.Topic != nil {
				t.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeTopic, *t.Topic)
			}
		}
	}
	return immediate(resp)
}

// decided asks about every topic now, on the reader goroutine, so a check
// consulted later on the writer goroutine reads only its memo.
func (t *topicCheck) decided(topics func(yield func(string) bool)) *topicCheck {
	for name := range topics {
		t.ok(name)
	}
	return t
}

// deleteTopicDenied is DeleteTopics' check, Kafka's: DELETE on an existing
// topic; a missing one named in the request is TOPIC_AUTHORIZATION_FAILED
// without DESCRIBE (else UNKNOWN_TOPIC_OR_PARTITION); an unknown id is left
// to UNKNOWN_TOPIC_ID.
func (c *conn) deleteTopicDenied(asked *string, t meta.Topic, found bool) bool {
	switch {
	case found:
		return !c.authorizedTopic(kmsg.ACLOperationDelete, t.Name)
	case asked == nil || *asked == "":
		return false
	}
	return !c.authorizedTopic(kmsg.ACLOperationDescribe, *asked)
}

// configDenied is the check of Describe/Alter/IncrementalAlterConfigs: op
// (DESCRIBE_CONFIGS or ALTER_CONFIGS) on the topic, or on the cluster for a
// broker's configs.
func (c *conn) configDenied(op kmsg.ACLOperation, rt kmsg.ConfigResourceType, name string) int16 {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		if !c.authorizedTopic(op, name) {
			return kerr.TopicAuthorizationFailed.Code
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !c.authorizedCluster(op) {
			return kerr.ClusterAuthorizationFailed.Code
		}
	}
	return 0
}

// clusterOps is authorizedOps of the cluster.
func (c *conn) clusterOps() int32 {
	return c.authorizedOps(kmsg.ACLResourceTypeCluster, security.ClusterName)
}
