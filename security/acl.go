package security

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ACLs as Kafka defines them (KIP-290 for prefixed patterns). The enum types are kmsg's, so
// the broker passes CreateAcls/DescribeAcls/DeleteAcls fields through unchanged.

// Wildcards and fixed names.
const (
	WildcardResource  = "*"             // a LITERAL name matching every resource of its type
	WildcardPrincipal = "User:*"        // an ACL principal matching every principal
	WildcardHost      = "*"             // an ACL host matching every client address
	ClusterName       = "kafka-cluster" // the name of the one CLUSTER resource
)

// ErrInvalidACL reports an ACL binding or filter that Kafka would refuse (INVALID_REQUEST).
var ErrInvalidACL = errors.New("security: invalid ACL")

// ACLBinding is one ACL: a resource pattern and an access control entry.
type ACLBinding struct {
	ResourceType kmsg.ACLResourceType
	ResourceName string
	PatternType  kmsg.ACLResourcePatternType // LITERAL or PREFIXED
	Principal    string                      // "User:alice", or WildcardPrincipal
	Host         string                      // a client IP address, or WildcardHost
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType // ALLOW or DENY
}

// String renders the binding the way Kafka's AclBinding does, for logs and errors.
func (b ACLBinding) String() string {
	return fmt.Sprintf("(pattern=ResourcePattern(resourceType=%s, name=%s, patternType=%s), entry=(principal=%s, host=%s, operation=%s, permissionType=%s))",
		b.ResourceType, b.ResourceName, b.PatternType, b.Principal, b.Host, b.Operation, b.Permission)
}

func concreteResourceType(t kmsg.ACLResourceType) bool {
	return t >= kmsg.ACLResourceTypeTopic && t <= kmsg.ACLResourceTypeUser
}

func concreteOperation(op kmsg.ACLOperation) bool {
	return op >= kmsg.ACLOperationAll && op <= kmsg.ACLOperationDescribeTokens
}

// Validate applies the checks of Kafka's CreateAcls (AclControlManager): a concrete resource
// type, pattern type LITERAL or PREFIXED, a concrete operation and permission, a non-empty
// resource name, a principal of the form Type:Name and a non-empty host.
func (b ACLBinding) Validate() error {
	switch {
	case !concreteResourceType(b.ResourceType):
		return fmt.Errorf("%w: resource type %s", ErrInvalidACL, b.ResourceType)
	case b.PatternType != kmsg.ACLResourcePatternTypeLiteral && b.PatternType != kmsg.ACLResourcePatternTypePrefixed:
		return fmt.Errorf("%w: pattern type %s", ErrInvalidACL, b.PatternType)
	case !concreteOperation(b.Operation):
		return fmt.Errorf("%w: operation %s", ErrInvalidACL, b.Operation)
	case b.Permission != kmsg.ACLPermissionTypeAllow && b.Permission != kmsg.ACLPermissionTypeDeny:
		return fmt.Errorf("%w: permission type %s", ErrInvalidACL, b.Permission)
	case b.ResourceName == "":
		return fmt.Errorf("%w: resource name should not be empty", ErrInvalidACL)
	case b.Host == "":
		return fmt.Errorf("%w: host should not be empty", ErrInvalidACL)
	}
	if _, err := ParsePrincipal(b.Principal); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidACL, err)
	}
	return nil
}

func compareBindings(a, b ACLBinding) int {
	return cmp.Or(
		cmp.Compare(a.ResourceType, b.ResourceType),
		cmp.Compare(a.PatternType, b.PatternType),
		strings.Compare(a.ResourceName, b.ResourceName),
		strings.Compare(a.Principal, b.Principal),
		strings.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation),
		cmp.Compare(a.Permission, b.Permission),
	)
}

// ACLFilter selects bindings for DescribeAcls and DeleteAcls (Kafka's AclBindingFilter):
// ANY (and nil for the strings) matches everything; pattern type MATCH matches the LITERAL,
// wildcard and PREFIXED bindings that would apply to a resource called ResourceName.
type ACLFilter struct {
	ResourceType kmsg.ACLResourceType
	ResourceName *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// AnyACL returns the filter that matches every binding.
func AnyACL() ACLFilter {
	return ACLFilter{
		ResourceType: kmsg.ACLResourceTypeAny,
		PatternType:  kmsg.ACLResourcePatternTypeAny,
		Operation:    kmsg.ACLOperationAny,
		Permission:   kmsg.ACLPermissionTypeAny,
	}
}

// Validate refuses filters with unknown enum values, as Kafka does ("Unknown patternFilter").
func (f ACLFilter) Validate() error {
	switch {
	case f.ResourceType != kmsg.ACLResourceTypeAny && !concreteResourceType(f.ResourceType):
		return fmt.Errorf("%w: filter resource type %s", ErrInvalidACL, f.ResourceType)
	case f.PatternType < kmsg.ACLResourcePatternTypeAny || f.PatternType > kmsg.ACLResourcePatternTypePrefixed:
		return fmt.Errorf("%w: filter pattern type %s", ErrInvalidACL, f.PatternType)
	case f.Operation != kmsg.ACLOperationAny && !concreteOperation(f.Operation):
		return fmt.Errorf("%w: filter operation %s", ErrInvalidACL, f.Operation)
	case f.Permission < kmsg.ACLPermissionTypeAny || f.Permission > kmsg.ACLPermissionTypeAllow:
		return fmt.Errorf("%w: filter permission type %s", ErrInvalidACL, f.Permission)
	}
	return nil
}

// Matches reports whether b is selected by f (Kafka's AclBindingFilter.matches).
func (f ACLFilter) Matches(b ACLBinding) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != b.ResourceType {
		return false
	}
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny, kmsg.ACLResourcePatternTypeMatch:
	default:
		if f.PatternType != b.PatternType {
			return false
		}
	}
	if f.ResourceName != nil {
		name := *f.ResourceName
		if f.PatternType == kmsg.ACLResourcePatternTypeMatch {
			switch b.PatternType {
			case kmsg.ACLResourcePatternTypeLiteral:
				if b.ResourceName != name && b.ResourceName != WildcardResource {
					return false
				}
			case kmsg.ACLResourcePatternTypePrefixed:
				if !strings.HasPrefix(name, b.ResourceName) {
					return false
				}
			default:
				return false
			}
		} else if b.ResourceName != name {
			return false
		}
	}
	switch {
	case f.Principal != nil && *f.Principal != b.Principal,
		f.Host != nil && *f.Host != b.Host,
		f.Operation != kmsg.ACLOperationAny && f.Operation != b.Operation,
		f.Permission != kmsg.ACLPermissionTypeAny && f.Permission != b.Permission:
		return false
	}
	return true
}

// ParseSuperUsers parses Kafka's super.users: principals separated by ';'
// ("User:admin;User:broker"). Empty items are skipped.
func ParseSuperUsers(s string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := ParsePrincipal(item)
		if err != nil {
			return nil, fmt.Errorf("super.users: %w", err)
		}
		out = append(out, p.String())
	}
	return out, nil
}

// AuthorizerConfig configures an Authorizer.
type AuthorizerConfig struct {
	// SuperUsers may do everything, whatever the ACLs say (super.users), as principal
	// strings ("User:admin").
	SuperUsers []string
	// AllowEveryoneIfNoACLFound allows an action on a resource that no ACL at all applies to
	// (allow.everyone.if.no.acl.found; default false).
	AllowEveryoneIfNoACLFound bool
}

// Authorizer decides actions with Kafka's StandardAuthorizer semantics:
//
//   - super users are allowed everything;
//   - the ACLs that apply to a resource are the LITERAL ones with its name, the LITERAL
//     wildcard "*" of its type and the PREFIXED ones whose name is a prefix of its name;
//   - of those, an ACL matches a request when its principal is the request's or User:*, its
//     host is the client's address or "*", and its operation is the requested one or ALL,
//     where an ALLOW (never a DENY) also implies: DESCRIBE by READ, WRITE, DELETE and ALTER,
//     DESCRIBE_CONFIGS by ALTER_CONFIGS;
//   - a matching DENY wins over any ALLOW; a matching ALLOW allows; otherwise the request
//     is denied, unless no ACL applies to the resource at all (for anyone) and
//     AllowEveryoneIfNoACLFound is set.
//
// "IDEMPOTENT_WRITE by WRITE on a topic" is not an implication of this table in Kafka
// either: InitProducerId without a transactional id checks CLUSTER IDEMPOTENT_WRITE or else
// AuthorizeByResourceType(TOPIC, WRITE) (KIP-679); the broker does the same.
//
// Until SetACLs is first called (the ACLs are not loaded), only super users are allowed.
// Safe for concurrent use: the ACLs are an immutable index replaced as a whole, so readers
// never wait.
type Authorizer struct {
	super   map[string]bool
	noACLOK bool
	index   atomic.Pointer[aclIndex]
}

// NewAuthorizer validates cfg and returns an authorizer with no ACLs loaded.
func NewAuthorizer(cfg AuthorizerConfig) (*Authorizer, error) {
	a := &Authorizer{super: map[string]bool{}, noACLOK: cfg.AllowEveryoneIfNoACLFound}
	for _, s := range cfg.SuperUsers {
		p, err := ParsePrincipal(s)
		if err != nil {
			return nil, fmt.Errorf("%w: super user: %w", ErrInvalidConfig, err)
		}
		a.super[p.String()] = true
	}
	return a, nil
}

// IsSuperUser reports whether p is a super user.
func (a *Authorizer) IsSuperUser(p Principal) bool { return a.super[p.String()] }

// Ready reports whether ACLs have been loaded (SetACLs called once).
func (a *Authorizer) Ready() bool { return a.index.Load() != nil }

// SetACLs replaces the ACLs with bindings (typically everything under acls/ in etcd, after
// each change the watch reports). Invalid bindings are left out and reported in the error;
// the valid ones take effect either way. Duplicates count once.
func (a *Authorizer) SetACLs(bindings []ACLBinding) error {
	idx, err := buildIndex(bindings)
	a.index.Store(idx)
	return err
}

// ACLs returns the loaded bindings f selects, sorted (DescribeAcls).
func (a *Authorizer) ACLs(f ACLFilter) []ACLBinding {
	idx := a.index.Load()
	if idx == nil {
		return nil
	}
	var out []ACLBinding
	for _, b := range idx.bindings {
		if f.Matches(b) {
			out = append(out, b)
		}
	}
	return out
}

// Action is one authorization question about a named resource.
type Action struct {
	Operation    kmsg.ACLOperation
	ResourceType kmsg.ACLResourceType
	ResourceName string
}

// Authorize decides whether principal p, connected from host (the client's IP address as
// text), may perform op on the resource of type rt called name (ClusterName for CLUSTER).
// An ANY or unknown operation or resource type is denied.
func (a *Authorizer) Authorize(p Principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	return a.authorize(newRequester(p, host), a.index.Load(), op, rt, name)
}

// AuthorizeActions decides several actions for one request at once: one principal and host,
// one consistent view of the ACLs. The result is parallel to actions.
func (a *Authorizer) AuthorizeActions(p Principal, host string, actions []Action) []bool {
	r, idx := newRequester(p, host), a.index.Load()
	out := make([]bool, len(actions))
	for i, act := range actions {
		out[i] = a.authorize(r, idx, act.Operation, act.ResourceType, act.ResourceName)
	}
	return out
}

// requester is who asks: the principal's string form and the client address.
type requester struct {
	principal string
	host      string
	addr      netip.Addr // invalid if host is not an IP address
}

func newRequester(p Principal, host string) requester {
	addr, _ := netip.ParseAddr(host)
	return requester{principal: p.String(), host: host, addr: addr.Unmap()}
}

func (a *Authorizer) authorize(r requester, idx *aclIndex, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if a.super[r.principal] {
		return true
	}
	if idx == nil || op == kmsg.ACLOperationAll || !concreteOperation(op) || !concreteResourceType(rt) {
		return false
	}
	found, allowed, denied := false, false, false
	idx.applicable(rt, name, func(entries []aclEntry) bool {
		for i := range entries {
			found = true
			switch entries[i].decide(r, op) {
			case decisionDeny:
				denied = true
				return false
			case decisionAllow:
				allowed = true
			}
		}
		return true
	})
	switch {
	case denied:
		return false
	case allowed:
		return true
	}
	return !found && a.noACLOK
}

// AuthorizeByResourceType reports whether p may perform op on at least one resource of type
// rt, with the semantics of Kafka's Authorizer.authorizeByResourceType (KIP-679): allowed if
// a resource named "hardcode" would be (super users, allow.everyone.if.no.acl.found, a
// wildcard ALLOW); otherwise, among p's ACLs for rt with op or ALL (no implications), a
// LITERAL "*" DENY denies, and an ALLOW is enough unless a DENY dominates it: a LITERAL DENY
// of the same name, or a PREFIXED DENY of a prefix of its name.
func (a *Authorizer) AuthorizeByResourceType(p Principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	r, idx := newRequester(p, host), a.index.Load()
	if a.authorize(r, idx, op, rt, "hardcode") {
		return true
	}
	if idx == nil || !concreteOperation(op) || !concreteResourceType(rt) {
		return false
	}
	denyLiteral, denyPrefix := map[string]bool{}, map[string]bool{}
	var allows []ACLBinding
	for _, b := range idx.byType[rt] {
		e := newEntry(b)
		if !e.principalMatches(r) || !e.hostMatches(r) || (b.Operation != op && b.Operation != kmsg.ACLOperationAll) {
			continue
		}
		switch {
		case b.Permission == kmsg.ACLPermissionTypeDeny && b.PatternType == kmsg.ACLResourcePatternTypeLiteral:
			if b.ResourceName == WildcardResource {
				return false
			}
			denyLiteral[b.ResourceName] = true
		case b.Permission == kmsg.ACLPermissionTypeDeny:
			denyPrefix[b.ResourceName] = true
		default:
			allows = append(allows, b)
		}
	}
	for _, b := range allows {
		if b.PatternType == kmsg.ACLResourcePatternTypeLiteral && b.ResourceName == WildcardResource {
			return true
		}
	}
	for _, b := range allows {
		if b.PatternType == kmsg.ACLResourcePatternTypeLiteral && denyLiteral[b.ResourceName] {
			continue
		}
		dominated := false
		for i := 1; i <= len(b.ResourceName) && !dominated; i++ {
			dominated = denyPrefix[b.ResourceName[:i]]
		}
		if !dominated {
			return true
		}
	}
	return false
}

// ResourceOperations returns the operations that apply to a resource type (Kafka's
// AclEntry.supportedOperations).
func ResourceOperations(rt kmsg.ACLResourceType) []kmsg.ACLOperation {
	return slices.Clone(resourceOperations[rt])
}

var resourceOperations = map[kmsg.ACLResourceType][]kmsg.ACLOperation{
	kmsg.ACLResourceTypeTopic: {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
		kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeGroup: {kmsg.ACLOperationRead, kmsg.ACLOperationDelete, kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeCluster: {kmsg.ACLOperationCreate, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs,
		kmsg.ACLOperationIdempotentWrite},
	kmsg.ACLResourceTypeTransactionalId: {kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeDelegationToken: {kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeUser:            {kmsg.ACLOperationCreateTokens, kmsg.ACLOperationDescribeTokens},
}

// AuthorizedOperations returns the KIP-430 bit field of the operations p may perform on the
// resource (bit n set for operation code n), for Metadata, DescribeGroups and
// DescribeCluster when the client asks for authorized operations.
func (a *Authorizer) AuthorizedOperations(p Principal, host string, rt kmsg.ACLResourceType, name string) int32 {
	r, idx := newRequester(p, host), a.index.Load()
	var bits int32
	for _, op := range resourceOperations[rt] {
		if a.authorize(r, idx, op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}

// The index.

type decision int

const (
	decisionNone decision = iota
	decisionAllow
	decisionDeny
)

// aclEntry is one binding as the index keeps it: the access control entry of a resource
// pattern, with the host pre-parsed.
type aclEntry struct {
	principal string
	host      string
	addr      netip.Addr
	op        kmsg.ACLOperation
	allow     bool
}

func newEntry(b ACLBinding) aclEntry {
	addr, _ := netip.ParseAddr(b.Host)
	return aclEntry{principal: b.Principal, host: b.Host, addr: addr.Unmap(), op: b.Operation,
		allow: b.Permission == kmsg.ACLPermissionTypeAllow}
}

func (e *aclEntry) principalMatches(r requester) bool {
	return e.principal == r.principal || e.principal == WildcardPrincipal
}

// hostMatches compares addresses as addresses when both parse (Java's "0:0:0:0:0:0:0:1" is
// Go's "::1"), as strings otherwise.
func (e *aclEntry) hostMatches(r requester) bool {
	if e.host == WildcardHost || e.host == r.host {
		return true
	}
	return e.addr.IsValid() && e.addr == r.addr
}

// decide is Kafka's StandardAuthorizerData.findResult for one ACL.
func (e *aclEntry) decide(r requester, op kmsg.ACLOperation) decision {
	if !e.principalMatches(r) || !e.hostMatches(r) {
		return decisionNone
	}
	if e.op != kmsg.ACLOperationAll && e.op != op {
		if !e.allow {
			return decisionNone
		}
		switch op {
		case kmsg.ACLOperationDescribe:
			switch e.op {
			case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			default:
				return decisionNone
			}
		case kmsg.ACLOperationDescribeConfigs:
			if e.op != kmsg.ACLOperationAlterConfigs {
				return decisionNone
			}
		default:
			return decisionNone
		}
	}
	if e.allow {
		return decisionAllow
	}
	return decisionDeny
}

type resourceKey struct {
	rt   kmsg.ACLResourceType
	name string
}

// aclIndex is an immutable view of the ACLs: literal and prefixed entries by resource, and for
// each resource type the distinct lengths of its prefixes, so finding the PREFIXED ACLs of a
// name is one map lookup per distinct length, not a scan.
type aclIndex struct {
	bindings   []ACLBinding // sorted, without duplicates
	byType     map[kmsg.ACLResourceType][]ACLBinding
	literal    map[resourceKey][]aclEntry
	prefixed   map[resourceKey][]aclEntry
	prefixLens map[kmsg.ACLResourceType][]int // ascending
}

func buildIndex(in []ACLBinding) (*aclIndex, error) {
	idx := &aclIndex{
		byType:     map[kmsg.ACLResourceType][]ACLBinding{},
		literal:    map[resourceKey][]aclEntry{},
		prefixed:   map[resourceKey][]aclEntry{},
		prefixLens: map[kmsg.ACLResourceType][]int{},
	}
	var errs []error
	for _, b := range in {
		if err := b.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b, err))
			continue
		}
		idx.bindings = append(idx.bindings, b)
	}
	slices.SortFunc(idx.bindings, compareBindings)
	idx.bindings = slices.Compact(idx.bindings)
	for _, b := range idx.bindings {
		key := resourceKey{b.ResourceType, b.ResourceName}
		idx.byType[b.ResourceType] = append(idx.byType[b.ResourceType], b)
		if b.PatternType == kmsg.ACLResourcePatternTypeLiteral {
			idx.literal[key] = append(idx.literal[key], newEntry(b))
			continue
		}
		if _, seen := idx.prefixed[key]; !seen {
			idx.prefixLens[b.ResourceType] = append(idx.prefixLens[b.ResourceType], len(b.ResourceName))
		}
		idx.prefixed[key] = append(idx.prefixed[key], newEntry(b))
	}
	for rt, lens := range idx.prefixLens {
		slices.Sort(lens)
		idx.prefixLens[rt] = slices.Compact(lens)
	}
	if len(errs) > 0 {
		return idx, fmt.Errorf("%d invalid ACL bindings left out: %w", len(errs), errors.Join(errs...))
	}
	return idx, nil
}

// applicable calls fn with each group of entries that applies to the resource (literal name,
// literal wildcard, each matching prefix) until fn returns false.
func (idx *aclIndex) applicable(rt kmsg.ACLResourceType, name string, fn func([]aclEntry) bool) {
	if es, ok := idx.literal[resourceKey{rt, name}]; ok && !fn(es) {
		return
	}
	if name != WildcardResource {
		if es, ok := idx.literal[resourceKey{rt, WildcardResource}]; ok && !fn(es) {
			return
		}
	}
	for _, n := range idx.prefixLens[rt] {
		if n > len(name) {
			return
		}
		if es, ok := idx.prefixed[resourceKey{rt, name[:n]}]; ok && !fn(es) {
			return
		}
	}
}
