package eventtype

// Ingestion events: an object landed in the uploads bucket (from the S3
// event source, or from the ingest function's reconcile sweep), and how its
// ingestion ended. See docs/ingest.md.
const (
	// IngestObjectCreated is one object created in the uploads bucket. Id is
	// a stable hash of bucket, key and ETag (the same object always gets the
	// same id, whether versitygw's notification or the sweep announced it);
	// source is "/overture/ingest-source/<bucket>" or
	// "/overture/ingest/sweep/<bucket>"; subject is the key.
	IngestObjectCreated = "music.overture.ingest.object_created.v1"
	// IngestionCompleted: an upload became (or was recognised as) a track.
	IngestionCompleted = "music.overture.ingest.completed.v1"
	// IngestionFailed: an upload could not become a track; Reason says why.
	IngestionFailed = "music.overture.ingest.failed.v1"
)

// IngestObjectData is the data of IngestObjectCreated.
type IngestObjectData struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// ETag is the object's ETag without quotes.
	ETag string `json:"etag"`
	Size int64  `json:"size"`
	// EventTime is when the object was created (the notification's
	// eventTime, or the object's LastModified for the sweep), RFC 3339.
	EventTime string `json:"event_time"`
}

// IngestionData is the data of IngestionCompleted and IngestionFailed.
type IngestionData struct {
	UploadID string `json:"upload_id"`
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	ETag     string `json:"etag"`
	// TrackID is the track the upload made, replaced or matched (completed).
	TrackID string `json:"track_id,omitempty"`
	// Duplicate: the same audio was ingested before; TrackID is that track.
	Duplicate bool `json:"duplicate,omitempty"`
	// Replaced: the upload replaced the audio of an existing track.
	Replaced    bool   `json:"replaced,omitempty"`
	Published   bool   `json:"published,omitempty"`
	ContentHash string `json:"content_hash,omitempty"`
	// Reason is a machine-readable failure reason (e.g. "not-audio",
	// "empty", "too-long", "unsupported-codec", "corrupt", "timeout");
	// Detail a sentence for people.
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// UploaderID is the admin (user id) who uploaded through the admin API
	// or the CLI; empty for plain S3 uploads. The notification function
	// emails them on failure (their contact is known from UserRegistered).
	UploaderID string `json:"uploader_id,omitempty"`
}

var ingestSpecs = []Spec{
	{Type: IngestObjectCreated, Data: IngestObjectData{},
		Doc:       "An object was created in the uploads bucket (S3 notification, or found by the reconcile sweep); the ingest function turns it into a track.",
		Producers: []string{"ingest-source", "ingest"}, Consumers: []string{"ingest"}},
	{Type: IngestionCompleted, Data: IngestionData{},
		Doc:       "An upload became a draft or published track (or was recognised as audio already ingested); the uploader's CLI follows it through the admin API.",
		Producers: []string{"ingest"}, Outbox: true, Terminal: true},
	{Type: IngestionFailed, Data: IngestionData{},
		Doc:       "An upload could not become a track; the reason is specific and the uploading admin gets an email.",
		Producers: []string{"ingest"}, Outbox: true, Consumers: []string{"notification"}},
}
