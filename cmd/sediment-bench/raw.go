package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// The physical-limit baselines of the sediment target (BENCH.md,
// "Baselines"): what a perfect group-committing broker would cost on the
// work dir's disk, and what loopback TCP carries from those files, measured
// in the same run right before the sediment target.
const (
	// rawChunk is the size of each append of the raw durable writer: the
	// per-partition batch of kgo under the workload, whose default
	// partitioner (UniformBytesPartitioner, KIP-794) moves to another
	// partition after 64 KiB of keyless records.
	rawChunk = 64 << 10
	// rawWindow is the group-commit window: every dirty file gets one
	// fdatasync per window.
	rawWindow = 2 * time.Millisecond
	// rawConns is the loopback reader's connections: kgo fetches from one
	// broker over one connection, as the workload's consumer does.
	rawConns = 1
)

// rawConfig is one raw baseline: bytes of values spread over files in dir.
type rawConfig struct {
	dir      string
	files    int   // the workload's partitions
	bytes    int64 // the workload's value bytes: records x value size
	chunk    int   // bytes per append
	inflight int64 // bytes a writer may have appended but not yet durable
	window   time.Duration
	conns    int // loopback reader connections
}

// rawConfigFor is the baseline matching workload w in dir.
func rawConfigFor(dir string, w workloadConfig) rawConfig {
	return rawConfig{
		dir:      dir,
		files:    w.partitions,
		bytes:    int64(w.records) * int64(w.valueSize),
		chunk:    rawChunk,
		inflight: max(int64(w.maxInflight)*int64(w.valueSize)/int64(w.partitions), rawChunk),
		window:   rawWindow,
		conns:    rawConns,
	}
}

// rawResult is one run of both baselines.
type rawResult struct {
	write phaseResult // bytes appended and made durable, and how long it took
	read  phaseResult // bytes read over loopback, and how long it took
	syncs int64       // fdatasync calls of the writer
}

// runRaw writes then reads cfg's files, removing nothing: dir is the
// caller's.
func runRaw(ctx context.Context, cfg rawConfig) (rawResult, error) {
	var res rawResult
	if cfg.files < 1 || cfg.bytes < 1 || cfg.chunk < 1 || cfg.conns < 1 || cfg.window <= 0 || cfg.inflight < 1 {
		return res, fmt.Errorf("raw baseline: bad config %+v", cfg)
	}
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return res, err
	}
	paths := make([]string, cfg.files)
	for i := range paths {
		paths[i] = filepath.Join(cfg.dir, fmt.Sprintf("raw-%02d.log", i))
	}
	var err error
	if res.write, res.syncs, err = rawWrite(ctx, cfg, paths); err != nil {
		return res, fmt.Errorf("raw durable writer: %w", err)
	}
	if res.read, err = loopbackRead(ctx, cfg.conns, paths, cfg.bytes); err != nil {
		return res, fmt.Errorf("loopback reader: %w", err)
	}
	return res, nil
}

// rawFile is one file of the writer: its writer appends and waits while
// too much is not yet durable; its syncer makes it durable once per window.
type rawFile struct {
	f       *os.File
	mu      sync.Mutex
	cond    *sync.Cond
	written int64 // bytes whose write returned
	durable int64 // bytes covered by an fdatasync that started after their write returned
	err     error
}

// rawWrite appends cfg.bytes over the files with one writer goroutine and
// one syncer goroutine each, and times it from the first append to the last
// byte durable.
func rawWrite(ctx context.Context, cfg rawConfig, paths []string) (phaseResult, int64, error) {
	chunk := make([]byte, cfg.chunk)
	_, _ = rand.NewChaCha8([32]byte{'r', 'a', 'w'}).Read(chunk) // never fails
	files := make([]*rawFile, len(paths))
	for i, p := range paths {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			for _, rf := range files[:i] {
				rf.f.Close()
			}
			return phaseResult{}, 0, err
		}
		files[i] = &rawFile{f: f}
		files[i].cond = sync.NewCond(&files[i].mu)
	}
	defer func() {
		for _, rf := range files {
			rf.f.Close()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A cancelled bench wakes every waiting writer.
	stopWake := context.AfterFunc(ctx, func() {
		for _, rf := range files {
			rf.mu.Lock()
			if rf.err == nil {
				rf.err = ctx.Err()
			}
			rf.cond.Broadcast()
			rf.mu.Unlock()
		}
	})

	var syncs atomic.Int64
	var syncers sync.WaitGroup
	for _, rf := range files {
		syncers.Go(func() { rf.syncLoop(ctx, cfg.window, &syncs) })
	}
	errs := make([]error, len(files))
	var writers sync.WaitGroup
	start := time.Now()
	for i, rf := range files {
		n := cfg.bytes / int64(len(files))
		if int64(i) < cfg.bytes%int64(len(files)) {
			n++
		}
		writers.Go(func() { errs[i] = rf.writeAll(chunk, n, cfg.inflight) })
	}
	writers.Wait()
	elapsed := time.Since(start)
	stopWake() // before cancel: the writers are done, so no error to wake them with
	cancel()
	syncers.Wait()
	if err := errors.Join(errs...); err != nil {
		return phaseResult{}, 0, err
	}
	return phaseResult{records: int((cfg.bytes + int64(cfg.chunk) - 1) / int64(cfg.chunk)), bytes: cfg.bytes, elapsed: elapsed}, syncs.Load(), nil
}

// writeAll appends n bytes in chunks, keeping at most inflight bytes (and
// at least one chunk) not yet durable, and returns once all are durable.
func (rf *rawFile) writeAll(chunk []byte, n, inflight int64) error {
	for off := int64(0); off < n; {
		rf.mu.Lock()
		for rf.err == nil && rf.written-rf.durable >= inflight {
			rf.cond.Wait()
		}
		err := rf.err
		rf.mu.Unlock()
		if err != nil {
			return err
		}
		c := chunk[:min(int64(len(chunk)), n-off)]
		if _, err := rf.f.Write(c); err != nil {
			return err
		}
		off += int64(len(c))
		rf.mu.Lock()
		rf.written = off
		rf.mu.Unlock()
	}
	rf.mu.Lock()
	defer rf.mu.Unlock()
	for rf.err == nil && rf.durable < n {
		rf.cond.Wait()
	}
	return rf.err
}

// syncLoop is the file's group commit: once per window, if bytes were
// appended since the last fdatasync, one fdatasync covers them all.
func (rf *rawFile) syncLoop(ctx context.Context, window time.Duration, syncs *atomic.Int64) {
	t := time.NewTicker(window)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rf.mu.Lock()
		upTo, dirty := rf.written, rf.written > rf.durable
		rf.mu.Unlock()
		if !dirty {
			continue
		}
		err := fdatasync(rf.f)
		syncs.Add(1)
		rf.mu.Lock()
		switch {
		case err == nil:
			rf.durable = upTo
		case rf.err == nil:
			rf.err = fmt.Errorf("fdatasync %s: %w", rf.f.Name(), err)
		}
		rf.cond.Broadcast()
		rf.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// loopbackRead serves the files from a TCP listener on 127.0.0.1 (file i on
// connection i mod conns, each with sendfile, as the broker serves
// plaintext Fetch) to conns client connections that read and discard, and
// times it from the first dial to the last byte read.
func loopbackRead(ctx context.Context, conns int, paths []string, want int64) (phaseResult, error) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return phaseResult{}, err
	}
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	serveErrs := make([]error, conns)
	var servers sync.WaitGroup
	servers.Go(func() {
		for j := range conns {
			c, err := ln.AcceptTCP()
			if err != nil {
				serveErrs[j] = err
				return
			}
			servers.Go(func() { serveErrs[j] = loopbackServe(c, paths, j, conns) })
		}
	})

	var got atomic.Int64
	readErrs := make([]error, conns)
	var readers sync.WaitGroup
	start := time.Now()
	for j := range conns {
		readers.Go(func() {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
			if err != nil {
				readErrs[j] = err
				return
			}
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			buf := make([]byte, 256<<10)
			for {
				n, err := c.Read(buf)
				got.Add(int64(n))
				if err == io.EOF {
					return
				}
				if err != nil {
					readErrs[j] = err
					return
				}
			}
		})
	}
	readers.Wait()
	elapsed := time.Since(start)
	ln.Close() // an accept still waiting (a reader failed to dial) returns
	servers.Wait()
	if err := errors.Join(readErrs...); err != nil {
		return phaseResult{}, err
	}
	if err := errors.Join(serveErrs...); err != nil {
		return phaseResult{}, err
	}
	if got.Load() != want {
		return phaseResult{}, fmt.Errorf("read %d bytes, want %d", got.Load(), want)
	}
	return phaseResult{records: len(paths), bytes: want, elapsed: elapsed}, nil
}

// loopbackServe sends connection j's files over c and closes it. io.Copy from an
// *os.File to a *net.TCPConn is sendfile on Linux.
func loopbackServe(c *net.TCPConn, paths []string, j, conns int) error {
	defer c.Close()
	for i := j; i < len(paths); i += conns {
		f, err := os.Open(paths[i])
		if err != nil {
			return err
		}
		_, err = io.Copy(c, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
