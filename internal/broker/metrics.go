package broker

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	ingested     *prometheus.CounterVec // broker, trigger
	unmatched    *prometheus.CounterVec // broker
	rejected     *prometheus.CounterVec // broker
	denied       *prometheus.CounterVec // broker, reason
	delivered    *prometheus.CounterVec // trigger
	failed       *prometheus.CounterVec // trigger
	deadLettered *prometheus.CounterVec // trigger
	dropped      *prometheus.CounterVec // trigger
	latency      *prometheus.HistogramVec
	pings        *prometheus.CounterVec // pingsource
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overture_broker_ingested_total", Help: "Deliveries stored at ingress: one per event and trigger that wants it.",
		}, []string{"broker", "trigger"}),
		unmatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overture_broker_unmatched_total", Help: "Events acknowledged but not stored because no trigger wanted them.",
		}, []string{"broker"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overture_broker_rejected_total", Help: "HTTP ingress requests refused as malformed or invalid CloudEvents.",
		}, []string{"broker"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overture_broker_denied_total", Help: "Publishes refused for their sender: reason unauthenticated (no valid token, 401) or forbidden (no EventPolicy allows the subject to send the event, 403; in process and replies too).",
		}, []string{"broker", "reason"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overture_broker_delivered_total", Help: "Events a subscriber accepted.",
		}, []string{"trigger"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overture_broker_delivery_failures_total", Help: "Failed delivery attempts (each retry counts).",
		}, []string{"trigger"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overture_broker_dead_lettered_total", Help: "Events sent to the dead-letter sink after the last retry.",
		}, []string{"trigger"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overture_broker_dropped_total", Help: "Events dropped after the last retry because the trigger has no dead-letter sink.",
		}, []string{"trigger"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "overture_broker_delivery_latency_seconds", Help: "Time from ingress to the start of the subscriber call.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"trigger"}),
		pings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "overture_broker_ping_total", Help: "PingSource ticks emitted.",
		}, []string{"pingsource"}),
	}
	if reg != nil {
		reg.MustRegister(m.ingested, m.unmatched, m.rejected, m.denied, m.delivered, m.failed, m.deadLettered, m.dropped, m.latency, m.pings)
	}
	return m
}
