package broker

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sedimentio/sediment/broker/group"
	"github.com/sedimentio/sediment/broker/partition"
	"github.com/sedimentio/sediment/broker/txn"
	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/security"
	"github.com/sedimentio/sediment/segment/vfs"
	"github.com/sedimentio/sediment/tier"
)

// Deps are the broker's collaborators, passed in by cmd/sediment.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Store      *meta.Store
	Cache      *meta.Cache
	// Tier, when set, is the object store leaders upload sealed segments to.
	Tier tier.ObjectStore
	// FS holds the partitions' logs; nil means the operating system's.
	// Tests pass a vfs.MemFS to simulate power loss.
	FS vfs.FS
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
	parts   *partition.Manager
	groups  *group.Coordinator
	txns    *txn.Coordinator
	markers *markerWriter // the txn coordinator's; holds clients of other brokers
	pids    *producerIDs
	tiering bool   // an object store is configured
	authz   *authz // nil without an authorizer (authz.go)

	ln           net.Listener  // the first listener's
	sec          securityState // listeners, TLS, SASL (listeners.go)
	ready        chan struct{}
	stopping     chan struct{} // closed when shutdown begins: long polls return early
	shuttingDown atomic.Bool

	regMu sync.Mutex
	reg   *meta.Registration // current registration; replaced if the lease is lost

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
		metrics:  newMetrics(d.Registerer, d.Cache),
		ready:    make(chan struct{}),
		stopping: make(chan struct{}),
		conns:    make(map[*conn]struct{}),
	}
	s.apis, s.apiList = buildAPIs(apiTable())
	z, err := newAuthz(cfg, d.Logger, d.Registerer)
	if err != nil {
		return nil, err
	}
	s.authz = z
	if err := s.initSecurity(d.Registerer); err != nil {
		return nil, err
	}
	s.tiering = d.Tier != nil
	s.pids = newProducerIDs(d.Store)
	gc, err := group.New(cfg.Group, group.Deps{Logger: d.Logger.With("component", "group"), Registerer: d.Registerer,
		Partitions: s.offsetsPartitions, Topics: s.topicInfos})
	if err != nil {
		return nil, err
	}
	s.groups = gc
	s.markers = newMarkerWriter(s)
	tc, err := txn.New(cfg.Txn, txn.Deps{Logger: d.Logger.With("component", "txn"), Registerer: d.Registerer,
		ProducerIDs: s.pids, Markers: s.markers, Partitions: s.txnPartitions, TopicPartitions: s.partitionCount})
	if err != nil {
		gc.Close()
		return nil, err
	}
	s.txns = tc
	pm, err := partition.New(cfg.partitionConfig(), partition.Deps{
		Logger: d.Logger, Registerer: d.Registerer, Store: d.Store, Cache: d.Cache, Tier: d.Tier,
		Resolve: s.resolveBroker, ReplConfig: s.replConfig, Settings: s.topicSettings, FS: d.FS, Roles: roleObservers{gc, tc},
	})
	if err != nil {
		s.closeCoordinators()
		return nil, err
	}
	s.parts = pm
	if err := s.authz.start(context.Background(), d.Store); err != nil {
		s.closeCoordinators()
		pm.Close()
		return nil, err
	}
	return s, nil
}

// closeCoordinators stops the coordinators: the transaction coordinator
// first, as its marker senders reach the group coordinator, then the clients
// it sent markers to other brokers with; and the ACL watch.
func (s *Server) closeCoordinators() {
	s.authz.stop()
	s.txns.Close()
	s.markers.Close()
	s.groups.Close()
}

// roleObservers tells several observers of the partition layer of
// leadership changes, in order.
type roleObservers []partition.RoleObserver

func (r roleObservers) Elected(p *partition.Partition, epoch int32) {
	for _, o := range r {
		o.Elected(p, epoch)
	}
}

func (r roleObservers) Resigned(p *partition.Partition) {
	for _, o := range r {
		o.Resigned(p)
	}
}

// txnPartitions is the partition count of __transaction_state, 0 while it
// does not exist.
func (s *Server) txnPartitions() int32 { return s.partitionCount(txn.StateTopic) }

// partitionCount is the partition count of a topic, 0 if it does not exist.
func (s *Server) partitionCount(topic string) int32 {
	n, _ := s.cache.PartitionCount(topic)
	return int32(n)
}

// offsetsPartitions is the partition count of __consumer_offsets, 0 while it
// does not exist.
func (s *Server) offsetsPartitions() int32 {
	n, _ := s.cache.PartitionCount(group.OffsetsTopic)
	return int32(n)
}

// topicInfos lists the topics for the group coordinator's assignors.
func (s *Server) topicInfos() []group.TopicInfo {
	ts := s.cache.Topics()
	out := make([]group.TopicInfo, len(ts))
	for i, t := range ts {
		out[i] = group.TopicInfo{Name: t.Name, ID: t.ID, Partitions: int32(len(t.Partitions))}
	}
	return out
}

// Addr is the listener's address once Run has started listening.
func (s *Server) Addr() net.Addr {
	<-s.ready
	return s.ln.Addr()
}

// TieringStalled reports whether uploads to the object store are failing.
func (s *Server) TieringStalled() bool { return s.parts.TieringStalled() }

// Ready is closed once the listener accepts connections.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run listens and serves until ctx is cancelled, then shuts down: it stops
// accepting, lets in-flight requests finish (bounded by ShutdownTimeout),
// and syncs and closes every log.
func (s *Server) Run(ctx context.Context) error {
	if err := s.openListeners(ctx); err != nil {
		s.closeCoordinators()
		s.parts.Close()
		return err
	}
	s.ln = s.sec.listeners[0].ln
	close(s.ready)
	for _, l := range s.sec.listeners {
		s.log.Info("kafka listener started", "listener", l.cfg.Name, "protocol", l.cfg.Protocol,
			"addr", l.ln.Addr().String(), "advertised", l.advertised(), "node_id", s.cfg.NodeID)
	}

	var bgWG, connWG sync.WaitGroup
	bg, stopBG := context.WithCancel(context.Background())
	bgWG.Go(func() { s.parts.Run(bg) })

	acceptErr := make(chan error, 1)
	go func() { acceptErr <- s.acceptAll(&connWG) }()

	// Membership and the controller campaign, until shutdown begins.
	member, stopMember := context.WithCancel(context.Background())
	var memberWG sync.WaitGroup
	memberWG.Add(1)
	go func() {
		defer memberWG.Done()
		s.stayRegistered(member)
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-acceptErr:
	}
	s.shuttingDown.Store(true)
	s.controlledShutdown()
	stopMember()
	memberWG.Wait()
	s.log.Info("shutting down: no new connections, finishing in-flight requests")
	close(s.stopping)
	s.closeListeners()
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
		connWG.Wait()
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
	bgWG.Wait()
	s.closeCoordinators()
	if err := s.parts.Close(); err != nil {
		s.log.Error("closing logs", "err", err)
		if runErr == nil {
			runErr = err
		}
	}
	s.regMu.Lock()
	if s.reg != nil {
		s.reg.Close()
	}
	s.regMu.Unlock()
	if s.sec.users != nil {
		s.sec.users.Close()
	}
	s.log.Info("broker stopped")
	return runErr
}

// info is this broker's registration.
func (s *Server) info(shuttingDown bool) (meta.BrokerInfo, error) {
	listeners, host, port, err := s.endpoints()
	if err != nil {
		return meta.BrokerInfo{}, err
	}
	return meta.BrokerInfo{
		NodeID: s.cfg.NodeID, Host: host, Port: port, Rack: s.cfg.Rack,
		Listeners:   listeners,
		DirectoryID: s.cfg.DirectoryID, ShuttingDown: shuttingDown,
	}, nil
}

// stayRegistered keeps this broker registered and campaigning for the
// controllership until ctx ends. A lost lease (a broker paused past the
// session timeout) means re-registering: the cluster has already moved
// leadership away and now sees a new broker epoch.
func (s *Server) stayRegistered(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		info, err := s.info(false)
		if err != nil {
			s.log.Error("cannot register", "err", err)
			return
		}
		reg, err := s.store.RegisterBroker(ctx, info, s.cfg.SessionTTL)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("registering broker failed; retrying", "err", err, "backoff", backoff)
			sleepCtx(ctx, backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		s.regMu.Lock()
		s.reg = reg
		s.regMu.Unlock()
		s.log.Info("broker registered", "node_id", s.cfg.NodeID, "broker_epoch", reg.Lease())
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.watchController(cctx)
			}()
			s.runController(cctx, reg)
			wg.Wait()
		}()
		select {
		case <-ctx.Done():
		case <-reg.Done():
			if ctx.Err() == nil {
				s.log.Warn("broker registration lost (session expired); registering again")
			}
		}
		cancel()
		<-done
	}
}

// controlledShutdown asks the controller to move this broker's leaderships
// away (by flagging the registration) and waits until they have moved, or
// until ControlledShutdownTimeout.
func (s *Server) controlledShutdown() {
	s.regMu.Lock()
	reg := s.reg
	s.regMu.Unlock()
	if reg == nil || len(s.cache.Brokers()) < 2 {
		return
	}
	info, err := s.info(true)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ControlledShutdownTimeout)
	defer cancel()
	if err := reg.Update(ctx, info); err != nil {
		s.log.Warn("controlled shutdown: flagging the registration failed", "err", err)
		return
	}
	s.log.Info("controlled shutdown: waiting for leadership to move")
	ch, unsub := s.cache.Subscribe()
	defer unsub()
	for {
		n := s.leadsMovable()
		if n == 0 {
			s.log.Info("controlled shutdown: no leaderships left")
			return
		}
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			s.log.Warn("controlled shutdown timed out; stopping anyway", "leaderships", n)
			return
		}
	}
}

// leadsMovable counts partitions this broker leads that another ISR member
// could take over.
func (s *Server) leadsMovable() int {
	n := 0
	for _, t := range s.cache.Topics() {
		for i := range t.Partitions {
			st, ok := s.cache.Partition(t.ID, int32(i))
			if ok && st.Leader == s.cfg.NodeID && len(st.ISR) > 1 {
				n++
			}
		}
	}
	return n
}

// resolveBroker gives followers the inter-broker address of a broker.
func (s *Server) resolveBroker(id int32) (string, bool) {
	b, ok := s.cache.Broker(id)
	if !ok {
		return "", false
	}
	host, port, ok := endpointOn(b, s.cfg.InterBrokerListener)
	if !ok {
		return "", false
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), true
}

func (s *Server) accept(l *listener, wg *sync.WaitGroup) error {
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Temporary (e.g. out of file descriptors): back off.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-s.stopping:
					t.Stop()
					return nil
				}
				continue
			}
			return fmt.Errorf("broker: accept: %w", err)
		}
		delay = 0
		var batch *batchConn
		if l.tls != nil {
			batch = &batchConn{Conn: nc}
			nc = tls.Server(batch, l.tls)
		}
		c := s.newConn(nc, l)
		c.batch = batch
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

func (s *Server) newConn(nc net.Conn, l *listener) *conn {
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
		principal:     security.Anonymous,
		host:          remoteHost(nc.RemoteAddr()),
		lis:           l,
	}
	if l != nil && l.cfg.sasl() {
		c.sasl = &saslState{}
	}
	rand.Read(c.marker[:])
	return c
}

// remoteHost is the IP address of a peer, without the port.
func remoteHost(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

type metrics struct {
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	protocolErrors prometheus.Counter
	connections    prometheus.Gauge
	bytesIn        prometheus.Counter
	bytesOut       prometheus.Counter
	remoteTimeouts prometheus.Counter
	kafka          *kafkaMetrics // under Kafka's names (metrics_kafka.go)
}

func newMetrics(reg prometheus.Registerer, cache *meta.Cache) *metrics {
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
	m.remoteTimeouts = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "sediment", Subsystem: "broker", Name: "remote_fetch_timeouts_total",
		Help: "Partitions of fetches answered empty because their read from the tier took longer than remote.fetch.max.wait.ms.",
	})
	reg.MustRegister(m.requests, m.requestSeconds, m.protocolErrors, m.connections, m.bytesIn, m.bytesOut, m.remoteTimeouts)
	m.kafka = newKafkaMetrics(cache, reg)
	return m
}
