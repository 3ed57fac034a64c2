package eventtype

// Listening statistics: the listens service (internal/listens) turns each
// accepted submission into one event; the stats-writer function stores its
// listens exactly once. See docs/stats.md.
const (
	// ListensSubmitted is one accepted batch of listens (ListenBrainz
	// listen_type single or import). Id is the batch id, a hash of the user
	// and the batch's listen ids (the same submission always gets the same
	// id); source is "/overture/listens"; subject is the user id.
	ListensSubmitted = "music.overture.listens.submitted.v1"
)

// ListensData is the data of ListensSubmitted.
type ListensData struct {
	BatchID string `json:"batch_id"`
	UserID  string `json:"user_id"`
	// ListenType is "single" or "import".
	ListenType string   `json:"listen_type"`
	Listens    []Listen `json:"listens"`
}

// Listen is one normalised listen.
type Listen struct {
	// ID is the listen id: a hash of the user, listened_at and the track
	// (Overture's track id, or the artist and track names), the key the
	// store deduplicates on.
	ID string `json:"id"`
	// ListenedAt is when the listen started, Unix seconds.
	ListenedAt  int64  `json:"listened_at"`
	ArtistName  string `json:"artist_name"`
	TrackName   string `json:"track_name"`
	ReleaseName string `json:"release_name,omitempty"`
	// TrackID is Overture's track id (additional_info.overture_track_id).
	TrackID string `json:"track_id,omitempty"`
	// DurationMS is the track's length, PlayedMS how much was played (0:
	// not reported).
	DurationMS int64 `json:"duration_ms,omitempty"`
	PlayedMS   int64 `json:"played_ms,omitempty"`
	// Stream: played at least 30 s. Scrobble: played at least half the
	// track or 4 minutes, whichever is less. A listen without played_ms is
	// taken as both (the scrobbler applied the rule before submitting).
	Stream   bool `json:"stream"`
	Scrobble bool `json:"scrobble"`
	// Skipped: the player reported the play ended by a skip.
	Skipped bool `json:"skipped,omitempty"`
	// Premium: the listener's entitlement when the listen was submitted
	// (known for access tokens only).
	Premium bool `json:"premium,omitempty"`
	// Client is additional_info.submission_client, else "overture" (an
	// access token) or "listenbrainz" (a listen token).
	Client string `json:"client,omitempty"`
}

var statsSpecs = []Spec{
	{Type: ListensSubmitted, Data: ListensData{},
		Doc:       "A listener's client submitted a batch of listens (accepted whole); the stats writer stores each listen exactly once.",
		Producers: []string{"listens"}, Consumers: []string{"stats-writer", "recommend"}},
}
