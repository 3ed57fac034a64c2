package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/problem"
)

// SourceName is the producer name of the S3 event source.
const SourceName = "ingest-source"

// EventID is the CloudEvents id of the object bucket/key with etag: the
// same object always gets the same id, whoever announces it.
func EventID(bucket, key, etag string) string {
	h := sha256.New()
	for _, s := range []string{bucket, key, NormalizeETag(etag)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// NormalizeETag strips the quotes S3 puts around an ETag (versitygw's
// notifications and listings disagree on them).
func NormalizeETag(etag string) string { return strings.Trim(etag, `"`) }

// ObjectEvent returns the IngestObjectCreated event of d; source names who
// saw it.
func ObjectEvent(source string, d eventtype.IngestObjectData) (event.Event, error) {
	d.ETag = NormalizeETag(d.ETag)
	e := event.New()
	e.SetID(EventID(d.Bucket, d.Key, d.ETag))
	e.SetType(eventtype.IngestObjectCreated)
	e.SetSource(source)
	e.SetSubject(d.Key)
	e.SetTime(time.Now())
	if err := e.SetData(event.ApplicationJSON, d); err != nil {
		return e, fmt.Errorf("encode %s: %w", eventtype.IngestObjectCreated, err)
	}
	return e, nil
}

// Source is the S3 event source: an HTTP receiver for versitygw's
// notification webhook that publishes one IngestObjectCreated event per
// ObjectCreated record of the uploads bucket. It answers only after the
// broker acknowledged the events (versitygw ignores the answer, but a
// publisher that does not is then told the truth), and answers versitygw's
// start-up test event at once.
//
// Notifications are accepted only with the shared secret as the token query
// parameter (?token=…, see WebhookURL): versitygw cannot sign its requests,
// so the secret in the URL it is configured with is what tells it apart.
type Source struct {
	// Bucket is the uploads bucket; records of other buckets are ignored.
	Bucket string
	// Secret is the token the webhook URL carries; empty refuses everything.
	Secret    string
	Publisher function.Publisher
	Log       *slog.Logger
}

// WebhookPath is where the Source expects notifications.
const WebhookPath = "/s3/events"

// WebhookURL returns the URL to configure versitygw with, for a Source
// listening at base (http://host:port).
func WebhookURL(base, secret string) string {
	return strings.TrimRight(base, "/") + WebhookPath + "?token=" + secret
}

// SourceOf returns the CloudEvents source attribute of the S3 event source
// for bucket.
func SourceOf(bucket string) string { return "/overture/" + SourceName + "/" + bucket }

// notification is versitygw's (AWS-shaped) webhook body; a test event has
// Event instead of Records.
type notification struct {
	Event   string `json:"Event"`
	Records []struct {
		EventName string `json:"eventName"`
		EventTime string `json:"eventTime"`
		S3        struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key  string  `json:"key"`
				Size int64   `json:"size"`
				ETag *string `json:"eTag"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
}

// ServeHTTP implements http.Handler.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := s.Log
	if log == nil { // its host (the platform, overture s3-source) hands one in
		log = slog.New(slog.DiscardHandler)
	}
	if r.URL.Path != WebhookPath {
		problem.Write(w, r, problem.New(http.StatusNotFound, "not-found", "notifications go to "+WebhookPath))
		return
	}
	if r.Method != http.MethodPost {
		problem.Write(w, r, problem.New(http.StatusMethodNotAllowed, "method-not-allowed", "POST notifications"))
		return
	}
	tok := r.URL.Query().Get("token")
	if s.Secret == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.Secret)) != 1 {
		log.WarnContext(r.Context(), "S3 notification refused: wrong or missing token", "remote", r.RemoteAddr)
		problem.Write(w, r, problem.New(http.StatusUnauthorized, "unauthorized", "notifications need the shared token"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		problem.Write(w, r, problem.BadRequest("read the notification: "+err.Error()))
		return
	}
	var n notification
	if err := json.Unmarshal(body, &n); err != nil {
		problem.Write(w, r, problem.BadRequest("the notification is not JSON: "+err.Error()))
		return
	}
	if n.Event == "s3:TestEvent" {
		log.InfoContext(r.Context(), "S3 notification test event answered")
		w.WriteHeader(http.StatusOK)
		return
	}
	events, err := s.events(n)
	if err != nil {
		problem.Write(w, r, problem.BadRequest(err.Error()))
		return
	}
	if len(events) > 0 {
		if err := s.Publisher.Publish(r.Context(), events...); err != nil {
			log.ErrorContext(r.Context(), "publish object events", "events", len(events), "error", err)
			problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "publish-failed", "the broker did not accept the events; the sweep will find the objects"))
			return
		}
		for _, e := range events {
			log.InfoContext(r.Context(), "object announced", "bucket", s.Bucket, "key", e.Subject(), "event_id", e.ID())
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Source) events(n notification) ([]event.Event, error) {
	var out []event.Event
	for _, rec := range n.Records {
		name := strings.TrimPrefix(rec.EventName, "s3:")
		if !strings.HasPrefix(name, "ObjectCreated:") || rec.S3.Bucket.Name != s.Bucket || rec.S3.Object.Key == "" {
			continue
		}
		etag := ""
		if rec.S3.Object.ETag != nil {
			etag = *rec.S3.Object.ETag
		}
		if NormalizeETag(etag) == "" {
			return nil, fmt.Errorf("record for %s has no eTag", rec.S3.Object.Key)
		}
		// versitygw sends the key as is; AWS URL-encodes it. A key that
		// decodes differently is taken literally: versitygw is the server.
		e, err := ObjectEvent(SourceOf(s.Bucket), eventtype.IngestObjectData{
			Bucket: s.Bucket, Key: rec.S3.Object.Key, ETag: etag, Size: rec.S3.Object.Size, EventTime: rec.EventTime,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
