package deploytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sedimentio/sediment/it/harness"
)

// hostPortRE finds host:port in a setting (listeners, URLs, the etcd
// initial cluster).
var hostPortRE = regexp.MustCompile(`([A-Za-z0-9.-]*):(\d{2,5})\b`)

// podNet stands in for the cluster network on one machine: each pod's
// ports, and the S3 endpoint, become free loopback addresses.
type podNet struct {
	sts     *appsv1.StatefulSet
	s3Host  string            // host:port of the tier endpoint in the manifests
	s3Addr  string            // MinIO's host:port
	addrs   map[string]string // "ORDINAL/PORT" -> 127.0.0.1:free
	pending []string          // keys seen by the first pass
}

// rewrite replaces every host:port of value, as pod ord sees it, by the
// loopback address standing in for it: its own listeners and loopback
// addresses are its own, a pod's DNS name under the headless Service is
// that pod's, the tier endpoint is MinIO. Any other host is an error: the
// test does not know where it would lead.
func (n *podNet) rewrite(value string, ord int64) (string, error) {
	var err error
	out := hostPortRE.ReplaceAllStringFunc(value, func(hp string) string {
		m := hostPortRE.FindStringSubmatch(hp)
		host, port := m[1], m[2]
		target := ord
		switch {
		case hp == n.s3Host:
			return n.s3Addr
		case host == "" || host == "0.0.0.0" || host == "127.0.0.1" || host == "localhost":
		default:
			pod, _, _ := strings.Cut(host, ".")
			o, ok := strings.CutPrefix(pod, n.sts.Name+"-")
			v, perr := strconv.ParseInt(o, 10, 64)
			if !ok || perr != nil || !isPodDNSName(host, pod, n.sts.Spec.ServiceName) {
				err = errors.Join(err, fmt.Errorf("%q: host %s is neither a pod of %s, nor the tier endpoint, nor the pod itself", value, host, n.sts.Name))
				return hp
			}
			target = v
		}
		key := fmt.Sprintf("%d/%s", target, port)
		if a, ok := n.addrs[key]; ok {
			return a
		}
		n.pending = append(n.pending, key)
		return hp
	})
	return out, err
}

// TestManifestsRun runs the StatefulSet's pods as Kubernetes would start
// them, minus the containers: each pod's environment resolved from the
// manifests (ConfigMap, Secret, downward API, $(VAR) expansion), the
// container's arguments, the broker binary, every address replaced by a
// loopback stand-in and the S3 endpoint by a MinIO with the Secret's
// credentials. The pods must pass their readiness and liveness probes,
// form one cluster whose node ids are the pod ordinals and whose brokers
// advertise their own pods, replicate a topic 3 times, upload its sealed
// segments to the bucket, and stop on SIGTERM within the grace period.
func TestManifestsRun(t *testing.T) {
	bin := sedimentBin(t)
	minioBin := os.Getenv("SEDIMENT_MINIO_BIN")
	if minioBin == "" {
		minioBin, _ = filepath.Abs("../../bin/minio")
	}
	if _, err := os.Stat(minioBin); err != nil {
		harness.Missing(t, "MinIO server not found at %s (%v): run `make minio` (or set SEDIMENT_MINIO_BIN)", minioBin, err)
	}
	m, err := loadManifests(os.DirFS(k8sDir))
	if err != nil {
		t.Fatal(err)
	}
	sts := m.statefulSets["sediment"]
	if sts == nil || len(sts.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("want StatefulSet sediment with one container")
	}
	c := &sts.Spec.Template.Spec.Containers[0]
	first, replicas := ordinals(sts)
	base := m.podEnv(sts, c, first)

	tierURL, err := url.Parse(base["SEDIMENT_TIER"])
	if err != nil || tierURL.Scheme != "s3" {
		t.Fatalf("SEDIMENT_TIER %q: want an s3:// URL (%v)", base["SEDIMENT_TIER"], err)
	}
	endpoint, err := url.Parse(tierURL.Query().Get("endpoint"))
	if err != nil || endpoint.Host == "" {
		t.Fatalf("SEDIMENT_TIER %q: want an endpoint=URL (%v)", base["SEDIMENT_TIER"], err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	minio, err := harness.StartMinIO(ctx, harness.MinIOConfig{
		Bin: minioBin, Dir: filepath.Join(dir, "minio"),
		AccessKey: base["AWS_ACCESS_KEY_ID"], SecretKey: base["AWS_SECRET_ACCESS_KEY"],
	})
	if err != nil {
		t.Fatal(err)
	}
	defer minio.Stop(10 * time.Second)
	s3c := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(minio.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(minio.AccessKey, minio.SecretKey, ""),
	})
	bucket := tierURL.Host
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("creating bucket %s: %v", bucket, err)
	}

	// Two passes over every pod's environment: the first finds the
	// addresses, which then get free ports; the second rewrites.
	n := &podNet{sts: sts, s3Host: endpoint.Host, s3Addr: strings.TrimPrefix(minio.Endpoint, "http://"), addrs: map[string]string{}}
	envs := map[int64]map[string]string{}
	for ord := first; ord < first+replicas; ord++ {
		envs[ord] = m.podEnv(sts, c, ord)
		for _, v := range envs[ord] {
			if _, err := n.rewrite(v, ord); err != nil {
				t.Fatal(err)
			}
		}
		for _, port := range c.Ports { // probed even if no setting names it
			n.rewrite(":"+strconv.Itoa(int(port.ContainerPort)), ord)
		}
	}
	free, err := harness.FreeAddrs(len(n.pending))
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range n.pending {
		if _, ok := n.addrs[key]; !ok {
			n.addrs[key] = free[i]
		}
	}
	portAddr := func(ord int64, port intstr.IntOrString) string {
		p, ok := containerPort(&sts.Spec.Template.Spec, port)
		if !ok {
			t.Fatalf("port %s is no container port", port.String())
		}
		return n.addrs[fmt.Sprintf("%d/%d", ord, p)]
	}

	var pods []*harness.Process
	defer func() {
		for _, p := range pods {
			_ = p.Kill()
		}
	}()
	for ord := first; ord < first+replicas; ord++ {
		var env []string
		for k, v := range envs[ord] {
			v, _ = n.rewrite(v, ord)
			if k == "SEDIMENT_DATA_DIR" {
				v = filepath.Join(dir, fmt.Sprintf("pod-%d", ord), "data") // the claimed volume
			}
			env = append(env, k+"="+v)
		}
		tmp := filepath.Join(dir, fmt.Sprintf("pod-%d", ord), "tmp") // the emptyDir at /tmp
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			t.Fatal(err)
		}
		// No AWS configuration of this machine may stand in for the Secret's.
		env = append(env, "TMPDIR="+tmp, "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true")
		args := append(slices.Clone(c.Command[min(1, len(c.Command)):]), c.Args...) // the image's ENTRYPOINT is the binary
		p, err := harness.StartProcess(harness.Command{
			Name: fmt.Sprintf("pod %s-%d", sts.Name, ord), Bin: bin, Args: args, Env: env,
			Log: filepath.Join(dir, fmt.Sprintf("pod-%d.log", ord)),
		})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	logs := func() string {
		var s strings.Builder
		for _, p := range pods {
			s.WriteString(p.LogTail())
		}
		return s.String()
	}

	// The kubelet's probes: readiness, then liveness, on every pod.
	for i, p := range pods {
		ord := first + int64(i)
		for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			u := "http://" + portAddr(ord, pr.HTTPGet.Port) + pr.HTTPGet.Path
			err := harness.WaitFor(ctx, 200*time.Millisecond, pods, func() error { return probe(ctx, u) },
				func(last error) error { return fmt.Errorf("%s: %s: %v", p.Name(), u, last) })
			if err != nil {
				t.Fatalf("%v%s", err, logs())
			}
		}
	}

	// Clients bootstrap from the Service; Metadata names each broker by its
	// ordinal, at its own pod.
	svc := m.services["sediment"]
	if svc == nil {
		t.Fatal("no Service sediment")
	}
	i := slices.IndexFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == "kafka" })
	if i < 0 {
		t.Fatal("Service sediment has no kafka port")
	}
	var seeds []string
	for ord := first; ord < first+replicas; ord++ {
		seeds = append(seeds, portAddr(ord, svc.Spec.Ports[i].TargetPort))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for ord := first; ord < first+replicas; ord++ {
		want := portAddr(ord, intstr.FromString("kafka"))
		i := slices.IndexFunc(md.Brokers, func(b kadm.BrokerDetail) bool { return b.NodeID == int32(ord) })
		if i < 0 || net.JoinHostPort(md.Brokers[i].Host, strconv.Itoa(int(md.Brokers[i].Port))) != want {
			t.Errorf("broker %d: want it at %s (pod %s-%d), metadata lists %v", ord, want, sts.Name, ord, md.Brokers)
		}
	}
	if len(md.Brokers) != int(replicas) || md.Controller < 0 {
		t.Fatalf("metadata: brokers %v, controller %d", md.Brokers, md.Controller)
	}

	// A topic with the ConfigMap's defaults is replicated to every pod; its
	// sealed segments reach the bucket with the Secret's credentials.
	seg := "16384"
	r, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"segment.bytes": &seg}, "orders")
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("creating a topic: %v", err)
	}
	const records = 400
	for i := range records {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%06d-%s", i, strings.Repeat("o", 100))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v%s", i, err, logs())
		}
	}
	td, err := adm.ListTopics(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if p := td["orders"].Partitions[0]; len(p.Replicas) != int(replicas) || len(p.ISR) != int(replicas) {
		t.Errorf("orders-0: replicas %v, ISR %v; want all %d pods", p.Replicas, p.ISR, replicas)
	}
	if err := consumeAll(ctx, seeds, "orders", records); err != nil {
		t.Fatal(err)
	}
	prefix := strings.Trim(tierURL.Path, "/") + "/"
	err = harness.WaitFor(ctx, 500*time.Millisecond, pods, func() error {
		out, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
		if err != nil {
			return err
		}
		for _, o := range out.Contents {
			if strings.HasSuffix(aws.ToString(o.Key), ".log") {
				return nil
			}
		}
		return fmt.Errorf("no segment under s3://%s/%s yet (%d objects)", bucket, prefix, len(out.Contents))
	}, func(last error) error { return last })
	if err != nil {
		t.Fatalf("%v%s", err, logs())
	}

	// SIGTERM, as the kubelet sends it, ends every pod (controlled
	// shutdown) within terminationGracePeriodSeconds.
	grace := time.Duration(*sts.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Go(func() { errs[i] = p.Stop(grace) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// probe is one httpGet probe: 2xx or 3xx passes, as for the kubelet.
func probe(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
