// Package app assembles the whole Lockstep backend from its parts. It is the
// only package (with the CLI in package main) that knows every concrete
// implementation; tests start it on port 0 through package apptest.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/activitylog"
	"github.com/lockstep/lockstep/admin"
	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/eventstoredb"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/idempotency"
	"github.com/lockstep/lockstep/live"
	"github.com/lockstep/lockstep/metrics"
	"github.com/lockstep/lockstep/migrations"
	"github.com/lockstep/lockstep/pgdb"
	"github.com/lockstep/lockstep/projections"
	"github.com/lockstep/lockstep/web"
)

// App is the whole backend in one process. Tests start it on port 0.
type App struct {
	cfg     Config
	log     *slog.Logger
	pool    *pgxpool.Pool
	store   eventstore.Store
	bus     *bus.Bus
	metrics *metrics.Metrics
	auth    *auth.Service
	engine  *gin.Engine
	// authed authenticates a request (Bearer token; ?token= on WebSocket upgrades).
	authed gin.HandlerFunc
	// idem honours Idempotency-Key on commands (after authed).
	idem  gin.HandlerFunc
	group *projections.Group
	// hub holds this process's WebSocket clients; announcer delivers what
	// projectors recorded to every instance's hub.
	hub       *live.Hub
	announcer *live.Announcer
	runners   []*projections.Runner
	// workers run beside the HTTP server until the context ends. Background
	// jobs of the workers role (log writer, analyzer, stuck detector) check
	// a.cfg.Workers when they add themselves.
	workers []func(ctx context.Context) error

	// storeAddr names the event store for readiness and logs; storePing
	// checks it without hanging; storeUp is set once it first answered
	// (projectors and workers start then, and /api answers 503 before).
	storeAddr string
	storePing *pinger
	storeUp   atomic.Bool
	// abandoned: Run's shutdown timed out with loops still running.
	abandoned atomic.Bool

	ln  net.Listener
	srv *http.Server
	// mln and msrv serve /metrics on cfg.MetricsAddr (nil without one).
	mln  net.Listener
	msrv *http.Server
}

// New connects to everything, migrates the database and assembles the API.
// With cfg.Tool (replay, rebuild) the database must already exist and be
// migrated: New creates and migrates nothing. Every error it returns is one
// line saying what is wrong and what to do.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, log: log, metrics: metrics.New()}
	if err := a.connect(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) connect(ctx context.Context) (err error) {
	cfg, log := a.cfg, a.log
	if cfg.Tool {
		a.pool, err = pgdb.OpenExisting(ctx, cfg.DatabaseURL)
	} else {
		a.pool, err = pgdb.Open(ctx, cfg.DatabaseURL)
	}
	if err != nil {
		return databaseError(cfg.DatabaseURL, cfg.Tool, err)
	}
	if cfg.Tool {
		current, target, err := migrations.Versions(ctx, a.pool)
		if err != nil || current < target {
			return fmt.Errorf("the database %s is not migrated to this version of lockstep (schema %d of %d): run `lockstep migrate` first", describeDatabase(cfg.DatabaseURL), max(current, 0), target)
		}
	} else {
		n, err := migrations.Up(ctx, a.pool, log)
		if err != nil {
			return fmt.Errorf("migrate the database %s: %w", describeDatabase(cfg.DatabaseURL), err)
		}
		log.Info("database ready", "migrations_applied", n)
	}

	switch cfg.EventStore {
	case "eventstoredb":
		es, err := eventstoredb.New(eventstoredb.Config{URL: cfg.EventStoreURL, Logger: log})
		if err != nil {
			return fmt.Errorf("EVENTSTORE_URL: %w: give a connection string like esdb://127.0.0.1:2113?tls=false", err)
		}
		a.storeAddr = "EventStoreDB at " + hostOf(cfg.EventStoreURL)
		a.store = a.metrics.InstrumentStore(es)
	default:
		a.storeAddr = "PostgreSQL " + describeDatabase(cfg.DatabaseURL)
		a.store = a.metrics.InstrumentStore(postgres.New(a.pool, postgres.Config{Logger: log}))
		a.storeUp.Store(true) // the pool answered a moment ago
	}
	a.storePing = newPinger(a.store.Ping, 3*time.Second)

	a.bus, err = bus.New(ctx, bus.Config{Backend: cfg.Bus, Pool: a.pool, KafkaBrokers: cfg.KafkaBrokers, Logger: log})
	if err != nil {
		if cfg.Bus == bus.BackendKafka {
			return fmt.Errorf("cannot reach Kafka at %s (%v): start it or fix KAFKA_BROKERS", strings.Join(cfg.KafkaBrokers, ","), rootCause(err))
		}
		return fmt.Errorf("bus: %w", err)
	}
	a.metrics.RegisterBus(a.bus)

	tokens, err := auth.NewTokens(auth.Config{Secret: cfg.secret(log), AccessTTL: cfg.AccessTTL, RefreshTTL: cfg.RefreshTTL})
	if err != nil {
		return fmt.Errorf("JWT_SECRET: %w", err)
	}
	a.auth = auth.NewService(a.pool, tokens, log, time.Now, auth.WithLoginLimits(auth.LoginLimits{
		PerEmail: cfg.LoginFailuresPerEmail, PerAddress: cfg.LoginFailuresPerAddr, Window: cfg.LoginWindow,
	}))
	if cfg.AdminEmail != "" && !cfg.Tool {
		if err := a.auth.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword); err != nil {
			return fmt.Errorf("ADMIN_EMAIL/ADMIN_PASSWORD: %w: fix them, or unset both", err)
		}
		log.Info("admin account ensured", "email", cfg.AdminEmail)
	}

	a.authed = tokens.Authenticate()
	a.idem = idempotency.Middleware(a.pool, log, func(c *gin.Context) int64 { return auth.ActorFrom(c).UserID })
	a.group = projections.NewGroup(a.pool, cfg.Projectors)
	a.hub = live.NewHub(live.HubConfig{
		Pool:          a.pool,
		Logger:        log,
		OnConnections: func(kind string, delta int) { a.metrics.WSConnections.WithLabelValues(kind).Add(float64(delta)) },
		OnDropped:     func(kind string) { a.metrics.WSDropped.WithLabelValues(kind).Inc() },
		Account:       live.CheckAccount(a.pool, tokens.Verify),
	})
	a.announcer = live.NewAnnouncer(a.pool, a.bus, a.hub, log)
	if cfg.API {
		a.workers = append(a.workers, func(ctx context.Context) error { return live.Relay(ctx, a.bus, a.hub, log) })
		// Sockets follow the account on every instance (role change, removal).
		a.workers = append(a.workers, func(ctx context.Context) error {
			return live.ListenAccounts(ctx, a.pool, a.hub, func(ch auth.AccountChange) {
				if ch.Removed {
					tokens.RevokeUser(ch.UserID)
				}
			}, log)
		})
	}
	a.engine = a.routes()
	if cfg.Workers {
		a.workers = append(a.workers, a.housekeeping)
	}
	// Each feature wires its commands, queries, projectors and workers in a
	// file of its own (wire_*.go).
	for _, wire := range []func(context.Context) error{a.wireLectures, a.wireSessions, a.wireLogs, a.wireHelp, a.wireDashboards, a.wireAnalytics, a.wireConsole, a.wireDocs} {
		if err := wire(ctx); err != nil {
			return err
		}
	}
	a.metrics.RegisterProjections(a.store, a.runners)
	return nil
}

func (a *App) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true
	// A known path with another method answers 405 with Allow (web.NoMethod).
	r.HandleMethodNotAllowed = true
	// Client addresses (the login rate limit counts them) come from the TCP
	// peer, never from an X-Forwarded-For anyone could set.
	_ = r.SetTrustedProxies(nil)
	bodyLimit := web.BodyLimit(1 << 20)
	r.Use(web.Recovery(a.log), web.Logger(a.log), a.metrics.Middleware(), func(c *gin.Context) {
		if c.Request.URL.Path == activitylog.BatchPath {
			return // that route applies activitylog.BatchBodyLimit (5 MiB) itself
		}
		bodyLimit(c)
	}, a.storeGate, web.LinkBaseMiddleware(a.cfg.PublicURL, a.cfg.fallbackURL()))
	if !a.cfg.RateLimitsOff {
		r.Use(a.rateLimits().Middleware())
	}
	r.NoRoute(web.NoRoute)
	r.NoMethod(web.NoMethod)

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", a.ready)
	// /metrics is served on its own listener (METRICS_ADDR), never here.

	a.auth.Routes(r)
	a.auth.AdminRoutes(r)
	(&admin.Projections{Group: a.group, Store: a.store, Logger: a.log}).Routes(r, a.authed)
	return r
}

// rateLimits are the per-user limits on what a client can flood: logs,
// help requests (and feedback), session commands and progress. Counted per
// instance; RATE_LIMITS=off turns them off.
func (a *App) rateLimits() *web.RateLimits {
	tokens := a.auth.Tokens()
	return &web.RateLimits{
		Class: rateClass,
		User: func(c *gin.Context) (int64, bool) {
			tok, ok := auth.RequestToken(c.Request)
			if !ok {
				return 0, false
			}
			actor, err := tokens.Verify(tok)
			return actor.UserID, err == nil
		},
		PerMinute: map[string]int{
			"logs":     cmp.Or(a.cfg.RateLogsPerMin, DefaultRateLogs),
			"help":     cmp.Or(a.cfg.RateHelpPerMin, DefaultRateHelp),
			"commands": cmp.Or(a.cfg.RateCommandsPerMin, DefaultRateCommands),
		},
	}
}

// rateClass is the limit class of a request (by its route), "" for none.
func rateClass(c *gin.Context) string {
	if c.Request.Method != http.MethodPost {
		return ""
	}
	switch p := c.FullPath(); {
	case p == activitylog.ActivityPath || p == activitylog.BatchPath:
		return "logs"
	case p == "/api/help/request" || p == "/api/help/feedback":
		return "help"
	case strings.HasPrefix(p, "/api/sessions/") || p == "/api/lectures/:lecture_id/sessions" || p == "/api/progress/update":
		return "commands"
	}
	return ""
}

// addProjector runs a projector in this deployment.
func (a *App) addProjector(p projections.Projector) *projections.Runner {
	r := projections.NewRunner(projections.Config{Store: a.store, Pool: a.pool, Projector: p, Logger: a.log})
	a.runners = append(a.runners, r)
	a.group.Add(r)
	return r
}

// ready answers 200 only when the database, the event store and the bus answer.
func (a *App) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{}
	failed := false
	check := func(name string, err error) {
		if err != nil {
			checks[name] = err.Error()
			failed = true
			return
		}
		checks[name] = "ok"
	}
	check("database", named("PostgreSQL "+describeDatabase(a.cfg.DatabaseURL), a.pool.Ping(ctx)))
	check("event_store", named(a.storeAddr, a.storePing.Ping(ctx)))
	check("bus", named("bus "+a.busAddr(), a.bus.Ping(ctx)))
	if failed {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "checks": checks})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "checks": checks})
}

func named(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s does not answer: %w", what, err)
}

func (a *App) busAddr() string {
	if a.cfg.Bus == bus.BackendKafka {
		return "Kafka at " + strings.Join(a.cfg.KafkaBrokers, ",")
	}
	return a.cfg.Bus
}

// storeGate answers API requests with 503 until the event store has answered
// once (the ops endpoints stay open).
func (a *App) storeGate(c *gin.Context) {
	if a.storeUp.Load() || !strings.HasPrefix(c.Request.URL.Path, "/api/") {
		return
	}
	web.Error(c, &domain.Error{Code: domain.CodeUnavailable, Message: a.storeAddr + " does not answer yet; retry later"})
}

// waitForStore returns once the event store answers (true), logging while
// it does not, or when ctx ends (false).
func (a *App) waitForStore(ctx context.Context) bool {
	lastLog := time.Time{}
	for {
		err := a.storePing.Ping(ctx)
		if err == nil {
			if !lastLog.IsZero() {
				a.log.Info("event store answers; starting projectors and workers", "event_store", a.storeAddr)
			}
			a.storeUp.Store(true)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if time.Since(lastLog) > 30*time.Second {
			a.log.Warn("event store does not answer; waiting for it (the API answers 503 meanwhile)",
				"event_store", a.storeAddr, "error", err.Error())
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(2 * time.Second):
		}
	}
}

// Listen binds the HTTP address; Run calls it when not done before.
func (a *App) Listen() error {
	if a.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.HTTPAddr, err)
	}
	if a.cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", a.cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen for /metrics on %s: %w (another instance on this machine? give each its own METRICS_ADDR, or METRICS_ADDR=off)", a.cfg.MetricsAddr, err)
		}
		a.mln = mln
	}
	a.ln = ln
	return nil
}

// Addr is the bound address (after Listen).
func (a *App) Addr() string { return a.ln.Addr().String() }

// MetricsAddr is the bound address of the /metrics listener (after
// Listen), or "" when there is none.
func (a *App) MetricsAddr() string {
	if a.mln == nil {
		return ""
	}
	return a.mln.Addr().String()
}

// Run serves until ctx is done, then shuts down gracefully: it stops
// accepting, drains in-flight requests, and stops projectors and workers at a
// batch boundary. The whole shutdown takes at most cfg.ShutdownTimeout: a
// backend that does not answer cannot hold the process (what did not stop in
// time is logged and left behind).
func (a *App) Run(ctx context.Context) error {
	if err := a.Listen(); err != nil {
		return err
	}
	// One check before serving, so a store that answers is never reported
	// unavailable to the first requests (bounded by the pinger's timeout).
	if !a.storeUp.Load() && a.storePing.Ping(ctx) == nil {
		a.storeUp.Store(true)
	}
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	var wg sync.WaitGroup
	var running sync.Map // loop name → struct{} while it runs
	goLoop := func(name string, run func(context.Context) error) {
		running.Store(name, struct{}{})
		wg.Go(func() {
			defer running.Delete(name)
			a.supervise(bg, name, run)
		})
	}
	wg.Go(func() {
		if !a.waitForStore(bg) {
			return
		}
		if a.cfg.Projectors {
			for _, r := range a.runners {
				goLoop("projector "+r.Name(), r.Run)
			}
		}
		for i, w := range a.workers {
			goLoop(fmt.Sprintf("worker %d", i), w)
		}
	})

	a.srv = &http.Server{
		Handler:           a.engine,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cmp.Or(a.cfg.HTTPReadTimeout, DefaultHTTPReadTimeout),
		IdleTimeout:       cmp.Or(a.cfg.HTTPIdleTimeout, DefaultHTTPIdleTimeout),
		ErrorLog:          slog.NewLogLogger(a.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	if !a.cfg.API {
		a.srv.Handler = a.opsOnly()
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- a.srv.Serve(a.ln) }()
	if a.mln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics.Handler())
		a.msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { serveErr <- a.msrv.Serve(a.mln) }()
		a.log.Info("metrics listening", "addr", a.MetricsAddr())
	}
	a.log.Info("lockstep serving", "addr", a.Addr(), "event_store", a.cfg.EventStore, "bus", a.cfg.Bus,
		"api", a.cfg.API, "projectors", a.cfg.Projectors, "workers", a.cfg.Workers)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = err
	}
	timeout := cmp.Or(a.cfg.ShutdownTimeout, DefaultShutdownTimeout)
	deadline := time.Now().Add(timeout)
	a.log.Info("shutting down: draining requests", "timeout", timeout.String())
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if a.msrv != nil {
		_ = a.msrv.Close()
	}
	if err := a.srv.Shutdown(sctx); err != nil {
		a.log.Error("http shutdown: requests still running when the shutdown timeout passed", "error", err)
		_ = a.srv.Close()
	}
	stopBG()
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
		a.log.Info("stopped")
	case <-sctx.Done():
		var names []string
		running.Range(func(k, _ any) bool { names = append(names, k.(string)); return true })
		slices.Sort(names)
		a.log.Error("shutdown timeout passed: leaving background loops that did not stop", "timeout", timeout.String(), "loops", names)
		a.abandoned.Store(true)
	}
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// housekeeping prunes answers of old Idempotency-Keys and long-expired
// refresh tokens, hourly (several instances doing it is harmless).
func (a *App) housekeeping(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		if n, err := idempotency.Prune(ctx, a.pool, now); err != nil {
			a.log.Warn("housekeeping", "error", err)
		} else if n > 0 {
			a.log.Info("pruned idempotency keys", "count", n)
		}
		if n, err := activitylog.PruneKeys(ctx, a.pool, now); err != nil {
			a.log.Warn("housekeeping", "error", err)
		} else if n > 0 {
			a.log.Info("pruned log idempotency keys", "count", n)
		}
		if n, err := a.auth.PruneRefreshTokens(ctx, now); err != nil {
			a.log.Warn("housekeeping", "error", err)
		} else if n > 0 {
			a.log.Info("pruned refresh tokens", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// supervise runs a background loop until ctx ends, restarting it with
// backoff when it fails (a database restart must not stop the process).
func (a *App) supervise(ctx context.Context, name string, run func(context.Context) error) {
	delay := 100 * time.Millisecond
	for {
		started := time.Now()
		err := run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, context.Canceled) {
			err = errors.New("returned early")
		}
		if time.Since(started) > time.Minute {
			delay = 100 * time.Millisecond
		}
		a.log.Error("background loop failed; restarting", "loop", name, "error", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// opsOnly serves only health and readiness (for projector/worker-only
// instances; /metrics has its own listener).
func (a *App) opsOnly() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", a.engine)
	mux.Handle("/readyz", a.engine)
	return mux
}

// Close releases connections. After a shutdown that left loops behind (a
// backend that never answered) it waits at most 2 seconds for them.
func (a *App) Close() {
	if a.abandoned.Load() {
		done := make(chan struct{})
		go func() { a.closeAll(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			a.log.Error("closing connections timed out; exiting anyway")
		}
		return
	}
	a.closeAll()
}

func (a *App) closeAll() {
	if a.hub != nil {
		_ = a.hub.Close()
	}
	if a.bus != nil {
		_ = a.bus.Close()
	}
	if a.store != nil {
		a.store.Close()
	}
	if a.pool != nil {
		a.pool.Close()
	}
}

// ProjectionNames lists the projectors of this deployment.
func (a *App) ProjectionNames() []string {
	names := make([]string, len(a.runners))
	for i, r := range a.runners {
		names[i] = r.Name()
	}
	return names
}

// Rebuild rebuilds one projector's read models from event zero, online.
func (a *App) Rebuild(ctx context.Context, name string, progress projections.Progress) error {
	r, ok := a.group.Runner(name)
	if !ok {
		return fmt.Errorf("no projector named %q (have %v)", name, a.ProjectionNames())
	}
	return r.RebuildOnline(ctx, progress)
}

// Store is the event store the app appends to (for tests and tools).
func (a *App) Store() eventstore.Store { return a.store }

// Auth is the identity service (for tests and tools).
func (a *App) Auth() *auth.Service { return a.auth }
