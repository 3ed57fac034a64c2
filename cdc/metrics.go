package cdc

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	published    prometheus.Counter
	transactions prometheus.Counter
	failures     prometheus.Counter
	poison       prometheus.Counter
	pruned       prometheus.Counter
	restarts     prometheus.Counter
	confirmed    prometheus.Gauge
	received     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		published:    prometheus.NewCounter(prometheus.CounterOpts{Name: "cdc_events_published_total", Help: "Events the broker acknowledged (change events and outbox events)."}),
		transactions: prometheus.NewCounter(prometheus.CounterOpts{Name: "cdc_transactions_total", Help: "Transactions decoded from the WAL."}),
		failures:     prometheus.NewCounter(prometheus.CounterOpts{Name: "cdc_publish_failures_total", Help: "Publish calls the broker refused or that failed (each is retried)."}),
		poison:       prometheus.NewCounter(prometheus.CounterOpts{Name: "cdc_skipped_changes_total", Help: "Changes that could not be encoded as events (corrupt outbox rows) and were skipped."}),
		pruned:       prometheus.NewCounter(prometheus.CounterOpts{Name: "cdc_outbox_pruned_total", Help: "Outbox rows deleted after their event was acknowledged."}),
		restarts:     prometheus.NewCounter(prometheus.CounterOpts{Name: "cdc_session_restarts_total", Help: "Replication sessions that ended with an error and were restarted."}),
		confirmed:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "cdc_confirmed_lsn", Help: "Last WAL position confirmed to the slot (everything before it is acknowledged)."}),
		received:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "cdc_received_lsn", Help: "WAL position of the last change received."}),
	}
	if reg == nil {
		return m
	}
	m.published = register(reg, m.published)
	m.transactions = register(reg, m.transactions)
	m.failures = register(reg, m.failures)
	m.poison = register(reg, m.poison)
	m.pruned = register(reg, m.pruned)
	m.restarts = register(reg, m.restarts)
	m.confirmed = register(reg, m.confirmed)
	m.received = register(reg, m.received)
	return m
}

// register registers c, or returns the collector already registered under its
// name (a second Run in one process shares the series).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
	}
	return c
}
