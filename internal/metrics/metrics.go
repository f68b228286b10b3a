// Package metrics exposes the dispatcher's state to Prometheus: GET /metrics
// in the Prometheus text format, built with the Prometheus Go client.
//
// The hot paths keep their own atomic counters (pkg/server's Stats, the
// bridge's Stats); this package reads them at scrape time, through one
// collector, so an event costs no metric work beyond the counters the
// service keeps anyway. The two histograms (POST handling time, fan-out
// latency on sampled streams) are observed directly: one lock-free
// observation per POST and per sampled write.
//
// Every name has the prefix "dispatcher_"; counters end in "_total"; times
// are in seconds. Adding a metric: add its description to the collector's
// list (collector.go) and its value to Collect, and a line to the README's
// metrics table; the test checks both, and the dashboard check keeps the
// dashboard in step.
package metrics

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// Prefix starts every metric name of the service.
const Prefix = "dispatcher_"

// Sources are what the metrics read. Server is required; the others are
// optional.
type Sources struct {
	Server *server.Server
	// Bridge, when NATS is configured: its metrics exist only then, so that
	// a single instance does not report a NATS that is not there.
	Bridge *natsbridge.Bridge
	// AcceptRetries reads how many times accepting a connection failed for
	// lack of resources and was retried.
	AcceptRetries func() uint64
	// HangupErrors reads how many times waiting for hang-ups failed.
	HangupErrors func() uint64
	// Version and Commit label dispatcher_build_info.
	Version, Commit string
}

// Metrics is the service's registry and its two histograms. Create it with
// New before the server (the histograms are the server's observers), then
// give it its sources with Watch.
type Metrics struct {
	reg           *prometheus.Registry
	postDuration  prometheus.Histogram
	fanoutLatency prometheus.Histogram
}

// New returns a registry with the Go runtime and process collectors and the
// service's histograms.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		postDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: Prefix + "post_duration_seconds",
			Help: "Time to handle POST /api/events, from the request's head to the answer.",
			// 50 µs to about 3 s.
			Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 13),
		}),
		fanoutLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: Prefix + "fanout_latency_seconds",
			Help: "Time from an event's acceptance to its write to a listener, on one stream in 64.",
			// 100 µs to about 13 s.
			Buckets: prometheus.ExponentialBuckets(100e-6, 2.5, 14),
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.postDuration,
		m.fanoutLatency,
	)
	return m
}

// ObservePost records a POST's handling time; server.Deps.ObservePost.
func (m *Metrics) ObservePost(d time.Duration) { m.postDuration.Observe(d.Seconds()) }

// ObserveFanout records an event's fan-out latency;
// server.Deps.ObserveFanout.
func (m *Metrics) ObserveFanout(d time.Duration) { m.fanoutLatency.Observe(d.Seconds()) }

// Watch registers the collector that reads src at every scrape.
func (m *Metrics) Watch(src Sources) {
	m.reg.MustRegister(newCollector(src, runtime.Version()))
}

// Registry returns the registry, for tests and other exporters.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format (or OpenMetrics
// when asked), through fasthttp.
func (m *Metrics) Handler() fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
}
