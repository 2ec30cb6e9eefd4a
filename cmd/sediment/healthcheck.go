package main

// sediment healthcheck: the probe a container runs against its own broker
// (Docker and compose healthchecks exec a command inside the container, and
// the image is FROM scratch: no shell, no curl). It asks the broker's HTTP
// listener for /readyz, or any URL it is given, and exits 0 on a 2xx answer.
// With --wait it keeps asking until an answer is 2xx or the wait is over, so
// a one-shot container can also wait for another service (MinIO's
// /minio/health/ready, say) before the brokers start.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

const healthcheckUsage = `Usage: sediment healthcheck [--timeout D] [--wait D] [URL]

Asks URL (default: this host's broker's /readyz, at the --http address that
SEDIMENT_HTTP gives, else 127.0.0.1:9644) and exits 0 when it answers 2xx, 1
otherwise, saying why on stderr. For container healthchecks:

  healthcheck: {test: ["CMD", "/sediment", "healthcheck"]}

Flags:
`

func healthcheck(ctx context.Context, args []string, s streams) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(s.err)
	timeout := fs.Duration("timeout", 2*time.Second, "bound of each request")
	wait := fs.Duration("wait", 0, "keep asking (every 250ms) until a 2xx answer or this long has passed; 0: ask once")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), healthcheckUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 1 || *timeout <= 0 || *wait < 0 {
		fmt.Fprintf(s.err, "sediment healthcheck: want at most one URL, --timeout > 0 and --wait >= 0\n")
		return exitUsage
	}
	target := fs.Arg(0)
	if target == "" {
		var err error
		if target, err = readyzURL(os.Getenv(envName("http"))); err != nil {
			fmt.Fprintf(s.err, "sediment healthcheck: %v\n", err)
			return exitUsage
		}
	} else if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(s.err, "sediment healthcheck: %q is not an http(s) URL\n", target)
		return exitUsage
	}
	client := &http.Client{Timeout: *timeout}
	deadline := time.Now().Add(*wait)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		err := askHealth(ctx, client, target)
		if err == nil {
			return exitOK
		}
		if !time.Now().Before(deadline) {
			fmt.Fprintf(s.err, "sediment healthcheck: %v\n", err)
			return exitFail
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(s.err, "sediment healthcheck: %v\n", err)
			return exitFail
		case <-tick.C:
		}
	}
}

// readyzURL is the /readyz URL of a broker whose --http is addr (empty: the
// flag's default); a listener on every interface is asked on loopback.
func readyzURL(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:9644"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s=%q: %w", envName("http"), addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// askHealth asks target once: nil for a 2xx answer, else what went wrong with
// the start of the body (the broker's reason, "starting" or "tiering stalled").
func askHealth(ctx context.Context, client *http.Client, target string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", target, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
