package eventtype

// Platform event types: the ones Knative itself defines and the ones the
// platform's own pieces emit.
const (
	// Ping is what a PingSource emits (Knative's own type name).
	Ping = "dev.knative.sources.ping"
)

// PingData is the payload a PingSource carries (its spec.data, as JSON).
type PingData struct {
	// Job names the scheduled job when several PingSources share a type.
	Job string `json:"job,omitempty"`
}

var platformSpecs = []Spec{
	{
		Type: Ping, Data: PingData{},
		Doc:       "A PingSource fired on its cron schedule; the data names the job.",
		Producers: []string{"pingsource"},
		Consumers: []string{},
		Terminal:  true,
	},
}
