// Package metrics exposes Lockstep's Prometheus metrics: HTTP latency by
// route, events appended, projector position and lag, bus consumer lag,
// WebSocket connections.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/projections"
)

// Metrics holds the collectors of one process.
type Metrics struct {
	Registry       *prometheus.Registry
	HTTPDuration   *prometheus.HistogramVec
	EventsAppended *prometheus.CounterVec
	WSConnections  *prometheus.GaugeVec
	WSDropped      *prometheus.CounterVec
	BusMessages    *prometheus.CounterVec
}

// New registers Lockstep's collectors (and the Go runtime's) on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lockstep_http_request_duration_seconds",
			Help:    "HTTP request latency by route, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
		EventsAppended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockstep_events_appended_total",
			Help: "Events appended to the event store, by event type.",
		}, []string{"type"}),
		WSConnections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lockstep_websocket_connections",
			Help: "Open WebSocket connections by socket kind.",
		}, []string{"kind"}),
		WSDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockstep_websocket_dropped_total",
			Help: "WebSocket clients closed because they could not keep up.",
		}, []string{"kind"}),
		BusMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockstep_bus_messages_total",
			Help: "Bus messages published or handled, by topic and direction.",
		}, []string{"topic", "direction"}),
	}
	m.Registry.MustRegister(m.HTTPDuration, m.EventsAppended, m.WSConnections, m.WSDropped, m.BusMessages,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Middleware observes each request's latency under its route pattern (never
// the raw path, which would explode the label set).
func (m *Metrics) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath() // a registered pattern: a fixed set
		if route == "" {
			route = "unmatched" // unknown paths, and known paths with another method
		}
		m.HTTPDuration.WithLabelValues(route, methodLabel(c.Request.Method), strconv.Itoa(c.Writer.Status())).Observe(time.Since(start).Seconds())
	}
}

// methodLabel folds every method but the standard ones into "OTHER": a
// client choosing method names must not create series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// InstrumentStore counts appended events by type.
func (m *Metrics) InstrumentStore(s eventstore.Store) eventstore.Store {
	return instrumentedStore{Store: s, m: m}
}

type instrumentedStore struct {
	eventstore.Store
	m *Metrics
}

// Unwrap lets eventstore.AsQuerier find the wrapped store's optional
// capabilities (the counting is for appends only).
func (s instrumentedStore) Unwrap() eventstore.Store { return s.Store }

func (s instrumentedStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := s.Store.Append(ctx, stream, expected, events...)
	if err == nil {
		for _, e := range events {
			s.m.EventsAppended.WithLabelValues(e.Type).Inc()
		}
	}
	return res, err
}

// RegisterProjections exports each runner's position, lag and status at scrape time.
func (m *Metrics) RegisterProjections(store eventstore.Store, runners []*projections.Runner) {
	m.Registry.MustRegister(&projectionCollector{store: store, runners: runners})
}

var (
	descPosition = prometheus.NewDesc("lockstep_projection_position", "Global position the projector has applied.", []string{"projector"}, nil)
	descLagPos   = prometheus.NewDesc("lockstep_projection_lag_positions", "Head position minus the projector's position (positions are sparse; 0 means caught up).", []string{"projector"}, nil)
	descLagSec   = prometheus.NewDesc("lockstep_projection_lag_seconds", "Seconds since the last applied event occurred, while the projector is behind the head; 0 when caught up.", []string{"projector"}, nil)
	descParked   = prometheus.NewDesc("lockstep_projection_parked", "1 when the projector is parked after repeated failures.", []string{"projector"}, nil)
	descStatus   = prometheus.NewDesc("lockstep_projection_status", "1 for the projector's current status (running, parked, rebuilding, stopped), 0 for the others.", []string{"projector", "status"}, nil)
	descQuar     = prometheus.NewDesc("lockstep_projection_quarantined_events", "Events the projector could not apply and set aside (see /api/admin/projections).", []string{"projector"}, nil)
	descHead     = prometheus.NewDesc("lockstep_event_store_head_position", "Position of the newest readable event.", nil, nil)
)

type projectionCollector struct {
	store   eventstore.Store
	runners []*projections.Runner
}

func (c *projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPosition
	ch <- descLagPos
	ch <- descLagSec
	ch <- descParked
	ch <- descStatus
	ch <- descQuar
	ch <- descHead
}

func (c *projectionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	head, err := c.store.HeadPosition(ctx)
	if err == nil {
		ch <- prometheus.MustNewConstMetric(descHead, prometheus.GaugeValue, float64(head))
	}
	for _, r := range c.runners {
		s := r.State()
		ch <- prometheus.MustNewConstMetric(descPosition, prometheus.GaugeValue, float64(s.Position), s.Name)
		parked := 0.0
		if s.Status == projections.StatusParked {
			parked = 1
		}
		ch <- prometheus.MustNewConstMetric(descParked, prometheus.GaugeValue, parked, s.Name)
		for _, st := range projections.Statuses {
			v := 0.0
			if st == s.Reported() {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descStatus, prometheus.GaugeValue, v, s.Name, st)
		}
		ch <- prometheus.MustNewConstMetric(descQuar, prometheus.GaugeValue, float64(s.Quarantined), s.Name)
		if err != nil {
			continue
		}
		lagPos, lagSec := 0.0, 0.0
		if head > s.Position {
			lagPos = float64(head - s.Position)
			if !s.LastEventAt.IsZero() {
				lagSec = time.Since(s.LastEventAt).Seconds()
			}
		}
		ch <- prometheus.MustNewConstMetric(descLagPos, prometheus.GaugeValue, lagPos, s.Name)
		ch <- prometheus.MustNewConstMetric(descLagSec, prometheus.GaugeValue, lagSec, s.Name)
	}
}

// RegisterBus exports, at scrape time, how many messages each consumer group
// of this process has not yet handled, per topic:
// lockstep_bus_consumer_lag_messages{topic, group}.
func (m *Metrics) RegisterBus(b *bus.Bus) {
	m.Registry.MustRegister(busCollector{b})
}

var descBusLag = prometheus.NewDesc("lockstep_bus_consumer_lag_messages",
	"Messages published to a bus topic and not yet handled (acked) by a consumer group of this process (on PostgreSQL counted up to 1,000,000; fan-out groups by their prefix).",
	[]string{"topic", "group"}, nil)

type busCollector struct{ b *bus.Bus }

func (c busCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descBusLag }

func (c busCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	lags, _ := c.b.Lag(ctx) // a group whose lag cannot be read has no sample this scrape
	seen := map[[2]string]float64{}
	for _, l := range lags {
		seen[[2]string{l.Topic, l.Group}] += float64(l.Messages) // fan-out groups of one prefix add up
	}
	for k, v := range seen {
		ch <- prometheus.MustNewConstMetric(descBusLag, prometheus.GaugeValue, v, k[0], k[1])
	}
}

// CountAfter passes through to the store when it can count (0 otherwise).
func (s instrumentedStore) CountAfter(ctx context.Context, after uint64) (int64, error) {
	if c, ok := s.Store.(interface {
		CountAfter(context.Context, uint64) (int64, error)
	}); ok {
		return c.CountAfter(ctx, after)
	}
	return 0, nil
}
