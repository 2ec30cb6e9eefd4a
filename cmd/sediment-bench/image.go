package main

// The image phase (image): how fast the container image starts. Each of
// --image-starts starts runs `docker run -d` of --image with its Kafka and
// HTTP ports published on free loopback ports, and measures from the moment
// the docker command is started to the first /readyz answering 200 and to
// the first ApiVersions answered on the Kafka port (both polled every 10 ms
// from the start), then removes the container. Then as many times it times
// sedimenttc.Run (the testcontainers module: container created, started and
// waited for on /readyz and the Kafka port) to its return, and terminates
// the container. The figures are the medians; the targets (issue 13) are
// 2 s to ready and 3 s for Run.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/sedimentio/sediment/it/sedimenttc"
)

const (
	imageTargetName = "image"
	imageReadyGoal  = 2 * time.Second
	imageRunGoal    = 3 * time.Second
)

type imageFlags struct {
	image  string
	starts int
}

func addImageFlags(fs *flag.FlagSet, f *imageFlags) {
	fs.StringVar(&f.image, "image", "sediment:latest", "image: the Sediment image to start (`make image` builds sediment:latest)")
	fs.IntVar(&f.starts, "image-starts", 5, "image: container starts measured per run, and as many sedimenttc.Run calls; the medians are printed")
}

func (f *imageFlags) validate() error {
	if f.starts < 1 {
		return fmt.Errorf("--image-starts %d: want at least 1", f.starts)
	}
	if f.image == "" {
		return errors.New("--image: empty")
	}
	return nil
}

// imageStart is one measured start.
type imageStart struct {
	ready, apiVersions time.Duration // docker run -> /readyz 200, -> ApiVersions answered
}

type imageResult struct {
	size   int64
	starts []imageStart
	runs   []time.Duration // sedimenttc.Run
}

// checkImage fails early, with the command that helps, when docker or the
// image is missing.
func checkImage(image string) (size int64, err error) {
	out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Size}}", image).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s needs the image %s and a Docker engine (`make image`): %v: %s", imageTargetName, image, err, strings.TrimSpace(string(out)))
	}
	return strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
}

func runImage(ctx context.Context, f imageFlags, p *progress) (res imageResult, err error) {
	if res.size, err = checkImage(f.image); err != nil {
		return res, err
	}
	localDaemonHost()
	tclog.SetDefault(tclog.NewNoopLogger()) // its progress lines would interleave with the bench's
	for i := range f.starts {
		p.set(imageTargetName, fmt.Sprintf("docker run %d/%d", i+1, f.starts))
		s, err := imageStartOnce(ctx, f.image)
		if err != nil {
			return res, err
		}
		res.starts = append(res.starts, s)
	}
	for i := range f.starts {
		p.set(imageTargetName, fmt.Sprintf("sedimenttc.Run %d/%d", i+1, f.starts))
		start := time.Now()
		ctr, err := sedimenttc.Run(ctx, f.image)
		elapsed := time.Since(start)
		if err != nil {
			return res, fmt.Errorf("sedimenttc.Run: %w", err)
		}
		if err := ctr.Terminate(context.WithoutCancel(ctx)); err != nil {
			return res, err
		}
		res.runs = append(res.runs, elapsed)
	}
	return res, nil
}

// imageStartOnce starts one container and times its readiness.
func imageStartOnce(ctx context.Context, image string) (imageStart, error) {
	kafkaPort, err := freePort()
	if err != nil {
		return imageStart{}, err
	}
	httpPort, err := freePort()
	if err != nil {
		return imageStart{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	type mark struct {
		ready bool
		at    time.Duration
	}
	marks := make(chan mark, 2)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "docker", "run", "-d", "--rm",
		"-p", fmt.Sprintf("127.0.0.1:%d:9092", kafkaPort), "-p", fmt.Sprintf("127.0.0.1:%d:9644", httpPort), image)
	var id strings.Builder
	cmd.Stdout, cmd.Stderr = &id, os.Stderr
	if err := cmd.Start(); err != nil {
		return imageStart{}, fmt.Errorf("docker run: %w", err)
	}
	readyURL := fmt.Sprintf("http://127.0.0.1:%d/readyz", httpPort)
	go func() {
		poll(ctx, func(ctx context.Context) bool {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, readyURL, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		marks <- mark{ready: true, at: time.Since(start)}
	}()
	go func() {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(kafkaPort))
		poll(ctx, func(ctx context.Context) bool {
			c, err := dialWire(ctx, addr)
			if err != nil {
				return false
			}
			c.close()
			return true
		})
		marks <- mark{at: time.Since(start)}
	}()
	runErr := cmd.Wait()
	var s imageStart
	for range 2 {
		m := <-marks
		if m.ready {
			s.ready = m.at
		} else {
			s.apiVersions = m.at
		}
	}
	if cid := strings.TrimSpace(id.String()); cid != "" {
		exec.Command("docker", "rm", "-f", "-v", cid).Run() // -v: the /data volume too
	}
	if runErr != nil {
		return s, fmt.Errorf("docker run %s: %w", image, runErr)
	}
	if err := ctx.Err(); err != nil {
		return s, fmt.Errorf("%s not ready within a minute: %w", image, err)
	}
	return s, nil
}

// poll calls ok every 10 ms, each call bounded by 500 ms, until it returns
// true or ctx ends.
func poll(ctx context.Context, ok func(context.Context) bool) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		done := ok(actx)
		cancel()
		if done {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// localDaemonHost points testcontainers at localhost when the Docker engine
// shares this network namespace (a docker0 bridge is here) and nothing set
// TESTCONTAINERS_HOST_OVERRIDE: testcontainers takes a /.dockerenv for
// "inside a container" and would dial the default gateway instead.
func localDaemonHost() {
	if _, set := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); set {
		return
	}
	if _, err := net.InterfaceByName("docker0"); err == nil {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
	}
	if _, set := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !set {
		// Ryuk is an image that would have to be pulled; Terminate cleans up.
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}

func durationMedian(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + m) / 2
	}
	return m
}

func printImageHeader(out io.Writer, f imageFlags) {
	fmt.Fprintf(out, "\n%s: %s started %d times with docker run (ports on free loopback ports), each timed from the docker command to /readyz 200 and to an ApiVersions answer (polled every 10 ms); then %d sedimenttc.Run calls timed to their return\n",
		imageTargetName, f.image, f.starts, f.starts)
}

func printImageResults(out io.Writer, title string, r imageResult) {
	var ready, api []time.Duration
	var each []string
	for _, s := range r.starts {
		ready, api = append(ready, s.ready), append(api, s.apiVersions)
		each = append(each, fmt.Sprintf("%.2f/%.2f", s.ready.Seconds(), s.apiVersions.Seconds()))
	}
	var runs []string
	for _, d := range r.runs {
		runs = append(runs, fmt.Sprintf("%.2f", d.Seconds()))
	}
	mr, ma, mrun := durationMedian(ready), durationMedian(api), durationMedian(r.runs)
	fmt.Fprintf(out, "\n%s, %s: image %.1f MB (%d bytes)\n", imageTargetName, title, float64(r.size)/1e6, r.size)
	fmt.Fprintf(out, "  docker run to /readyz     %.2fs median of %d (target <= %s %s)\n", mr.Seconds(), len(ready), imageReadyGoal, verdict(mr <= imageReadyGoal))
	fmt.Fprintf(out, "  docker run to ApiVersions %.2fs median of %d (target <= %s %s)\n", ma.Seconds(), len(api), imageReadyGoal, verdict(ma <= imageReadyGoal))
	fmt.Fprintf(out, "  each start (readyz/ApiVersions, s): %s\n", strings.Join(each, " "))
	fmt.Fprintf(out, "  sedimenttc.Run            %.2fs median of %d (target <= %s %s); each: %s\n", mrun.Seconds(), len(r.runs), imageRunGoal, verdict(mrun <= imageRunGoal), strings.Join(runs, " "))
}
