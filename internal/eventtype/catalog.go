package eventtype

// Catalog domain events, written through the outbox by the catalog admin API,
// and the row-change events CDC derives from the WAL.
const (
	TrackCreated            = "music.overture.catalog.track_created.v1"
	TrackPublished          = "music.overture.catalog.track_published.v1"
	TrackUpdated            = "music.overture.catalog.track_updated.v1"
	TrackUnpublished        = "music.overture.catalog.track_unpublished.v1"
	TrackDeleted            = "music.overture.catalog.track_deleted.v1"
	TrackRenditionsReplaced = "music.overture.catalog.track_renditions_replaced.v1"
	AlbumCreated            = "music.overture.catalog.album_created.v1"
	AlbumUpdated            = "music.overture.catalog.album_updated.v1"
	AlbumDeleted            = "music.overture.catalog.album_deleted.v1"
	ArtistCreated           = "music.overture.catalog.artist_created.v1"
	ArtistUpdated           = "music.overture.catalog.artist_updated.v1"
	ArtistDeleted           = "music.overture.catalog.artist_deleted.v1"
)

// Change events: one per row change in a catalog table, decoded by cdc/ from the
// WAL (pgoutput) in Debezium's envelope. Source is "/overture/cdc/<slot>"; id is
// "<change LSN>/<index within tx>" (streamed) or "snapshot/<lsn>/<table>/<key>"
// (initial snapshot); extension partitionkey is "<table>:<key values joined by
// ':'>" and extension commitlsn the decimal end LSN of the transaction (for
// snapshot rows, the slot's consistent point). Data is [ChangeData].
const (
	CDCGenreChanged          = "music.overture.cdc.genre.changed.v1"
	CDCArtistChanged         = "music.overture.cdc.artist.changed.v1"
	CDCAlbumChanged          = "music.overture.cdc.album.changed.v1"
	CDCTrackChanged          = "music.overture.cdc.track.changed.v1"
	CDCTrackArtistChanged    = "music.overture.cdc.track_artist.changed.v1"
	CDCTrackRenditionChanged = "music.overture.cdc.track_rendition.changed.v1"
)

// CDCProgress is CDC's progress report: which transactions with change events
// committed in a span of the WAL. CDC publishes one after every batch of change
// events (in the same publish, after them), after its initial snapshot, when it
// moves past WAL without catalog changes and when asked for a watermark
// (pg_logical_emit_message with prefix "overture.watermark"). Together the
// reports tile the WAL from the slot's consistent point onward without gaps,
// so a consumer that counts the change events it has applied can tell exactly
// up to which position it has applied everything (the search indexer's
// read-your-writes watermark). Id is "progress/<from>-<to>", partitionkey
// "cdc-progress:<slot>", data [ProgressData]. Change events carry the extension
// txindex, their index within the transaction, which the counts refer to.
const CDCProgress = "music.overture.cdc.progress.v1"

// ProgressData is the data of a CDCProgress event. LSNs are decimal strings
// (consistency-token form).
type ProgressData struct {
	// From and To bound the span (From, To] of WAL positions it covers. From
	// is "0" for the initial snapshot's report.
	From string `json:"from"`
	To   string `json:"to"`
	// Snapshot marks the initial snapshot's report: To is the consistent
	// point and Rows the change events (op r) it published.
	Snapshot bool `json:"snapshot,omitempty"`
	Rows     int  `json:"rows,omitempty"`
	// Resume marks the first report of a CDC session that resumed an existing
	// slot: From is the slot's confirmed position, everything before which
	// was acknowledged by the broker in an earlier session.
	Resume bool `json:"resume,omitempty"`
	// Txns lists every transaction in the span that produced change events,
	// with how many (outbox events are not counted).
	Txns []ProgressTxn `json:"txns"`
}

// ProgressTxn is one transaction of a progress report.
type ProgressTxn struct {
	// CommitLSN is the transaction's commitlsn (its commit record's end).
	CommitLSN string `json:"commit_lsn"`
	// Changes is the number of change events it produced; their txindex
	// values are distinct.
	Changes int `json:"changes"`
}

// CDCChanged returns the change-event type of a catalog table.
func CDCChanged(table string) string { return "music.overture.cdc." + table + ".changed.v1" }

// Change operations (Debezium's op codes).
const (
	OpCreate   = "c"
	OpUpdate   = "u"
	OpDelete   = "d"
	OpSnapshot = "r" // a row read by the initial snapshot
)

// ChangeData is the data of a change event, Debezium's envelope. Values are
// JSON: uuid and text as strings, integers as numbers, booleans, timestamptz as
// RFC 3339 strings with nanoseconds, jsonb as JSON, NULL as null.
type ChangeData struct {
	// Before is the old row: only its key columns with REPLICA IDENTITY
	// DEFAULT, the whole old row with FULL; nil for creates and snapshot reads.
	Before map[string]any `json:"before"`
	// After is the new row; nil for deletes.
	After  map[string]any `json:"after"`
	Source ChangeSource   `json:"source"`
	Op     string         `json:"op"`
	// TsMs is when CDC emitted the event (ms since the epoch).
	TsMs int64 `json:"ts_ms"`
	// UnchangedToast lists columns of After left out because PostgreSQL did not
	// send them: an update that did not touch a TOASTed value. The consumer keeps
	// what it has for them.
	UnchangedToast []string `json:"unchanged_toast,omitempty"`
}

// ChangeSource says where a change came from.
type ChangeSource struct {
	Connector string `json:"connector"` // "overture-cdc"
	DB        string `json:"db"`
	Schema    string `json:"schema"`
	Table     string `json:"table"`
	LSN       uint64 `json:"lsn"`   // the change's own WAL position
	TxID      uint32 `json:"txId"`  // 0 for snapshot reads
	TsMs      int64  `json:"ts_ms"` // commit time (ms since the epoch)
	Snapshot  bool   `json:"snapshot"`
}

// Rendition is one stored encoding of a track's audio.
type Rendition struct {
	Kind       string `json:"kind"`        // e.g. "hls-aac-128", "mp3-320"
	StorageKey string `json:"storage_key"` // S3 key; HLS segments share the playlist's prefix
	Premium    bool   `json:"premium"`
}

// TrackData identifies a track and, where it matters to consumers, its renditions.
type TrackData struct {
	TrackID    string      `json:"track_id"`
	Title      string      `json:"title,omitempty"`
	AlbumID    string      `json:"album_id,omitempty"`
	ArtistIDs  []string    `json:"artist_ids,omitempty"`
	Renditions []Rendition `json:"renditions,omitempty"`
}

// TrackRenditionsReplacedData lists the renditions whose stored bytes changed;
// Old holds what edge caches may still serve and must purge.
type TrackRenditionsReplacedData struct {
	TrackID string      `json:"track_id"`
	Old     []Rendition `json:"old"`
	New     []Rendition `json:"new"`
}

// AlbumData identifies an album.
type AlbumData struct {
	AlbumID  string `json:"album_id"`
	Title    string `json:"title,omitempty"`
	ArtistID string `json:"artist_id,omitempty"`
}

// ArtistData identifies an artist.
type ArtistData struct {
	ArtistID string `json:"artist_id"`
	Name     string `json:"name,omitempty"`
}

var catalogSpecs = []Spec{
	{Type: TrackPublished, Data: TrackData{}, Doc: "A track became visible to listeners; CDN push warms its renditions.",
		Producers: []string{"catalog"}, Outbox: true, Consumers: []string{"cdn-warm"}},
	{Type: TrackRenditionsReplaced, Data: TrackRenditionsReplacedData{}, Doc: "A track's audio files were replaced; every POP purges the old objects.",
		Producers: []string{"catalog"}, Outbox: true, Consumers: []string{"cdn-purge"}},
	{Type: TrackCreated, Data: TrackData{}, Doc: "A draft track was created (the search index follows the row change; drafts are not searchable).",
		Producers: []string{"catalog"}, Outbox: true, Terminal: true},
	{Type: TrackUpdated, Data: TrackData{}, Doc: "A track's metadata changed (the search index follows the row change instead).",
		Producers: []string{"catalog"}, Outbox: true, Terminal: true},
	{Type: TrackUnpublished, Data: TrackData{}, Doc: "A track was hidden from listeners (also a rights takedown); every POP revokes its issued URLs and purges it (the search index follows the row change).",
		Producers: []string{"catalog"}, Outbox: true, Consumers: []string{"cdn-purge"}},
	{Type: TrackDeleted, Data: TrackData{}, Doc: "A track was deleted; every POP revokes its issued URLs and purges it (the search index follows the row change).",
		Producers: []string{"catalog"}, Outbox: true, Consumers: []string{"cdn-purge"}},
	{Type: AlbumCreated, Data: AlbumData{}, Doc: "An album was created.", Producers: []string{"catalog"}, Outbox: true, Terminal: true},
	{Type: AlbumUpdated, Data: AlbumData{}, Doc: "An album's metadata changed.", Producers: []string{"catalog"}, Outbox: true, Terminal: true},
	{Type: AlbumDeleted, Data: AlbumData{}, Doc: "An album was deleted.", Producers: []string{"catalog"}, Outbox: true, Terminal: true},
	{Type: ArtistCreated, Data: ArtistData{}, Doc: "An artist was created.", Producers: []string{"catalog"}, Outbox: true, Terminal: true},
	{Type: ArtistUpdated, Data: ArtistData{}, Doc: "An artist's metadata changed.", Producers: []string{"catalog"}, Outbox: true, Terminal: true},
	{Type: ArtistDeleted, Data: ArtistData{}, Doc: "An artist was deleted.", Producers: []string{"catalog"}, Outbox: true, Terminal: true},

	{Type: CDCGenreChanged, Data: ChangeData{}, Doc: "A genre row changed (CDC from the WAL, Debezium envelope).",
		Producers: []string{"cdc"}, Consumers: []string{"search-indexer"}},
	{Type: CDCArtistChanged, Data: ChangeData{}, Doc: "An artist row changed (CDC from the WAL, Debezium envelope).",
		Producers: []string{"cdc"}, Consumers: []string{"search-indexer"}},
	{Type: CDCAlbumChanged, Data: ChangeData{}, Doc: "An album row changed (CDC from the WAL, Debezium envelope).",
		Producers: []string{"cdc"}, Consumers: []string{"search-indexer"}},
	{Type: CDCTrackChanged, Data: ChangeData{}, Doc: "A track row changed (CDC from the WAL, Debezium envelope).",
		Producers: []string{"cdc"}, Consumers: []string{"search-indexer"}},
	{Type: CDCTrackArtistChanged, Data: ChangeData{}, Doc: "A track_artist link row changed (CDC from the WAL, Debezium envelope).",
		Producers: []string{"cdc"}, Consumers: []string{"search-indexer"}},
	{Type: CDCTrackRenditionChanged, Data: ChangeData{}, Doc: "A track_rendition row changed (CDC from the WAL, Debezium envelope).",
		Producers: []string{"cdc"}, Consumers: []string{"search-indexer"}},
	{Type: CDCProgress, Data: ProgressData{}, Doc: "CDC's progress report: the transactions with change events in a span of the WAL, and how many each produced; consumers derive an exact applied watermark from it.",
		Producers: []string{"cdc"}, Consumers: []string{"search-indexer"}},
}
