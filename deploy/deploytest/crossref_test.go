package deploytest

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// image is what the manifests must agree with in deploy/Dockerfile.
type image struct {
	uid, gid int64 // USER
}

// problems collects what is wrong, every problem at once.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// check cross-references the objects and returns what does not fit.
func (m *manifests) check(img image) problems {
	var p problems
	m.checkNames(&p)
	if len(m.statefulSets) == 0 {
		p.addf("no StatefulSet")
	}
	for _, name := range sortedKeys(m.statefulSets) {
		m.checkStatefulSet(&p, m.statefulSets[name], img)
	}
	for _, name := range sortedKeys(m.services) {
		m.checkService(&p, m.services[name])
	}
	for _, name := range sortedKeys(m.pdbs) {
		m.checkPDB(&p, name)
	}
	for _, name := range sortedKeys(m.serviceMonitors) {
		m.checkServiceMonitor(&p, name)
	}
	return p
}

// checkNames: object names and labels the API server would accept.
func (m *manifests) checkNames(p *problems) {
	var all []metav1.Object
	for _, o := range m.configMaps {
		all = append(all, o)
	}
	for _, o := range m.secrets {
		all = append(all, o)
	}
	for _, o := range m.services {
		all = append(all, o)
		for _, e := range validation.IsDNS1035Label(o.Name) {
			p.addf("Service %s: name: %s", o.Name, e)
		}
	}
	for _, o := range m.statefulSets {
		all = append(all, o)
		p.checkLabels("StatefulSet "+o.Name+" pod template", o.Spec.Template.Labels)
	}
	for _, o := range m.pdbs {
		all = append(all, o)
	}
	for _, o := range m.serviceMonitors {
		all = append(all, o)
	}
	for _, o := range all {
		for _, e := range validation.IsDNS1123Subdomain(o.GetName()) {
			p.addf("%s: name: %s", o.GetName(), e)
		}
		p.checkLabels(o.GetName(), o.GetLabels())
	}
}

func (p *problems) checkLabels(what string, l map[string]string) {
	for k, v := range l {
		for _, e := range validation.IsQualifiedName(k) {
			p.addf("%s: label key %q: %s", what, k, e)
		}
		for _, e := range validation.IsValidLabelValue(v) {
			p.addf("%s: label %s value %q: %s", what, k, v, e)
		}
	}
}

// pod is the pod template of a workload.
type pod struct {
	owner  string
	labels labels.Set
	spec   *corev1.PodSpec
}

func (m *manifests) pods() []pod {
	var out []pod
	for _, name := range sortedKeys(m.statefulSets) {
		s := m.statefulSets[name]
		out = append(out, pod{"StatefulSet " + name, labels.Set(s.Spec.Template.Labels), &s.Spec.Template.Spec})
	}
	return out
}

// selected returns the pod templates sel matches.
func (m *manifests) selected(sel labels.Selector) []pod {
	var out []pod
	for _, pd := range m.pods() {
		if sel.Matches(pd.labels) {
			out = append(out, pd)
		}
	}
	return out
}

// containerPort resolves a port by name or number to a container port of spec.
func containerPort(spec *corev1.PodSpec, port intstr.IntOrString) (int32, bool) {
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			if (port.Type == intstr.String && cp.Name == port.StrVal) || (port.Type == intstr.Int && cp.ContainerPort == port.IntVal) {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

func (m *manifests) checkStatefulSet(p *problems, s *appsv1.StatefulSet, img image) {
	what := "StatefulSet " + s.Name
	tmpl := labels.Set(s.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
	switch {
	case err != nil:
		p.addf("%s: selector: %v", what, err)
	case sel.Empty():
		p.addf("%s: empty selector", what)
	case !sel.Matches(tmpl):
		p.addf("%s: selector %s does not match the pod template's labels %v", what, sel, tmpl)
	}

	// The headless Service gives each pod the stable name peers and clients use.
	svc := m.services[s.Spec.ServiceName]
	switch {
	case svc == nil:
		p.addf("%s: serviceName %q is no Service here", what, s.Spec.ServiceName)
	case svc.Spec.ClusterIP != corev1.ClusterIPNone:
		p.addf("%s: Service %s is not headless (clusterIP: None)", what, svc.Name)
	case !svc.Spec.PublishNotReadyAddresses:
		p.addf("%s: Service %s must publish not-ready addresses: etcd members find each other by name before any is ready", what, svc.Name)
	case !labels.SelectorFromSet(svc.Spec.Selector).Matches(tmpl) || len(svc.Spec.Selector) == 0:
		p.addf("%s: Service %s does not select the pod template", what, svc.Name)
	}
	if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		p.addf("%s: podManagementPolicy %q: must be Parallel, a quorum of etcd members must start together", what, s.Spec.PodManagementPolicy)
	}

	spec := &s.Spec.Template.Spec
	claims := map[string]bool{}
	for _, c := range s.Spec.VolumeClaimTemplates {
		claims[c.Name] = true
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if claims[v.Name] || volumes[v.Name] {
			p.addf("%s: volume %q defined twice", what, v.Name)
		}
		volumes[v.Name] = true
	}
	used := map[string]bool{}
	for _, c := range spec.Containers {
		cw := what + " container " + c.Name
		mounts := map[string]string{} // path -> volume
		for _, vm := range c.VolumeMounts {
			if !volumes[vm.Name] && !claims[vm.Name] {
				p.addf("%s: volumeMount %q names no volume or volumeClaimTemplate", cw, vm.Name)
			}
			if _, dup := mounts[vm.MountPath]; dup {
				p.addf("%s: two mounts at %s", cw, vm.MountPath)
			}
			mounts[vm.MountPath] = vm.Name
			used[vm.Name] = true
		}
		ports := map[string]int32{}
		for _, cp := range c.Ports {
			if _, dup := ports[cp.Name]; dup || cp.Name == "" {
				p.addf("%s: container port %d: names must be present and unique, got %q", cw, cp.ContainerPort, cp.Name)
			}
			ports[cp.Name] = cp.ContainerPort
		}
		p.checkProbe(cw+": readinessProbe", spec, c.ReadinessProbe, "/readyz")
		p.checkProbe(cw+": livenessProbe", spec, c.LivenessProbe, "/healthz")
		if c.StartupProbe != nil {
			p.checkProbe(cw+": startupProbe", spec, c.StartupProbe, "/healthz")
		}
		m.checkEnvRefs(p, cw, s, &c)
		first, n := ordinals(s)
		ids := map[int64]bool{}
		for ord := first; ord < first+n; ord++ {
			env := m.podEnv(s, &c, ord)
			m.checkBrokerEnv(p, fmt.Sprintf("%s (pod %s-%d)", cw, s.Name, ord), s, env, ports, mounts, claims, ord, ids)
		}
		if ann := s.Spec.Template.Annotations; ann["prometheus.io/scrape"] == "true" {
			if want := strconv.Itoa(int(ports["http"])); ann["prometheus.io/port"] != want {
				p.addf("%s: annotation prometheus.io/port %q, the metrics port (http) is %s", what, ann["prometheus.io/port"], want)
			}
			if ann["prometheus.io/path"] != "/metrics" {
				p.addf("%s: annotation prometheus.io/path %q, want /metrics", what, ann["prometheus.io/path"])
			}
		} else {
			p.addf("%s: the pod template has no prometheus.io/scrape: \"true\" annotation", what)
		}
	}
	for v := range volumes {
		if !used[v] {
			p.addf("%s: volume %q is mounted nowhere", what, v)
		}
	}
	for v := range claims {
		if !used[v] {
			p.addf("%s: volumeClaimTemplate %q is mounted nowhere", what, v)
		}
	}

	// The pod runs as the image's user, which owns /data.
	sc := spec.SecurityContext
	switch {
	case sc == nil || sc.RunAsUser == nil || sc.FSGroup == nil:
		p.addf("%s: pod securityContext must set runAsUser and fsGroup (the image's user %d:%d)", what, img.uid, img.gid)
	case *sc.RunAsUser != img.uid || *sc.FSGroup != img.gid:
		p.addf("%s: runAsUser %d, fsGroup %d; deploy/Dockerfile's user is %d:%d", what, *sc.RunAsUser, *sc.FSGroup, img.uid, img.gid)
	}
}

func (p *problems) checkProbe(what string, spec *corev1.PodSpec, pr *corev1.Probe, path string) {
	if pr == nil || pr.HTTPGet == nil {
		p.addf("%s: want an httpGet probe of %s", what, path)
		return
	}
	if pr.HTTPGet.Path != path {
		p.addf("%s: path %q, want %s", what, pr.HTTPGet.Path, path)
	}
	if n, ok := containerPort(spec, pr.HTTPGet.Port); !ok {
		p.addf("%s: port %s is no container port", what, pr.HTTPGet.Port.String())
	} else if n != portOf(spec, "http") {
		p.addf("%s: port %d is not the http port", what, n)
	}
}

func portOf(spec *corev1.PodSpec, name string) int32 {
	n, _ := containerPort(spec, intstr.FromString(name))
	return n
}

func ordinals(s *appsv1.StatefulSet) (first, n int64) {
	n = 1
	if s.Spec.Replicas != nil {
		n = int64(*s.Spec.Replicas)
	}
	if s.Spec.Ordinals != nil {
		first = int64(s.Spec.Ordinals.Start)
	}
	return first, n
}

// varRefRE is Kubernetes's $(VAR) reference in env values, args and command.
var varRefRE = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// fieldPathRE: the downward API's pod fields an env variable can read.
var fieldPathRE = regexp.MustCompile(`^(metadata\.(name|namespace|uid)|spec\.(nodeName|serviceAccountName)|status\.(hostIP|hostIPs|podIP|podIPs)|metadata\.(labels|annotations)\['([^']+)'\])$`)

// controllerLabels are the labels the StatefulSet controller adds to each pod.
var controllerLabels = []string{appsv1.PodIndexLabel, appsv1.StatefulSetPodNameLabel, appsv1.ControllerRevisionHashLabelKey}

// checkEnvRefs: envFrom and valueFrom name objects and keys that exist,
// fieldRefs read fields pods have, and $(VAR) references name variables
// defined before them (Kubernetes leaves others unexpanded).
func (m *manifests) checkEnvRefs(p *problems, what string, s *appsv1.StatefulSet, c *corev1.Container) {
	defined := map[string]bool{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm := m.configMaps[ef.ConfigMapRef.Name]
			if cm == nil {
				p.addf("%s: envFrom ConfigMap %q is not here", what, ef.ConfigMapRef.Name)
				continue
			}
			for k := range cm.Data {
				defined[ef.Prefix+k] = true
			}
		case ef.SecretRef != nil:
			sec := m.secrets[ef.SecretRef.Name]
			if sec == nil {
				p.addf("%s: envFrom Secret %q is not here", what, ef.SecretRef.Name)
				continue
			}
			for k := range secretKeys(sec) {
				defined[ef.Prefix+k] = true
			}
		}
	}
	for _, e := range c.Env {
		for _, ref := range varRefRE.FindAllStringSubmatch(e.Value, -1) {
			if !defined[ref[1]] {
				p.addf("%s: env %s refers to $(%s), which no earlier variable defines", what, e.Name, ref[1])
			}
		}
		if vf := e.ValueFrom; vf != nil {
			switch {
			case vf.FieldRef != nil:
				mm := fieldPathRE.FindStringSubmatch(vf.FieldRef.FieldPath)
				if mm == nil {
					p.addf("%s: env %s: fieldPath %q is not a pod field the downward API gives", what, e.Name, vf.FieldRef.FieldPath)
				} else if mm[5] == "labels" && s.Spec.Template.Labels[mm[6]] == "" && !slices.Contains(controllerLabels, mm[6]) {
					p.addf("%s: env %s reads label %q, which the pods do not have", what, e.Name, mm[6])
				}
			case vf.ConfigMapKeyRef != nil:
				if cm := m.configMaps[vf.ConfigMapKeyRef.Name]; cm == nil {
					p.addf("%s: env %s: ConfigMap %q is not here", what, e.Name, vf.ConfigMapKeyRef.Name)
				} else if _, ok := cm.Data[vf.ConfigMapKeyRef.Key]; !ok {
					p.addf("%s: env %s: ConfigMap %s has no key %q", what, e.Name, cm.Name, vf.ConfigMapKeyRef.Key)
				}
			case vf.SecretKeyRef != nil:
				if sec := m.secrets[vf.SecretKeyRef.Name]; sec == nil {
					p.addf("%s: env %s: Secret %q is not here", what, e.Name, vf.SecretKeyRef.Name)
				} else if !secretKeys(sec)[vf.SecretKeyRef.Key] {
					p.addf("%s: env %s: Secret %s has no key %q", what, e.Name, sec.Name, vf.SecretKeyRef.Key)
				}
			}
		}
		defined[e.Name] = true
	}
	for _, a := range slices.Concat(c.Command, c.Args) {
		for _, ref := range varRefRE.FindAllStringSubmatch(a, -1) {
			if !defined[ref[1]] {
				p.addf("%s: argument %q refers to $(%s), which no variable defines", what, a, ref[1])
			}
		}
	}
}

func secretKeys(s *corev1.Secret) map[string]bool {
	keys := map[string]bool{}
	for k := range s.Data {
		keys[k] = true
	}
	for k := range s.StringData {
		keys[k] = true
	}
	return keys
}

// podEnv is the environment Kubernetes gives container c of the pod with
// ordinal ord (in namespace "ns"): envFrom first, then env in order, with
// $(VAR) expanded and downward-API fields filled in.
func (m *manifests) podEnv(s *appsv1.StatefulSet, c *corev1.Container, ord int64) map[string]string {
	podName := fmt.Sprintf("%s-%d", s.Name, ord)
	podLabels := map[string]string{appsv1.PodIndexLabel: strconv.FormatInt(ord, 10), appsv1.StatefulSetPodNameLabel: podName}
	for k, v := range s.Spec.Template.Labels {
		podLabels[k] = v
	}
	fields := map[string]string{"metadata.name": podName, "metadata.namespace": "ns"}
	for k, v := range podLabels {
		fields["metadata.labels['"+k+"']"] = v
	}
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil && m.configMaps[ef.ConfigMapRef.Name] != nil {
			for k, v := range m.configMaps[ef.ConfigMapRef.Name].Data {
				env[ef.Prefix+k] = v
			}
		}
		if ef.SecretRef != nil && m.secrets[ef.SecretRef.Name] != nil {
			sec := m.secrets[ef.SecretRef.Name]
			for k, v := range sec.Data {
				env[ef.Prefix+k] = string(v)
			}
			for k, v := range sec.StringData {
				env[ef.Prefix+k] = v
			}
		}
	}
	for _, e := range c.Env {
		v := varRefRE.ReplaceAllStringFunc(e.Value, func(ref string) string {
			if val, ok := env[ref[2:len(ref)-1]]; ok {
				return val
			}
			return ref
		})
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			v = fields[e.ValueFrom.FieldRef.FieldPath]
		}
		env[e.Name] = v
	}
	return env
}

// checkBrokerEnv: the broker's settings in one pod agree with the pod's
// ports, volumes, ordinal and the headless Service.
func (m *manifests) checkBrokerEnv(p *problems, what string, s *appsv1.StatefulSet, env map[string]string,
	ports map[string]int32, mounts map[string]string, claims map[string]bool, ord int64, ids map[int64]bool) {
	podName := fmt.Sprintf("%s-%d", s.Name, ord)
	listenPort := func(key, portName string) string {
		host, port, err := net.SplitHostPort(env[key])
		if err != nil {
			p.addf("%s: %s=%q: %v", what, key, env[key], err)
			return ""
		}
		if port != strconv.Itoa(int(ports[portName])) {
			p.addf("%s: %s=%q, but the %s container port is %d", what, key, env[key], portName, ports[portName])
		}
		return host
	}
	listenPort("SEDIMENT_LISTEN", "kafka")
	listenPort("SEDIMENT_HTTP", "http")
	listenPort("SEDIMENT_META_PEER_LISTEN", "etcd-peer")

	// The advertised name is the pod's own under the headless Service.
	if host := listenPort("SEDIMENT_ADVERTISE", "kafka"); host != "" {
		if !isPodDNSName(host, podName, s.Spec.ServiceName) {
			p.addf("%s: SEDIMENT_ADVERTISE host %q is not %s.%s[.NAMESPACE.svc...]", what, host, podName, s.Spec.ServiceName)
		}
	}

	id, err := strconv.ParseInt(env["SEDIMENT_NODE_ID"], 10, 32)
	switch {
	case err != nil:
		p.addf("%s: SEDIMENT_NODE_ID=%q: %v", what, env["SEDIMENT_NODE_ID"], err)
	case id != ord:
		p.addf("%s: SEDIMENT_NODE_ID is %d, not the pod ordinal %d", what, id, ord)
	case ids[id]:
		p.addf("%s: node id %d taken by another pod", what, id)
	}
	ids[id] = true

	// The etcd quorum: one member per pod, named by its node id, at the
	// pod's stable name and the etcd-peer port.
	first, n := ordinals(s)
	members := map[int64]bool{}
	for _, part := range strings.Split(env["SEDIMENT_META_INITIAL_CLUSTER"], ",") {
		name, raw, _ := strings.Cut(part, "=")
		mid, err := strconv.ParseInt(name, 10, 32)
		u, uerr := url.Parse(raw)
		if err != nil || uerr != nil || u.Scheme != "http" {
			p.addf("%s: SEDIMENT_META_INITIAL_CLUSTER entry %q is not ID=http://HOST:PORT", what, part)
			continue
		}
		members[mid] = true
		if want := fmt.Sprintf("%s-%d", s.Name, mid); !isPodDNSName(u.Hostname(), want, s.Spec.ServiceName) {
			p.addf("%s: etcd member %d at %q, not at pod %s under Service %s", what, mid, u.Host, want, s.Spec.ServiceName)
		}
		if u.Port() != strconv.Itoa(int(ports["etcd-peer"])) {
			p.addf("%s: etcd member %d on port %q, the etcd-peer port is %d", what, mid, u.Port(), ports["etcd-peer"])
		}
	}
	for o := first; o < first+n; o++ {
		if !members[o] {
			p.addf("%s: SEDIMENT_META_INITIAL_CLUSTER has no member %d (pod %s-%d)", what, o, s.Name, o)
		}
		delete(members, o)
	}
	for mid := range members {
		p.addf("%s: SEDIMENT_META_INITIAL_CLUSTER names member %d, which is no pod of %d replicas from ordinal %d", what, mid, n, first)
	}

	// Data on the claimed volume, not in the container's file system.
	if dir := env["SEDIMENT_DATA_DIR"]; !claims[mounts[dir]] {
		p.addf("%s: SEDIMENT_DATA_DIR=%q is not the mount path of a volumeClaimTemplate", what, dir)
	}
	if strings.HasPrefix(env["SEDIMENT_TIER"], "s3://") {
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			if env[k] == "" {
				p.addf("%s: SEDIMENT_TIER is s3 but %s is not set", what, k)
			}
		}
	}
	// SIGTERM's controlled shutdown must finish before the kubelet kills.
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if s.Spec.Template.Spec.TerminationGracePeriodSeconds != nil {
		grace = *s.Spec.Template.Spec.TerminationGracePeriodSeconds
	}
	shutdown := 30 * time.Second // the broker's default
	if v, ok := env["SEDIMENT_CONTROLLED_SHUTDOWN_TIMEOUT"]; ok {
		if shutdown, err = time.ParseDuration(v); err != nil {
			p.addf("%s: SEDIMENT_CONTROLLED_SHUTDOWN_TIMEOUT=%q: %v", what, v, err)
		}
	}
	if time.Duration(grace)*time.Second <= shutdown {
		p.addf("%s: terminationGracePeriodSeconds %d does not exceed the controlled shutdown timeout %v", what, grace, shutdown)
	}
}

// isPodDNSName: host is pod's name under the headless Service, short
// (pod.svc) or qualified (pod.svc.namespace.svc...).
func isPodDNSName(host, podName, service string) bool {
	labels := strings.Split(host, ".")
	return len(labels) >= 2 && labels[0] == podName && labels[1] == service &&
		(len(labels) == 2 || (len(labels) >= 4 && labels[3] == "svc"))
}

func (m *manifests) checkService(p *problems, svc *corev1.Service) {
	what := "Service " + svc.Name
	if len(svc.Spec.Selector) == 0 {
		p.addf("%s: no selector", what)
		return
	}
	pods := m.selected(labels.SelectorFromSet(svc.Spec.Selector))
	if len(pods) == 0 {
		p.addf("%s: selector %v selects no pod template", what, svc.Spec.Selector)
	}
	names := map[string]bool{}
	for _, sp := range svc.Spec.Ports {
		if names[sp.Name] {
			p.addf("%s: port name %q twice", what, sp.Name)
		}
		names[sp.Name] = true
		target := sp.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(sp.Port)
		}
		for _, pd := range pods {
			if _, ok := containerPort(pd.spec, target); !ok {
				p.addf("%s: port %s: targetPort %s is no container port of %s", what, sp.Name, target.String(), pd.owner)
			}
		}
	}
}

func (m *manifests) checkPDB(p *problems, name string) {
	pdb := m.pdbs[name]
	what := "PodDisruptionBudget " + name
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || sel.Empty() {
		p.addf("%s: selector missing or invalid (%v)", what, err)
		return
	}
	var covered bool
	for _, sname := range sortedKeys(m.statefulSets) {
		s := m.statefulSets[sname]
		if !sel.Matches(labels.Set(s.Spec.Template.Labels)) {
			continue
		}
		covered = true
		_, n := ordinals(s)
		quorum := n/2 + 1
		var avail int64
		switch {
		case pdb.Spec.MaxUnavailable != nil && pdb.Spec.MinAvailable == nil:
			u, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(n), true)
			if err != nil {
				p.addf("%s: maxUnavailable: %v", what, err)
			}
			avail = n - int64(u)
		case pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable == nil:
			a, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(n), true)
			if err != nil {
				p.addf("%s: minAvailable: %v", what, err)
			}
			avail = int64(a)
		default:
			p.addf("%s: set exactly one of minAvailable and maxUnavailable", what)
			continue
		}
		if avail < quorum || avail >= n {
			p.addf("%s: keeps %d of %s's %d pods: want at least the etcd quorum %d and fewer than all (or no drain could proceed)", what, avail, sname, n, quorum)
		}
	}
	if !covered {
		p.addf("%s: selector %s matches no StatefulSet's pods", what, sel)
	}
}

func (m *manifests) checkServiceMonitor(p *problems, name string) {
	sm := m.serviceMonitors[name]
	what := "ServiceMonitor " + name
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || sel.Empty() {
		p.addf("%s: selector missing or invalid (%v)", what, err)
		return
	}
	var svcs []*corev1.Service
	for _, sname := range sortedKeys(m.services) {
		if sel.Matches(labels.Set(m.services[sname].Labels)) {
			svcs = append(svcs, m.services[sname])
		}
	}
	if len(svcs) != 1 {
		p.addf("%s: selector %s matches %d Services, want exactly one (each more scrapes every broker again)", what, sel, len(svcs))
	}
	if len(sm.Spec.Endpoints) == 0 {
		p.addf("%s: no endpoints", what)
	}
	for _, ep := range sm.Spec.Endpoints {
		if ep.Path != "" && ep.Path != "/metrics" {
			p.addf("%s: endpoint path %q, the broker serves /metrics", what, ep.Path)
		}
		for _, svc := range svcs {
			i := slices.IndexFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == ep.Port })
			if i < 0 {
				p.addf("%s: endpoint port %q is no port of Service %s", what, ep.Port, svc.Name)
				continue
			}
			for _, pd := range m.selected(labels.SelectorFromSet(svc.Spec.Selector)) {
				if n, ok := containerPort(pd.spec, svc.Spec.Ports[i].TargetPort); ok && n != portOf(pd.spec, "http") {
					p.addf("%s: endpoint port %q reaches container port %d of %s, not the metrics port (http)", what, ep.Port, n, pd.owner)
				}
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
