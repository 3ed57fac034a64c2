package eventtype

// Recommendations (issue 14): a refresh of one listener's recommendations,
// asked for by the listener (POST /v1/me/recommendations/refresh, the feed
// service) or by their listening (the recommend function counts new
// scrobbles), is a job row written with this event in one transaction; the
// recommend function runs it. See docs/recommendations.md.
const (
	// RefreshRequested is a queued refresh job. Id is the job's id (a
	// redelivery is the same job); source is "/overture/recommend"; subject
	// and partitionkey are the user id.
	RefreshRequested = "music.overture.recommend.refresh_requested.v1"
)

// RefreshRequestedData is the data of RefreshRequested.
type RefreshRequestedData struct {
	JobID  string `json:"job_id"`
	UserID string `json:"user_id"`
	// Reason is "requested" (the listener asked) or "listening" (their
	// listening changed enough since their last result).
	Reason string `json:"reason"`
}

var recommendSpecs = []Spec{
	{Type: RefreshRequested, Data: RefreshRequestedData{},
		Doc:       "A refresh of one listener's recommendations was queued (a job row in the same transaction); the recommend function recomputes that listener alone from the last recompute's stored models.",
		Producers: []string{"feed", "recommend"}, Consumers: []string{"recommend"}, Outbox: true},
}
