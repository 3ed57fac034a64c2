package listens

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/problem"
)

// The ListenBrainz submission limits (listenbrainz-server api_tools.py).
const (
	// MaxListens is the most listens one submission may carry.
	MaxListens = 1000
	// MaxListenBytes bounds one listen's JSON.
	MaxListenBytes = 10240
	// maxBody bounds a submission's body: a full batch of the largest listens
	// with room for the envelope.
	maxBody = MaxListens*MaxListenBytes + 64<<10
	// minListenedAt is ListenBrainz's earliest accepted timestamp
	// (2002-10-01, LISTEN_MINIMUM_TS): anything before is a client bug.
	minListenedAt = 1033430400
)

// Listen types.
const (
	TypeSingle     = "single"
	TypePlayingNow = "playing_now"
	TypeImport     = "import"
)

// The counting rules (docs/stats.md): a play is a stream at 30 s (the
// industry rule) and a scrobble at half the track or 4 minutes, whichever
// is less (ListenBrainz's rule).
const (
	streamAfterMS   = 30_000
	scrobbleCapMS   = 240_000
	scrobbleShareMS = 2 // half the track
)

// Submission is a parsed and validated ListenBrainz submission.
type Submission struct {
	ListenType string
	Listens    []eventtype.Listen
}

// fieldErrors collects what is wrong, field by field, in the order found.
type fieldErrors struct {
	order []string
	m     map[string]string
}

func (f *fieldErrors) add(field, format string, args ...any) {
	if f.m == nil {
		f.m = map[string]string{}
	}
	if _, dup := f.m[field]; dup {
		return
	}
	f.order = append(f.order, field)
	f.m[field] = fmt.Sprintf(format, args...)
}

// problem is the 400 naming every invalid field; the detail names the first.
func (f *fieldErrors) problem() *problem.Problem {
	if len(f.order) == 0 {
		return nil
	}
	first := f.order[0]
	detail := first + ": " + f.m[first]
	if n := len(f.order) - 1; n > 0 {
		detail += fmt.Sprintf(" (and %d more; see errors)", n)
	}
	p := problem.New(400, "invalid-listens", detail)
	p.Extra = map[string]any{"errors": maps.Clone(f.m)}
	return p
}

// rawSubmission is the envelope; listens stay raw to be measured and named.
type rawSubmission struct {
	ListenType *string           `json:"listen_type"`
	Payload    []json.RawMessage `json:"payload"`
}

type rawListen struct {
	ListenedAt    json.RawMessage `json:"listened_at"`
	TrackMetadata *struct {
		ArtistName     json.RawMessage            `json:"artist_name"`
		TrackName      json.RawMessage            `json:"track_name"`
		ReleaseName    json.RawMessage            `json:"release_name"`
		AdditionalInfo map[string]json.RawMessage `json:"additional_info"`
	} `json:"track_metadata"`
}

// Parse validates body as a ListenBrainz submission for user at now. skew is
// how far in the future listened_at may be. A bad submission is returned
// as a 400 *problem.Problem naming every invalid field (payload[3].listened_at);
// nothing of it is to be stored.
func Parse(body []byte, user string, now time.Time, skew time.Duration) (*Submission, error) {
	var errs fieldErrors
	var raw rawSubmission
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return nil, problem.New(400, "invalid-listens", "the body is not a ListenBrainz submission (a JSON object with listen_type and payload): "+err.Error())
	}
	if dec.More() {
		return nil, problem.New(400, "invalid-listens", "the body has data after the JSON object")
	}
	lt := ""
	switch {
	case raw.ListenType == nil:
		errs.add("listen_type", "is required (single, playing_now or import)")
	case *raw.ListenType == TypeSingle || *raw.ListenType == TypePlayingNow || *raw.ListenType == TypeImport:
		lt = *raw.ListenType
	default:
		errs.add("listen_type", "%q is not a listen type (single, playing_now or import)", *raw.ListenType)
	}
	switch n := len(raw.Payload); {
	case raw.Payload == nil:
		errs.add("payload", "is required: a list of listens")
	case n == 0:
		errs.add("payload", "is empty")
	case n > MaxListens:
		errs.add("payload", "has %d listens; at most %d per submission", n, MaxListens)
	case (lt == TypeSingle || lt == TypePlayingNow) && n != 1:
		errs.add("payload", "a %s submission carries exactly one listen, not %d", lt, n)
	}
	if p := errs.problem(); p != nil {
		return nil, p
	}
	s := &Submission{ListenType: lt}
	minTS, maxTS := int64(minListenedAt), now.Add(skew).Unix()
	seen := map[string]bool{}
	for i, r := range raw.Payload {
		at := "payload[" + strconv.Itoa(i) + "]"
		if len(r) > MaxListenBytes {
			errs.add(at, "is %d bytes; a listen may have at most %d", len(r), MaxListenBytes)
			continue
		}
		var l rawListen
		if err := json.Unmarshal(r, &l); err != nil {
			errs.add(at, "is not a listen object: %v", err)
			continue
		}
		var out eventtype.Listen
		if lt == TypePlayingNow {
			if l.ListenedAt != nil {
				errs.add(at+".listened_at", "must be absent from a playing_now listen")
			}
		} else {
			ts, ok := integer(l.ListenedAt)
			switch {
			case l.ListenedAt == nil:
				errs.add(at+".listened_at", "is required (Unix seconds)")
			case !ok:
				errs.add(at+".listened_at", "must be an integer number of Unix seconds, not %s", l.ListenedAt)
			case ts < minTS:
				errs.add(at+".listened_at", "%d is before 2002-10-01", ts)
			case ts > maxTS:
				errs.add(at+".listened_at", "%d is %s in the future", ts, time.Unix(ts, 0).Sub(now).Round(time.Second))
			}
			out.ListenedAt = ts
		}
		m := l.TrackMetadata
		if m == nil {
			errs.add(at+".track_metadata", "is required")
			continue
		}
		out.ArtistName = text(&errs, at+".track_metadata.artist_name", m.ArtistName, true)
		out.TrackName = text(&errs, at+".track_metadata.track_name", m.TrackName, true)
		out.ReleaseName = text(&errs, at+".track_metadata.release_name", m.ReleaseName, false)
		ai := at + ".track_metadata.additional_info"
		info := m.AdditionalInfo
		out.TrackID = text(&errs, ai+".overture_track_id", info["overture_track_id"], false)
		out.Client = text(&errs, ai+".submission_client", info["submission_client"], false)
		out.DurationMS = millis(&errs, ai, info)
		out.PlayedMS = count(&errs, ai+".played_ms", info["played_ms"])
		switch state := text(&errs, ai+".end_reason", info["end_reason"], false); state {
		case "", "completed":
		case "skipped":
			out.Skipped = true
		default:
			errs.add(ai+".end_reason", "%q is not an end reason (completed or skipped)", state)
		}
		out.Stream, out.Scrobble = Counts(out.DurationMS, out.PlayedMS)
		if lt != TypePlayingNow {
			out.ID = ListenID(user, out)
			if seen[out.ID] {
				errs.add(at, "repeats an earlier listen of this submission (same time and track)")
			}
			seen[out.ID] = true
		}
		s.Listens = append(s.Listens, out)
	}
	if p := errs.problem(); p != nil {
		return nil, p
	}
	return s, nil
}

// Counts applies the counting rules to a play of a track durationMS long
// of which playedMS were played. Without playedMS the listen counts as both
// (a scrobbler submits only after the scrobble rule held).
func Counts(durationMS, playedMS int64) (stream, scrobble bool) {
	if playedMS <= 0 {
		return true, true
	}
	need := int64(scrobbleCapMS)
	if durationMS > 0 {
		need = min(durationMS/scrobbleShareMS, scrobbleCapMS)
	}
	return playedMS >= streamAfterMS, playedMS >= need
}

// ListenID is the listen's id: a hash of the user, the time and the track
// (Overture's track id if known, else the lower-cased artist and track
// names). The same listen submitted twice has the same id.
func ListenID(user string, l eventtype.Listen) string {
	h := sha256.New()
	track := l.TrackID
	if track == "" {
		track = strings.ToLower(l.ArtistName) + "\x00" + strings.ToLower(l.TrackName)
	}
	for _, s := range []string{user, strconv.FormatInt(l.ListenedAt, 10), track} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// BatchID is the event id of a batch: a hash of the user and its listen ids.
func BatchID(user string, listens []eventtype.Listen) string {
	ids := make([]string, len(listens))
	for i, l := range listens {
		ids[i] = l.ID
	}
	slices.Sort(ids)
	h := sha256.New()
	h.Write([]byte(user))
	for _, id := range ids {
		h.Write([]byte{0})
		h.Write([]byte(id))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func integer(raw json.RawMessage) (int64, bool) {
	if raw == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

// text reads a string field: required ones must be non-empty.
func text(errs *fieldErrors, field string, raw json.RawMessage, required bool) string {
	if raw == nil || string(raw) == "null" {
		if required {
			errs.add(field, "is required")
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		errs.add(field, "must be a string")
		return ""
	}
	s = strings.TrimSpace(s)
	if required && s == "" {
		errs.add(field, "must not be empty")
	}
	return s
}

// count reads a non-negative integer field (absent: 0).
func count(errs *fieldErrors, field string, raw json.RawMessage) int64 {
	if raw == nil || string(raw) == "null" {
		return 0
	}
	n, ok := integer(raw)
	if !ok || n < 0 {
		errs.add(field, "must be a non-negative integer, not %s", raw)
		return 0
	}
	return n
}

// millis reads the track length: duration_ms, else ListenBrainz's duration
// in seconds.
func millis(errs *fieldErrors, ai string, info map[string]json.RawMessage) int64 {
	if v, ok := info["duration_ms"]; ok {
		return count(errs, ai+".duration_ms", v)
	}
	return count(errs, ai+".duration", info["duration"]) * 1000
}
