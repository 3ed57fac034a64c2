package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
)

// SweepSource is the CloudEvents source of the events the sweep publishes.
func SweepSource(bucket string) string { return "/overture/ingest/sweep/" + bucket }

// Sweeper is the reconcile sweep: versitygw's notifications are
// fire-and-forget, so a notification sent while nothing listened is lost.
// Each run lists the uploads bucket and publishes IngestObjectCreated for
// every object without an upload record, and again for records whose
// processing stalled (received but not picked up for Idle, or leased by an
// attempt whose lease ran out). The ingest function is idempotent on the
// record, so publishing too much costs a no-op and nothing else.
type Sweeper struct {
	Store  *Store
	S3     *s3.Client
	Bucket string
	// Idle is how long a received upload may wait for its event before the
	// sweep announces it again (default 5 min).
	Idle time.Duration
}

// Run sweeps once and returns how many events it published.
func (w *Sweeper) Run(ctx context.Context, pub function.Publisher) (int, error) {
	if pub == nil {
		return 0, fmt.Errorf("sweep: no publisher in the context")
	}
	published := 0
	p := s3.NewListObjectsV2Paginator(w.S3, &s3.ListObjectsV2Input{Bucket: aws.String(w.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return published, fmt.Errorf("sweep: list %s: %w", w.Bucket, err)
		}
		keys, etags := make([]string, 0, len(page.Contents)), make([]string, 0, len(page.Contents))
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
			etags = append(etags, NormalizeETag(aws.ToString(o.ETag)))
		}
		known, err := w.Store.known(ctx, w.Bucket, keys, etags)
		if err != nil {
			return published, fmt.Errorf("sweep: %w", err)
		}
		var events []event.Event
		for i, o := range page.Contents {
			if known[[2]string{keys[i], etags[i]}] || etags[i] == "" {
				continue
			}
			d := eventtype.IngestObjectData{Bucket: w.Bucket, Key: keys[i], ETag: etags[i], Size: aws.ToInt64(o.Size)}
			if o.LastModified != nil {
				d.EventTime = o.LastModified.UTC().Format(time.RFC3339)
			}
			e, err := ObjectEvent(SweepSource(w.Bucket), d)
			if err != nil {
				return published, err
			}
			events = append(events, e)
		}
		if err := pub.Publish(ctx, events...); err != nil {
			return published, fmt.Errorf("sweep: publish: %w", err)
		}
		published += len(events)
	}
	idle := w.Idle
	if idle <= 0 {
		idle = 5 * time.Minute
	}
	stalled, err := w.Store.stalled(ctx, w.Bucket, idle)
	if err != nil {
		return published, fmt.Errorf("sweep: %w", err)
	}
	var events []event.Event
	for _, u := range stalled {
		d := eventtype.IngestObjectData{Bucket: u.Bucket, Key: u.Key, ETag: u.ETag, EventTime: u.CreatedAt.UTC().Format(time.RFC3339)}
		if u.Size != nil {
			d.Size = *u.Size
		}
		e, err := ObjectEvent(SweepSource(w.Bucket), d)
		if err != nil {
			return published, err
		}
		events = append(events, e)
	}
	if err := pub.Publish(ctx, events...); err != nil {
		return published, fmt.Errorf("sweep: publish: %w", err)
	}
	return published + len(events), nil
}
