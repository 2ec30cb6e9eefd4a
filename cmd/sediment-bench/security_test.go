package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sedimentio/sediment/it/harness"
	"github.com/sedimentio/sediment/security"
)

func TestSecurityFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{nil, ""},
		{[]string{"--security-records", "1000", "--security-handshake-time", "1s", "--security-handshake-conns", "2"}, ""},
		{[]string{"--security-records", "15"}, "--security-records"}, // fewer than --partitions
		{[]string{"--security-handshake-time", "0s"}, "--security-handshake-time"},
		{[]string{"--security-handshake-conns", "0"}, "--security-handshake-conns"},
		{[]string{"--security-handshake-conns", "100000"}, "--security-handshake-conns"},
	} {
		var f benchFlags
		if err := benchFlagSet(&f).Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := f.validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
}

// scramAgainst runs sc's exchange against the broker's SCRAM server and
// returns the first error.
func scramAgainst(t *testing.T, a *security.Authenticator, sc *scramClient) error {
	t.Helper()
	ex, err := a.Start(scramMechanism)
	if err != nil {
		t.Fatal(err)
	}
	x, msg := sc.start()
	serverFirst, _, err := ex.Next(msg)
	if err != nil {
		return err
	}
	if msg, err = x.final(serverFirst); err != nil {
		return err
	}
	serverFinal, done, err := ex.Next(msg)
	if err != nil {
		return err
	}
	if !done || ex.User() != sc.user {
		t.Fatalf("exchange not done (%v) or user %q", done, ex.User())
	}
	return x.verify(serverFinal)
}

// TestScramClient runs the bench's SCRAM client against the broker's server
// side (package security): the right password authenticates, and its salted
// password is computed once; a wrong one is refused by the server; a server
// that sends a bad signature, or asks too many iterations, is refused by the
// client.
func TestScramClient(t *testing.T) {
	cred, err := security.NewScramCredential(security.ScramSHA512, "right", securityIterations)
	if err != nil {
		t.Fatal(err)
	}
	creds := security.CredentialMap{}
	creds.Set("bench", cred)
	cfg := security.DefaultSASLConfig()
	cfg.Mechanisms = []security.Mechanism{security.ScramSHA512}
	cfg.MaskSecret = []byte("0123456789abcdef0123456789abcdef")
	a, err := security.NewAuthenticator(cfg, creds, nil)
	if err != nil {
		t.Fatal(err)
	}

	sc := newScramClient("bench", "right")
	for range 3 {
		if err := scramAgainst(t, a, sc); err != nil {
			t.Fatalf("right password: %v", err)
		}
	}
	if len(sc.salted) != 1 {
		t.Errorf("%d salted passwords cached after 3 exchanges with one salt, want 1", len(sc.salted))
	}
	if err := scramAgainst(t, a, newScramClient("bench", "wrong")); err == nil {
		t.Error("wrong password accepted")
	}

	x, _ := sc.start()
	if _, err := x.final([]byte("r=" + x.nonce + "srv,s=c2FsdA==,i=4096")); err != nil {
		t.Fatal(err)
	}
	if err := x.verify([]byte("v=AAAA")); err == nil || !strings.Contains(err.Error(), "wrong server signature") {
		t.Errorf("bad server signature: %v", err)
	}
	for _, bad := range []func(nonce string) string{
		func(n string) string { return "r=" + n + "srv,s=c2FsdA==,i=1000000" }, // too many iterations
		func(n string) string { return "r=" + n + "srv,s=c2FsdA==,i=1024" },    // too few
		func(n string) string { return "r=other" + n + ",s=c2FsdA==,i=4096" },  // not the client's nonce
		func(n string) string { return "r=" + n + ",s=c2FsdA==,i=4096" },       // nothing of the server's
		func(n string) string { return "r=" + n + "srv,s=!!,i=4096" },          // salt not base64
		func(n string) string { return "m=ext,r=" + n + "srv,s=c2FsdA==,i=4096" },
		func(string) string { return "garbage" },
	} {
		x, _ := sc.start()
		if _, err := x.final([]byte(bad(x.nonce))); err == nil {
			t.Errorf("server-first %q accepted", bad(x.nonce))
		}
	}
}

// securityRun is a securityResult whose figures are easy to check: 100 MiB
// each way over each listener, and handshakes in 10 s.
func securityRun(plainProduce, saslProduce, saslConsume time.Duration, handshakes int) securityResult {
	p := func(d time.Duration) phaseResult { return phaseResult{records: 102400, bytes: 100 << 20, elapsed: d} }
	leg := func(prod, cons time.Duration) securityLeg {
		return securityLeg{
			prod:    produced{produce: p(prod), p50: 20 * time.Millisecond, p99: 80 * time.Millisecond},
			consume: p(cons), produceCPU: time.Second, consumeCPU: time.Second / 2,
			produceClient: time.Second, consumeClient: time.Second,
		}
	}
	return securityResult{
		plain: leg(plainProduce, time.Second/4),
		sasl:  leg(saslProduce, saslConsume),
		handshakes: handshakeResult{tls: "TLS 1.3, TLS_AES_128_GCM_SHA256, X25519", conns: 8, handshakes: handshakes, elapsed: 10 * time.Second,
			latencies: []time.Duration{time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond}},
		handshakeCPU: time.Duration(handshakes) * time.Millisecond / 2,
		handshakeCl:  time.Duration(handshakes) * time.Millisecond,
		iterations:   securityIterations,
		brokerCPU:    20 * time.Second,
		load:         "1.00 2.00 3.00",
	}
}

func TestPrintSecurityResults(t *testing.T) {
	r := securityRun(time.Second, 1250*time.Millisecond, time.Second/2, 6000)
	var b bytes.Buffer
	printSecurityResults(&b, "results", r, nil)
	out := b.String()
	for _, want := range []string{
		"\nsecurity, results:\n",
		"PLAINTEXT: produce 100.0 MiB/s, 102400 rec/s, p50 20.0 ms, p99 80.0 ms per record; consume (verified) 400.0 MiB/s",
		"SASL_SSL (SCRAM-SHA-512): produce 80.0 MiB/s, 81920 rec/s,",
		"ratio SASL_SSL/PLAINTEXT: produce 0.80x (target >= 0.7x met), consume 0.50x (target >= 0.7x MISSED)\n",
		"handshakes (TCP + full TLS (TLS 1.3, TLS_AES_128_GCM_SHA256, X25519) + ApiVersions + SaslHandshake + SaslAuthenticate x2, SCRAM-SHA-512, 4096 iterations): 600/s (target >= 500/s met), 6000 by 8 connectors in 10.0 s, p50 2.0 ms, p99 10.0 ms each; broker cpu 0.50 ms per handshake (a broker-bound ceiling of 4000/s on 2 cores), bench cpu 1.00 ms per handshake",
		"broker: cpu s 1.0 PLAINTEXT produce (10.0 ms/MiB), 0.5 PLAINTEXT consume (5.0 ms/MiB),",
		"3.0 handshakes, 20.0 over the phase;",
		"load average 1.00 2.00 3.00",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	runs := []securityResult{r, securityRun(time.Second, 2*time.Second, time.Second/4, 4000), securityRun(time.Second, time.Second, time.Second/3, 5000)}
	b.Reset()
	printSecurityResults(&b, "median of 3 runs", securityMedians(runs), runs)
	out = b.String()
	for _, want := range []string{
		"ratio SASL_SSL/PLAINTEXT: produce 0.80x (target >= 0.7x met), consume 0.75x (target >= 0.7x met); per run (produce/consume): 0.80/0.50 0.50/1.00 1.00/0.75",
		": 500/s (target >= 500/s met), 5000 by 8 connectors", // the median count
		"p50 2.0 ms, p99 10.0 ms each",                        // pooled latencies
	} {
		if !strings.Contains(out, want) {
			t.Errorf("medians lack %q:\n%s", want, out)
		}
	}
}

// sedimentBinForTest is $SEDIMENT_BIN (make test sets it), or the broker
// built from this checkout into a temporary directory.
func sedimentBinForTest(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("SEDIMENT_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			t.Fatalf("SEDIMENT_BIN: %v", err)
		}
		return abs
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "sediment")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sediment")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the broker: %v\n%s", err, out)
	}
	return bin
}

// TestSecurityPhaseQuick runs the security phase at a tiny size against a
// real broker, so that the phase cannot rot between benchmark runs: the
// certificates, the listeners, the user made through the Kafka API, both
// workloads with every record verified, and the handshake loop.
func TestSecurityPhaseQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	bin := sedimentBinForTest(t)
	cfg := securityConfig{
		securityFlags: securityFlags{records: 2000, handshakeTime: 500 * time.Millisecond, handshakeConns: 2},
		sedimentBin:   bin,
		partitions:    4,
		maxInflight:   500,
	}
	pool := newValuePool(128)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progressOut bytes.Buffer
	res, err := runSecurity(ctx, cfg, filepath.Join(t.TempDir(), "security"), pool, &progress{out: &progressOut})
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progressOut.String())
	}
	if res.iterations != securityIterations {
		t.Errorf("the user has %d iterations, want %d", res.iterations, securityIterations)
	}
	for _, leg := range []struct {
		name string
		l    securityLeg
	}{{"PLAINTEXT", res.plain}, {"SASL_SSL", res.sasl}} {
		if leg.l.prod.produce.records != 2000 || leg.l.consume.records != 2000 || leg.l.consume.bytes != 2000*128 {
			t.Errorf("%s: produced %d, consumed %d records (%d bytes); want 2000 of 128 B each way", leg.name, leg.l.prod.produce.records, leg.l.consume.records, leg.l.consume.bytes)
		}
		if leg.l.prod.produce.elapsed <= 0 || leg.l.consume.elapsed <= 0 {
			t.Errorf("%s: untimed: %+v", leg.name, leg.l)
		}
	}
	h := res.handshakes
	if !strings.HasPrefix(h.tls, "TLS 1.") {
		t.Errorf("negotiated %q, want TLS 1.2 or 1.3", h.tls)
	}
	if h.handshakes < 1 || len(h.latencies) != h.handshakes || h.elapsed < cfg.handshakeTime {
		t.Errorf("handshakes: %d in %s with %d latencies", h.handshakes, h.elapsed, len(h.latencies))
	}
	if res.handshakeCPU <= 0 || res.brokerCPU < res.handshakeCPU {
		t.Errorf("broker CPU %s over the handshakes, %s over the phase", res.handshakeCPU, res.brokerCPU)
	}
	var b bytes.Buffer
	printSecurityResults(&b, "quick", res, nil)
	if out := b.String(); !strings.Contains(out, "ratio SASL_SSL/PLAINTEXT: produce ") || !strings.Contains(out, "4096 iterations): ") {
		t.Errorf("output:\n%s", out)
	}
	t.Logf("\n%s", b.String())
}
