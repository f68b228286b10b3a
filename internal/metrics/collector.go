package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// collector reads the service's counters at scrape time.
type collector struct {
	src       Sources
	goVersion string

	listeners, maxListeners, topics, ready, buildInfo           *prometheus.Desc
	filters, filteredOut                                        *prometheus.Desc
	accepted, turnedAway, ended                                 *prometheus.Desc
	eventsAccepted, eventsRejected                              *prometheus.Desc
	delivered, written, missed, panics, acceptRetries, hangups  *prometheus.Desc
	natsConnected, natsPublished, natsConsumed, natsFailed      *prometheus.Desc
	natsDuplicates, natsSkipped, natsStreamResets, natsReplayed *prometheus.Desc
	natsReconnects, natsDropped, natsPublishable, natsInvalid   *prometheus.Desc
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(Prefix+name, help, labels, nil)
}

func newCollector(src Sources, goVersion string) *collector {
	return &collector{
		src:       src,
		goVersion: goVersion,

		listeners:    desc("listeners", "Listeners streaming now."),
		maxListeners: desc("max_listeners", "The listener limit in force (from -max-listeners and the descriptor limit)."),
		topics:       desc("topics", "Topics alive."),
		filters:      desc("filters", "Distinct listener filters alive (where/sample over distinct topics), each evaluated once per event."),
		filteredOut:  desc("events_filtered_out_total", "Events of listeners' topics their filters turned away (one per event and listener): writes saved."),
		ready:        desc("ready", "1 while the service is ready (serving, not shutting down, and with NATS able to publish to the stream now)."),
		buildInfo:    desc("build_info", "Always 1; the labels say what runs.", "version", "commit", "goversion"),

		accepted:   desc("listeners_accepted_total", "Listeners given a stream."),
		turnedAway: desc("listeners_turned_away_total", "Listeners refused a stream, by reason.", "reason"),
		ended:      desc("listeners_ended_total", "Streams ended, by reason.", "reason"),

		eventsAccepted: desc("events_accepted_total", "Events accepted (published to the fan-out, or acknowledged by JetStream)."),
		eventsRejected: desc("events_rejected_total", "POSTs refused, by reason.", "reason"),

		delivered:     desc("frames_delivered_total", "Event frames written to listeners."),
		written:       desc("bytes_written_total", "Bytes written to listeners (frames, heartbeats, gap events)."),
		missed:        desc("frames_missed_total", "Frames listeners missed by falling behind the buffer (also those a stuck listener has already lost)."),
		panics:        desc("panics_total", "Panics recovered in handlers and streams."),
		acceptRetries: desc("accept_retries_total", "Accepts that failed for lack of resources (descriptors, memory) and were retried."),
		hangups:       desc("hangup_errors_total", "Failed waits for listener hang-ups (retried)."),

		natsConnected:    desc("nats_connected", "1 while the instance's consumer reads the JetStream stream."),
		natsPublished:    desc("nats_published_total", "Events published to JetStream and acknowledged."),
		natsConsumed:     desc("nats_consumed_total", "Messages consumed from the stream and handed to the fan-out."),
		natsFailed:       desc("nats_publish_failures_total", "Publishes to JetStream that failed."),
		natsDuplicates:   desc("nats_duplicates_total", "Publishes JetStream dropped as duplicates (an Idempotency-Key seen before)."),
		natsSkipped:      desc("nats_skipped_total", "Messages that expired from the stream before this instance read them."),
		natsStreamResets: desc("nats_stream_resets_total", "Times the stream was replaced or lost its messages."),
		natsReplayed:     desc("nats_replayed_total", "Messages replayed from the stream to resuming listeners."),
		natsReconnects:   desc("nats_reconnects_total", "Reconnections to NATS."),
		natsDropped:      desc("nats_dropped_total", "Messages consumed from the stream that could not be put in this instance's fan-out (every topic listened to, and the topic limit reached)."),
		natsPublishable:  desc("nats_publishable", "1 while the instance can publish to the stream now (connected, and the stream answers with a leader)."),
		natsInvalid:      desc("nats_invalid_total", "Messages read from the stream that failed the checks of an event (topic, event name, JSON object): skipped, never sent to listeners."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.listeners, c.maxListeners, c.topics, c.ready, c.buildInfo, c.filters, c.filteredOut,
		c.accepted, c.turnedAway, c.ended, c.eventsAccepted, c.eventsRejected,
		c.delivered, c.written, c.missed, c.panics, c.acceptRetries, c.hangups,
	} {
		ch <- d
	}
	if c.src.Bridge != nil {
		for _, d := range []*prometheus.Desc{
			c.natsConnected, c.natsPublished, c.natsConsumed, c.natsFailed,
			c.natsDuplicates, c.natsSkipped, c.natsStreamResets, c.natsReplayed, c.natsReconnects, c.natsDropped,
			c.natsPublishable, c.natsInvalid,
		} {
			ch <- d
		}
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Server.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.listeners, float64(st.Listeners))
	gauge(c.maxListeners, float64(st.MaxListeners))
	gauge(c.topics, float64(st.Topics))
	gauge(c.filters, float64(st.Filters))
	counter(c.filteredOut, st.FilteredOut)
	gauge(c.ready, boolFloat(c.src.Server.Ready()))
	gauge(c.buildInfo, 1, c.src.Version, c.src.Commit, c.goVersion)

	counter(c.accepted, st.ListenersTotal)
	for i, n := range st.TurnedAway {
		counter(c.turnedAway, n, server.TurnAwayReason(i).String())
	}
	for i, n := range st.Ended {
		counter(c.ended, n, server.EndReason(i).String())
	}
	counter(c.eventsAccepted, st.EventsAccepted)
	for i, n := range st.EventsRejected {
		counter(c.eventsRejected, n, server.RejectReason(i).String())
	}
	counter(c.delivered, st.FramesDelivered)
	counter(c.written, st.BytesWritten)
	counter(c.missed, st.FramesMissed)
	counter(c.panics, st.Panics)
	counter(c.acceptRetries, call(c.src.AcceptRetries))
	counter(c.hangups, call(c.src.HangupErrors))

	if b := c.src.Bridge; b != nil {
		bs, bst := b.Stats(), b.Status()
		gauge(c.natsConnected, boolFloat(bst.State == natsbridge.StateReady))
		gauge(c.natsPublishable, boolFloat(bst.Publishable))
		counter(c.natsInvalid, st.ConsumeInvalid)
		counter(c.natsPublished, bs.Published)
		counter(c.natsConsumed, bs.Consumed)
		counter(c.natsFailed, bs.PublishFailed)
		counter(c.natsDuplicates, bs.Duplicates)
		counter(c.natsSkipped, bs.Skipped)
		counter(c.natsStreamResets, bs.StreamResets)
		counter(c.natsReplayed, bs.Replayed)
		counter(c.natsReconnects, bs.Reconnects)
		counter(c.natsDropped, st.ConsumeDropped)
	}
}

func call(f func() uint64) uint64 {
	if f == nil {
		return 0
	}
	return f()
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
