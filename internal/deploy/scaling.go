package deploy

// Scale is how one workload scales on Knative: a hard containerConcurrency
// (0: none, the autoscaler's soft target governs) and autoscaling
// annotations, with the reason. For functions, func.yaml's
// deploy.options.scale gives min/max/target; an entry here only adds what
// func.yaml cannot say (containerConcurrency) or overrides it knowingly.
type Scale struct {
	ContainerConcurrency int
	Annotations          map[string]string
	Why                  string
}

const (
	annMin    = "autoscaling.knative.dev/min-scale"
	annMax    = "autoscaling.knative.dev/max-scale"
	annTarget = "autoscaling.knative.dev/target"
	annMetric = "autoscaling.knative.dev/metric"
)

// Scaling is the table docs/deploy.md explains; every workload not listed
// takes Knative's defaults (scale to zero, no hard limit) plus its
// func.yaml scale.
var Scaling = map[string]Scale{
	// Functions.
	"ingest": {ContainerConcurrency: 2,
		Why: "each event is an ffmpeg transcode using about one core and scratch disk: a hard limit of 2 queues the third in the queue-proxy instead of thrashing the pod (func.yaml's target is 2 as well)"},
	"renewal": {ContainerConcurrency: 1,
		Why: "the renewal sweep runs on a PingSource and must not overlap itself; func.yaml caps it at one pod, this at one tick at a time"},
	"search-indexer": {ContainerConcurrency: 0,
		Why: "CDC change events are small and the indexer batches its OpenSearch writes; func.yaml keeps one pod warm so catch-up after a write does not wait for a cold start"},
	// Services (no func.yaml: everything is here).
	"auth": {ContainerConcurrency: 16, Annotations: map[string]string{annMin: "1", annMax: "10", annTarget: "12"},
		Why: "password hashing is CPU-bound: 16 at a time per pod keeps sign-in latency flat and makes the autoscaler add pods instead; one pod stays warm because every client starts here (tokens, JWKS)"},
	"steering": {Annotations: map[string]string{annMin: "1", annMax: "10", annTarget: "200"},
		Why: "playback starts here and each request is a cache lookup and a signature: no hard limit, a high soft target, and one warm pod so pressing play never pays a cold start; it also polls the POPs' /stats, which only a running pod does"},
	"query": {Annotations: map[string]string{annMin: "1", annMax: "10", annTarget: "100"},
		Why: "search as you type: one warm pod, many cheap concurrent requests to OpenSearch"},
	"listens": {Annotations: map[string]string{annMin: "1", annMax: "10", annTarget: "100"},
		Why: "players submit now-playing and listens continuously; a cold start would hold every client's submission"},
	"catalog-admin": {Annotations: map[string]string{annMin: "0", annMax: "4", annTarget: "50"},
		Why: "admin edits only: scale to zero"},
	"subscription-api": {Annotations: map[string]string{annMin: "1", annMax: "4", annTarget: "50"},
		Why: "the payment provider's webhooks land here; a warm pod answers them inside the provider's timeout"},
	"payment-sandbox": {Annotations: map[string]string{annMin: "1", annMax: "1"},
		Why: "the stand-in provider posts its notifications from the pod after a delay; scaling it to zero or out would lose or split them. Replace it by the real provider in production"},
	"ops": {Annotations: map[string]string{annMin: "0", annMax: "2", annTarget: "50"},
		Why: "the dead-letter console's API: used by an operator now and then, scale to zero; each request is one database read or one outbox write"},
	"ingest-admin": {ContainerConcurrency: 4, Annotations: map[string]string{annMin: "0", annMax: "4"},
		Why: "uploads stream large bodies to S3 in parts held in memory: 4 per pod bounds memory"},
	GatewayName: {Annotations: map[string]string{annMin: "1", annMax: "10", annTarget: "200"},
		Why: "every client request and the web app pass through it; it only proxies, so a high soft target and one warm pod"},
	S3SourceName: {Annotations: map[string]string{annMin: "1", annMax: "3", annMetric: "concurrency", annTarget: "50"},
		Why: "versitygw posts each notification once with a 3 s timeout, and exits at start when the webhook refuses: one pod stays up (a missed notification is left to the ingest sweep)"},
}
