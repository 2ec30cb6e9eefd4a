package broker

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/meta"
)

// Deps are the broker's collaborators, passed in by cmd/sediment.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Store      *meta.Store
	Cache      *meta.Cache
}

// Server is one broker's Kafka edge. Create it with New, then Run it.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *meta.Store
	cache *meta.Cache

	apis    map[int16]api
	apiList []api // in table order, for ApiVersions
	metrics *metrics
	bodies  bufPool
	parts   *partitionManager
	pids    *producerIDs

	ln       net.Listener
	ready    chan struct{}
	stopping chan struct{} // closed when shutdown begins: long polls return early

	mu    sync.Mutex
	conns map[*conn]struct{}
}

// New validates cfg and opens the local logs this broker hosts.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Cache == nil {
		return nil, errors.New("broker: metadata store and cache are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:      cfg,
		log:      d.Logger,
		store:    d.Store,
		cache:    d.Cache,
		metrics:  newMetrics(d.Registerer),
		ready:    make(chan struct{}),
		stopping: make(chan struct{}),
		conns:    make(map[*conn]struct{}),
	}
	s.apis, s.apiList = buildAPIs(apiTable())
	s.pids = newProducerIDs(d.Store)
	pm, err := newPartitionManager(s)
	if err != nil {
		return nil, err
	}
	s.parts = pm
	return s, nil
}

// Addr is the listener's address once Run has started listening.
func (s *Server) Addr() net.Addr {
	<-s.ready
	return s.ln.Addr()
}

// Ready is closed once the listener accepts connections.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run listens and serves until ctx is cancelled, then shuts down: it stops
// accepting, lets in-flight requests finish (bounded by ShutdownTimeout),
// and syncs and closes every log.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		s.parts.close()
		return fmt.Errorf("broker: listen on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	close(s.ready)
	s.log.Info("kafka listener started", "addr", ln.Addr().String(), "advertised", s.cfg.advertised(), "node_id", s.cfg.NodeID)

	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.parts.run(bg)
	}()

	acceptErr := make(chan error, 1)
	go func() { acceptErr <- s.accept(ln, &wg) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-acceptErr:
	}
	s.log.Info("shutting down: no new connections, finishing in-flight requests")
	close(s.stopping)
	ln.Close()
	if runErr == nil {
		<-acceptErr
	}

	// Stop reading new requests; writers finish what was read.
	s.mu.Lock()
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	drained := make(chan struct{})
	go func() {
		s.waitConns()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.log.Warn("shutdown timeout: closing connections with requests in flight")
		s.mu.Lock()
		for c := range s.conns {
			c.close()
		}
		s.mu.Unlock()
		<-drained
	}
	stopBG()
	wg.Wait()
	if err := s.parts.close(); err != nil {
		s.log.Error("closing logs", "err", err)
		if runErr == nil {
			runErr = err
		}
	}
	s.log.Info("broker stopped")
	return runErr
}

func (s *Server) waitConns() {
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *Server) accept(ln net.Listener, wg *sync.WaitGroup) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Temporary (e.g. out of file descriptors): back off.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("broker: accept: %w", err)
		}
		delay = 0
		c := s.newConn(nc)
		s.mu.Lock()
		select {
		case <-s.stopping:
			s.mu.Unlock()
			nc.Close()
			continue
		default:
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.metrics.connections.Inc()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.metrics.connections.Dec()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *Server) newConn(nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		srv:           s,
		nc:            nc,
		log:           s.log.With("remote", nc.RemoteAddr().String()),
		br:            bufio.NewReaderSize(nc, 64<<10),
		queue:         make(chan *pending, s.cfg.MaxInflightPerConn),
		ctx:           ctx,
		cancel:        cancel,
		fetchSessions: newFetchSessionCache(),
	}
	rand.Read(c.marker[:])
	return c
}

type metrics struct {
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	protocolErrors prometheus.Counter
	connections    prometheus.Gauge
	bytesIn        prometheus.Counter
	bytesOut       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sediment", Subsystem: "broker", Name: "requests_total",
			Help: "Kafka requests decoded, by API.",
		}, []string{"api"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sediment", Subsystem: "broker", Name: "request_duration_seconds",
			Help:    "Time from decoding a request to writing its response, by API.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"api"}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sediment", Subsystem: "broker", Name: "protocol_errors_total",
			Help: "Connections closed for malformed, oversized or unsupported requests.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "sediment", Subsystem: "broker", Name: "connections",
			Help: "Open client connections.",
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sediment", Subsystem: "broker", Name: "produce_bytes_total",
			Help: "Record batch bytes appended by produce requests.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sediment", Subsystem: "broker", Name: "fetch_bytes_total",
			Help: "Record batch bytes served by fetch requests.",
		}),
	}
	reg.MustRegister(m.requests, m.requestSeconds, m.protocolErrors, m.connections, m.bytesIn, m.bytesOut)
	return m
}
