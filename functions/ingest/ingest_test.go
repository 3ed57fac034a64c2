package ingest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/eventtype"
	ing "github.com/overture-music/overture/internal/ingest"
	"github.com/overture-music/overture/internal/outbox/outboxtest"
	"github.com/overture-music/overture/internal/testenv"
)

// A plain S3 PutObject into uploads becomes a draft track with the file's
// tags and duration; announcing the object again (a redelivered
// notification, a sweep) or uploading the same audio under another key
// makes no second track.
func TestPutObjectBecomesTrackOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	audio := tone(t, ".mp3", 440, 3, map[string]string{"title": "Группа крови", "artist": "Кино", "album": "Группа крови", "date": "1988", "track": "1"})
	etag := b.put(t, "incoming/blood-type.mp3", audio, nil)

	u := b.final(t, "incoming/blood-type.mp3", 2*time.Minute)
	if u.State != ing.StateReady || u.TrackID == "" || u.ETag != etag {
		t.Fatalf("upload = %+v, want ready with a track and etag %s", u, etag)
	}
	var title, state, artist, album, source string
	var durationMS int
	err := b.pool.QueryRow(ctx, `SELECT t.title, t.state, t.duration_ms, a.name, al.title, t.source_object FROM track t
		JOIN track_artist ta ON ta.track_id = t.id JOIN artist a ON a.id = ta.artist_id JOIN album al ON al.id = t.album_id
		WHERE t.id = $1`, u.TrackID).Scan(&title, &state, &durationMS, &artist, &album, &source)
	if err != nil {
		t.Fatalf("the track: %v", err)
	}
	if title != "Группа крови" || artist != "Кино" || album != "Группа крови" || state != "draft" {
		t.Fatalf("track = %q by %q on %q (%s), want «Группа крови» by «Кино», a draft", title, artist, album, state)
	}
	want := probeDuration(t, audio, ".mp3")
	if d := time.Duration(durationMS)*time.Millisecond - want; d > 50*time.Millisecond || d < -50*time.Millisecond {
		t.Fatalf("duration %d ms, ffprobe says %s", durationMS, want)
	}
	if source != "s3://uploads/incoming/blood-type.mp3#"+etag {
		t.Fatalf("source_object = %q", source)
	}
	// Every rendition the catalog names exists, under the upload's prefix.
	prefix := "tracks/" + u.TrackID + "/" + u.ID + "/"
	keys := b.mediaKeys(t, prefix)
	rows, err := b.pool.Query(ctx, `SELECT kind, storage_key, premium FROM track_rendition WHERE track_id = $1`, u.TrackID)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for rows.Next() {
		var kind, key string
		var premium bool
		if err := rows.Scan(&kind, &key, &premium); err != nil {
			t.Fatal(err)
		}
		kinds[kind] = true
		if !contains(keys, key) {
			t.Errorf("rendition %s at %s is not in the media bucket", kind, key)
		}
		// The catalog's flag alone makes a rendition premium: no key
		// carries the edge's legacy marker, or the POP would refuse a
		// rendition the catalog makes free later.
		if wantPremium := kind == "hls-aac-256"; premium != wantPremium || strings.Contains(key, "/premium/") {
			t.Errorf("rendition %s: premium %v (want %v), key %s", kind, premium, wantPremium, key)
		}
	}
	for _, k := range []string{"hls", "hls-aac-64", "hls-aac-128", "hls-aac-256"} {
		if !kinds[k] {
			t.Errorf("no %s rendition; have %v", k, kinds)
		}
	}
	if kinds["flac"] {
		t.Errorf("an MP3 source got a FLAC rendition")
	}

	// Announce it again, and sweep: nothing new.
	e, err := ing.ObjectEvent(ing.SourceOf(uploads), eventtype.IngestObjectData{Bucket: uploads, Key: "incoming/blood-type.mp3", ETag: etag})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.f.Ingest(ctx, eventtype.IngestObjectData{Bucket: uploads, Key: "incoming/blood-type.mp3", ETag: etag}); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if err := b.pub.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	b.sweep(t)

	// The same audio under another name, with other tags: recognised.
	again := b.put(t, "incoming/copy.mp3", audio, nil)
	dup := b.final(t, "incoming/copy.mp3", 2*time.Minute)
	if dup.State != ing.StateReady || !dup.Duplicate || dup.TrackID != u.TrackID || dup.ETag != again {
		t.Fatalf("second upload of the same audio = %+v, want ready, duplicate of track %s", dup, u.TrackID)
	}
	if n := b.count(t, `SELECT count(*) FROM track`); n != 1 {
		t.Fatalf("%d tracks, want 1", n)
	}
	if n := b.count(t, `SELECT count(*) FROM ingest_upload`); n != 2 {
		t.Fatalf("%d upload records, want 2", n)
	}
	if all := b.mediaKeys(t, ""); len(all) != len(keys) {
		t.Fatalf("media bucket holds %d objects, the track %d: %v", len(all), len(keys), all)
	}
	types := outboxtest.Types(t, b.pool)
	if types[eventtype.TrackCreated] != 1 || types[eventtype.IngestionCompleted] != 2 || types[eventtype.ArtistCreated] != 1 {
		t.Fatalf("outbox = %v, want one track_created and artist_created, two ingestion completed", types)
	}
}

// A notification versitygw sends while the source is down is lost; the
// sweep finds the object and it becomes a track all the same.
func TestLostNotificationIsSwept(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.down.Store(true)
	b.put(t, "lost.flac", tone(t, ".flac", 523, 2, map[string]string{"title": "Lost", "artist": "Nobody"}), nil)
	b.down.Store(false)
	if n := b.count(t, `SELECT count(*) FROM ingest_upload`); n != 0 {
		t.Fatalf("%d records before the sweep", n)
	}
	b.sweep(t)
	u := b.final(t, "lost.flac", 2*time.Minute)
	if u.State != ing.StateReady {
		t.Fatalf("swept upload = %+v", u)
	}
	if n := b.count(t, `SELECT count(*) FROM track_rendition WHERE track_id = $1 AND kind = 'flac' AND premium`, u.TrackID); n != 1 {
		t.Fatalf("a FLAC source has %d premium flac renditions, want 1", n)
	}
	b.sweep(t) // nothing left to announce
	if n := b.count(t, `SELECT count(*) FROM track`); n != 1 {
		t.Fatalf("%d tracks", n)
	}
}

// Files that are not audio, or empty, fail with a specific reason and an
// IngestionFailed event, and change nothing else.
func TestBadInputFails(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	cases := map[string]struct {
		data   []byte
		reason string
	}{
		"notes.mp3": {[]byte(strings.Repeat("these are not sounds\n", 200)), "not_audio"},
		"empty.mp3": {nil, "empty"},
	}
	for key, c := range cases {
		b.put(t, key, c.data, nil)
	}
	for key, c := range cases {
		u := b.final(t, key, 2*time.Minute)
		if u.State != ing.StateFailed || u.Reason != c.reason || u.TrackID != "" && u.State == ing.StateReady {
			t.Errorf("%s: %+v, want failed: %s", key, u, c.reason)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM track`) + b.count(t, `SELECT count(*) FROM artist`); n != 0 {
		t.Fatalf("bad input changed the catalog (%d rows)", n)
	}
	if keys := b.mediaKeys(t, ""); len(keys) != 0 {
		t.Fatalf("bad input left objects: %v", keys)
	}
	if types := outboxtest.Types(t, b.pool); types[eventtype.IngestionFailed] != 2 || len(types) != 1 {
		t.Fatalf("outbox = %v, want two ingestion failed", types)
	}
}

// Twenty uploads at once all become tracks.
func TestConcurrentUploads(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	var wg sync.WaitGroup
	for i := range 20 {
		data := tone(t, ".mp3", 300+37*i, 1, map[string]string{"title": fmt.Sprintf("Tone %d", i), "artist": "Oscillator"})
		wg.Go(func() { b.put(t, fmt.Sprintf("batch/%02d.mp3", i), data, nil) })
	}
	wg.Wait()
	for i := range 20 {
		if u := b.final(t, fmt.Sprintf("batch/%02d.mp3", i), 5*time.Minute); u.State != ing.StateReady || u.Duplicate {
			t.Errorf("upload %d: %+v", i, u)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM track`); n != 20 {
		t.Fatalf("%d tracks, want 20", n)
	}
	if n := b.count(t, `SELECT count(*) FROM artist`); n != 1 {
		t.Fatalf("%d artists, want the one they share", n)
	}
}

// An attempt that dies after uploading its renditions and before its
// transaction (the process gone: no release, lease held) leaves no duplicate
// and no orphan: the redelivery waits out the lease, deletes the leftovers
// and finishes.
func TestAttemptDyingMidwayLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	b.down.Store(true) // the test delivers the event itself
	data := tone(t, ".mp3", 880, 2, map[string]string{"title": "Crash", "artist": "Kill"})
	etag := b.put(t, "crash.mp3", data, nil)
	d := eventtype.IngestObjectData{Bucket: uploads, Key: "crash.mp3", ETag: etag}

	var leftovers []string
	b.f.afterUpload = func(ctx context.Context, u ing.Upload) error {
		leftovers = b.mediaKeys(t, "tracks/"+u.TrackID+"/"+u.ID+"/")
		b.f.afterUpload = nil
		runtime.Goexit() // no return, no release: what SIGKILL leaves
		return nil
	}
	// The dying attempt: its goroutine ends without releasing anything, as
	// when the process is killed.
	died := make(chan struct{})
	go func() {
		defer close(died)
		_ = b.f.Ingest(ctx, d)
	}()
	<-died
	if len(leftovers) == 0 {
		t.Fatal("the dying attempt uploaded nothing; the test proves nothing")
	}
	var err error
	testenv.WaitFor(t, time.Minute, "the lease to run out", func() bool {
		err = b.f.Ingest(ctx, d)
		return !errors.Is(err, ErrInProgress)
	})
	if err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	u := b.final(t, "crash.mp3", time.Minute)
	if u.State != ing.StateReady || u.Attempts < 2 {
		t.Fatalf("upload = %+v", u)
	}
	keys := b.mediaKeys(t, "")
	var referenced []string
	rows, _ := b.pool.Query(ctx, `SELECT storage_key FROM track_rendition`)
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		referenced = append(referenced, k)
	}
	for _, k := range referenced {
		if !contains(keys, k) {
			t.Errorf("rendition %s missing", k)
		}
	}
	sort.Strings(keys)
	if n := b.count(t, `SELECT count(*) FROM track`); n != 1 || len(keys) != len(leftovers) {
		t.Fatalf("%d tracks and %d objects, want 1 and %d (one attempt's worth)", n, len(keys), len(leftovers))
	}
}
