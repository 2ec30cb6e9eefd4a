package deploytest

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

const k8sDir = "../k8s"

// dockerImage reads the user deploy/Dockerfile runs the broker as.
func dockerImage(t *testing.T) image {
	t.Helper()
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^USER\s+(\d+):(\d+)\s*$`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("deploy/Dockerfile has no USER uid:gid line")
	}
	uid, _ := strconv.ParseInt(string(m[1]), 10, 64)
	gid, _ := strconv.ParseInt(string(m[2]), 10, 64)
	return image{uid: uid, gid: gid}
}

// TestManifests: deploy/k8s decodes strictly into typed objects, holds the
// objects the deployment needs, and they fit together.
func TestManifests(t *testing.T) {
	m, err := loadManifests(os.DirFS(k8sDir))
	if err != nil {
		t.Fatal(err)
	}
	for what, n := range map[string]int{
		"StatefulSet": len(m.statefulSets), "Service": len(m.services), "ConfigMap": len(m.configMaps),
		"Secret": len(m.secrets), "PodDisruptionBudget": len(m.pdbs), "ServiceMonitor": len(m.serviceMonitors),
	} {
		if n == 0 {
			t.Errorf("deploy/k8s has no %s", what)
		}
	}
	for _, p := range m.check(dockerImage(t)) {
		t.Error(p)
	}
	if s := m.statefulSets["sediment"]; s == nil || s.Spec.Replicas == nil || *s.Spec.Replicas != 3 {
		t.Error("want StatefulSet sediment with 3 replicas")
	}
}

// TestManifestsBroken: each broken variant of deploy/k8s is refused with
// the problem named, so TestManifests's silence means something.
func TestManifestsBroken(t *testing.T) {
	orig := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(k8sDir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(k8sDir + "/" + p)
		orig[p] = &fstest.MapFile{Data: raw}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	img := dockerImage(t)
	for _, tc := range []struct {
		name, file, old, new, want string
	}{
		{"unknown field", "statefulset.yaml", "  replicas: 3\n", "  replicas: 3\n  replica: 3\n", `unknown field "replica"`},
		{"duplicate key", "pdb.yaml", "  maxUnavailable: 1\n", "  maxUnavailable: 1\n  maxUnavailable: 1\n", "already set in map"},
		{"unknown kind", "pdb.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgets", "unexpected object policy/v1, Kind=PodDisruptionBudgets"},
		{"bad quantity", "statefulset.yaml", "storage: 50Gi", "storage: 50 gigs", "quantities must match"},
		{"selector", "statefulset.yaml", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: sediment\n", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: sedimentt\n", "does not match the pod template's labels"},
		{"service selector", "service.yaml", "    app.kubernetes.io/component: broker\n  ports", "    app.kubernetes.io/component: brokers\n  ports", "selects no pod template"},
		{"service port", "service.yaml", "targetPort: http", "targetPort: metrics", "targetPort metrics is no container port"},
		{"headless", "service-headless.yaml", "  clusterIP: None\n", "", "is not headless"},
		{"not ready addresses", "service-headless.yaml", "publishNotReadyAddresses: true", "publishNotReadyAddresses: false", "must publish not-ready addresses"},
		{"serviceName", "statefulset.yaml", "serviceName: sediment-headless", "serviceName: sediment-peers", `serviceName "sediment-peers" is no Service`},
		{"ordered start", "statefulset.yaml", "podManagementPolicy: Parallel", "podManagementPolicy: OrderedReady", "must be Parallel"},
		{"readiness path", "statefulset.yaml", "path: /readyz", "path: /ready", `readinessProbe: path "/ready"`},
		{"liveness port", "statefulset.yaml", "          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: http", "          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: kafka", "livenessProbe: port 9092 is not the http port"},
		{"volume mount", "statefulset.yaml", "            - name: data\n              mountPath: /data", "            - name: datas\n              mountPath: /data", `volumeMount "datas" names no volume`},
		{"data dir", "configmap.yaml", "SEDIMENT_DATA_DIR: /data", "SEDIMENT_DATA_DIR: /var/lib/sediment", `SEDIMENT_DATA_DIR="/var/lib/sediment" is not the mount path`},
		{"http port", "configmap.yaml", "SEDIMENT_HTTP: 0.0.0.0:9644", "SEDIMENT_HTTP: 0.0.0.0:9645", `SEDIMENT_HTTP="0.0.0.0:9645", but the http container port is 9644`},
		{"member missing", "configmap.yaml", ",3=http://sediment-3.sediment-headless:2380", "", "has no member 3 (pod sediment-3)"},
		{"member host", "configmap.yaml", "2=http://sediment-2.sediment-headless:2380", "2=http://sediment-1.sediment-headless:2380", "etcd member 2 at"},
		{"ordinals from 0", "statefulset.yaml", "  ordinals:\n    start: 1\n", "", "has no member 0 (pod sediment-0)"},
		{"node id", "statefulset.yaml", "metadata.labels['apps.kubernetes.io/pod-index']", "metadata.labels['app.kubernetes.io/name']", "SEDIMENT_NODE_ID=\"sediment\""},
		{"env order", "statefulset.yaml", "$(POD_NAMESPACE).svc", "$(NAMESPACE).svc", "refers to $(NAMESPACE), which no earlier variable defines"},
		{"advertise", "statefulset.yaml", "value: $(POD_NAME).sediment-headless", "value: $(POD_NAME).sediment", "SEDIMENT_ADVERTISE host"},
		{"secret ref", "statefulset.yaml", "name: sediment-s3", "name: sediment-s4", `envFrom Secret "sediment-s4" is not here`},
		{"grace period", "statefulset.yaml", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 30", "does not exceed the controlled shutdown timeout 30s"},
		{"scrape port", "statefulset.yaml", `prometheus.io/port: "9644"`, `prometheus.io/port: "9092"`, `annotation prometheus.io/port "9092"`},
		{"user", "statefulset.yaml", "runAsUser: 10001", "runAsUser: 1000", "deploy/Dockerfile's user is 10001:10001"},
		{"pdb", "pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 2", "want at least the etcd quorum 2"},
		{"servicemonitor port", "prometheus-operator/servicemonitor.yaml", "- port: http", "- port: metrics", `endpoint port "metrics" is no port of Service sediment`},
		{"servicemonitor both services", "prometheus-operator/servicemonitor.yaml", "      app.kubernetes.io/component: broker\n  endpoints", "  endpoints", "matches 2 Services"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for k, v := range orig {
				fsys[k] = v
			}
			f := orig[tc.file]
			if f == nil || !bytes.Contains(f.Data, []byte(tc.old)) {
				t.Fatalf("%s does not contain %q: update the test", tc.file, tc.old)
			}
			fsys[tc.file] = &fstest.MapFile{Data: bytes.Replace(f.Data, []byte(tc.old), []byte(tc.new), 1)}
			var got []string
			m, err := loadManifests(fsys)
			if err != nil {
				got = []string{err.Error()}
			} else {
				got = m.check(img)
			}
			for _, g := range got {
				if strings.Contains(g, tc.want) {
					return
				}
			}
			t.Errorf("want a problem containing %q, got %q", tc.want, got)
		})
	}
}

// TestManifestFlags: every SEDIMENT_* variable the manifests set is a
// `sediment serve` flag of the broker binary (an unknown one would be
// ignored silently).
func TestManifestFlags(t *testing.T) {
	out, _ := exec.Command(sedimentBin(t), "serve", "-h").CombinedOutput()
	flags := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	flagRE := regexp.MustCompile(`^\s+-([a-z0-9-]+)`)
	for sc.Scan() {
		if m := flagRE.FindStringSubmatch(sc.Text()); m != nil {
			flags["SEDIMENT_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
		}
	}
	if !flags["SEDIMENT_NODE_ID"] {
		t.Fatalf("`sediment serve -h` lists no --node-id:\n%s", out)
	}
	m, err := loadManifests(os.DirFS(k8sDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.statefulSets {
		for _, c := range s.Spec.Template.Spec.Containers {
			first, _ := ordinals(s)
			for name := range m.podEnv(s, &c, first) {
				if strings.HasPrefix(name, "SEDIMENT_") && !flags[name] {
					t.Errorf("StatefulSet %s container %s sets %s, which is no flag of sediment serve", s.Name, c.Name, name)
				}
			}
		}
	}
}
