package eventtype

// Catalog domain events, written through the outbox by the catalog admin API,
// and the row-change events CDC derives from the WAL.
const (
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
		Producers: []string{"catalog"}, Consumers: []string{"cdn-warm"}},
	{Type: TrackRenditionsReplaced, Data: TrackRenditionsReplacedData{}, Doc: "A track's audio files were replaced; every POP purges the old objects.",
		Producers: []string{"catalog"}, Consumers: []string{"cdn-purge"}},
	{Type: TrackUpdated, Data: TrackData{}, Doc: "A track's metadata changed (the search index follows the row change instead).",
		Producers: []string{"catalog"}, Terminal: true},
	{Type: TrackUnpublished, Data: TrackData{}, Doc: "A track was hidden from listeners (the search index follows the row change).",
		Producers: []string{"catalog"}, Terminal: true},
	{Type: TrackDeleted, Data: TrackData{}, Doc: "A track was deleted (the search index follows the row change).",
		Producers: []string{"catalog"}, Terminal: true},
	{Type: AlbumCreated, Data: AlbumData{}, Doc: "An album was created.", Producers: []string{"catalog"}, Terminal: true},
	{Type: AlbumUpdated, Data: AlbumData{}, Doc: "An album's metadata changed.", Producers: []string{"catalog"}, Terminal: true},
	{Type: AlbumDeleted, Data: AlbumData{}, Doc: "An album was deleted.", Producers: []string{"catalog"}, Terminal: true},
	{Type: ArtistCreated, Data: ArtistData{}, Doc: "An artist was created.", Producers: []string{"catalog"}, Terminal: true},
	{Type: ArtistUpdated, Data: ArtistData{}, Doc: "An artist's metadata changed.", Producers: []string{"catalog"}, Terminal: true},
	{Type: ArtistDeleted, Data: ArtistData{}, Doc: "An artist was deleted.", Producers: []string{"catalog"}, Terminal: true},
}
