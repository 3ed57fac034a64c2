package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/jonboulle/clockwork"
)

// Origin errors the HTTP layer maps to statuses.
var (
	ErrNotFound          = errors.New("object not found at the origin")
	ErrOriginUnreachable = errors.New("origin unreachable")
	ErrOriginTimeout     = errors.New("origin timed out")
	errNotModified       = errors.New("not modified")
	errChanged           = errors.New("object changed at the origin while being cached")
)

// origin reads objects from the S3 bucket in slices.
type origin struct {
	client  *s3.Client
	bucket  string
	timeout time.Duration
	clock   clockwork.Clock // stamps objectInfo.Fetched
}

func newOrigin(c Config) *origin {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	cl := s3.New(s3.Options{
		BaseEndpoint: aws.String(c.S3Endpoint),
		Region:       c.S3Region,
		Credentials:  credentials.NewStaticCredentialsProvider(c.S3AccessKey, c.S3SecretKey, ""),
		UsePathStyle: true,
		HTTPClient:   &http.Client{Transport: tr},
		// One quick retry: a POP must answer 502 fast when the origin is down
		// rather than queue listeners behind the SDK's backoff. No retry
		// quota: after an outage has drained it, the first request on a
		// stale pooled connection would otherwise fail without a retry.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 2
			o.RateLimiter = ratelimit.None
		}),
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	return &origin{client: cl, bucket: c.Bucket, timeout: c.OriginTimeout, clock: c.Clock}
}

// objectInfo is what the edge knows about one object.
type objectInfo struct {
	Key          string    `json:"key"`
	Size         int64     `json:"size"`
	ETag         string    `json:"etag"`
	LastModified time.Time `json:"last_modified"`
	ContentType  string    `json:"content_type"`
	Fetched      time.Time `json:"fetched"`
	Tag          string    `json:"tag,omitempty"`

	// Response header values, computed once per object (prepare); the
	// one-element slices go into the header map as they are, so a hit
	// allocates none.
	hdrLastMod, hdrLength, hdrType        string
	vETag, vLastMod, vLength, vType, vTag []string
}

// prepare precomputes the header values served with every hit.
func (i *objectInfo) prepare() {
	if !i.LastModified.IsZero() {
		i.hdrLastMod = i.LastModified.UTC().Format(http.TimeFormat)
	}
	i.hdrLength = strconv.FormatInt(i.Size, 10)
	i.hdrType = contentType(i.Key, i.ContentType)
	i.vETag, i.vLastMod, i.vLength, i.vType, i.vTag = one(i.ETag), one(i.hdrLastMod), one(i.hdrLength), one(i.hdrType), one(i.Tag)
}

// one is a header value list of v, nil for "".
func one(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

// hv returns the precomputed list pre when it still holds v, else a new one.
func hv(pre []string, v string) []string {
	if len(pre) == 1 && pre[0] == v {
		return pre
	}
	return []string{v}
}

// openSlice starts fetching bytes [off, off+n) of key and returns the
// object's metadata and the body to read (the caller must close it and call
// done). ifMatch pins the version (so slices of one object cannot mix
// versions); ifNoneMatch revalidates.
func (o *origin) openSlice(ctx context.Context, key string, off, n int64, ifMatch, ifNoneMatch string) (objectInfo, io.ReadCloser, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	in := &s3.GetObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	if ifNoneMatch != "" {
		in.IfNoneMatch = aws.String(ifNoneMatch)
	}
	out, err := o.client.GetObject(ctx, in)
	if err != nil && off == 0 && apiCode(err) == "InvalidRange" {
		// An empty object has no byte 0: fetch it whole.
		in.Range = nil
		out, err = o.client.GetObject(ctx, in)
	}
	if err != nil {
		err = classifyOrigin(ctx, key, err)
		cancel()
		return objectInfo{}, nil, nil, err
	}
	info := objectInfo{Key: key, ETag: aws.ToString(out.ETag), ContentType: aws.ToString(out.ContentType), Fetched: o.clock.Now(), Size: -1}
	if out.LastModified != nil {
		info.LastModified = out.LastModified.UTC().Truncate(time.Second)
	}
	if cr := aws.ToString(out.ContentRange); cr != "" {
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if sz, perr := strconv.ParseInt(cr[i+1:], 10, 64); perr == nil {
				info.Size = sz
			}
		}
	}
	if info.Size < 0 && in.Range == nil && out.ContentLength != nil {
		info.Size = *out.ContentLength
	}
	if info.Size < 0 {
		out.Body.Close()
		cancel()
		return objectInfo{}, nil, nil, fmt.Errorf("%w: %s: origin answered a range request without Content-Range", ErrOriginUnreachable, key)
	}
	info.prepare()
	return info, out.Body, cancel, nil
}

// getSlice fetches bytes [off, off+n) of key whole (revalidation).
func (o *origin) getSlice(ctx context.Context, key string, off, n int64, ifMatch, ifNoneMatch string) (objectInfo, []byte, error) {
	info, body, done, err := o.openSlice(ctx, key, off, n, ifMatch, ifNoneMatch)
	if err != nil {
		return objectInfo{}, nil, err
	}
	defer done()
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, n+1))
	if err != nil {
		return objectInfo{}, nil, classifyOrigin(ctx, key, fmt.Errorf("read body: %w", err))
	}
	if int64(len(b)) > n {
		return objectInfo{}, nil, fmt.Errorf("origin returned more than the %d bytes asked for %s", n, key)
	}
	return info, b, nil
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func classifyOrigin(ctx context.Context, key string, err error) error {
	switch apiCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchBucket":
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	case "NotModified":
		return errNotModified
	case "PreconditionFailed":
		return fmt.Errorf("%w: %s", errChanged, key)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotModified {
		return errNotModified
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w fetching %s: %v", ErrOriginTimeout, key, err)
	}
	return fmt.Errorf("%w fetching %s: %v", ErrOriginUnreachable, key, err)
}
