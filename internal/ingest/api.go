package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/server"
	"github.com/overture-music/overture/internal/token"
)

// Name is the admin API's service name.
const Name = "ingest-admin"

// PresignTTL is how long the presigned part URLs stay valid.
const PresignTTL = time.Hour

// Service is the uploads admin API: an admin announces an upload and gets
// presigned S3 multipart-upload URLs, so the bytes go straight to storage;
// completing the upload makes versitygw notify the S3 event source, and
// ingestion takes it from there. GET shows each upload's state.
type Service struct {
	lifecycle.Base
	// Pool and Verifier may be set before Start (tests).
	Pool     *pgxpool.Pool
	Verifier *token.Verifier

	cfg     Config
	store   *Store
	s3      *s3.Client
	presign *s3.PresignClient
	once    sync.Once
	handler http.Handler
}

// NewService returns an unstarted admin API.
func NewService() *Service { return &Service{} }

// Name implements server.Service.
func (s *Service) Name() string { return Name }

var apiRoutes = []server.Route{
	{Method: http.MethodPost, Path: "/v1/admin/uploads"},
	{Method: http.MethodGet, Path: "/v1/admin/uploads"},
	{Method: http.MethodGet, Path: "/v1/admin/uploads/{id}"},
	{Method: http.MethodPost, Path: "/v1/admin/uploads/{id}/complete"},
}

// Routes implements server.Service.
func (s *Service) Routes() []server.Route { return append([]server.Route(nil), apiRoutes...) }

// APIConfig is the admin API's settings: the ingestion settings (Config),
// the token settings (token.ReadVerifierConfig) and S3_PUBLIC_ENDPOINT
// (default S3_ENDPOINT), the endpoint presigned URLs name, the one clients
// reach.
type APIConfig struct {
	Config
	Token          token.VerifierConfig
	PublicEndpoint string
}

// Read fills c from r; every problem is recorded on r.
func (c *APIConfig) Read(r *config.Reader) {
	c.Config.Read(r)
	c.Token = token.ReadVerifierConfig(r)
	c.PublicEndpoint = r.URLOr("S3_PUBLIC_ENDPOINT", c.S3.Endpoint)
}

// ConfigKeys lists the settings the service reads.
func (s *Service) ConfigKeys() []config.Key { return config.KeysFor[APIConfig]() }

// Start reads APIConfig and opens and migrates the database (unless a test
// set Pool).
func (s *Service) Start(ctx context.Context, cfg map[string]string) error {
	c, err := config.Parse[APIConfig](cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	s.cfg = c.Config
	if s.Pool, err = s.UsePool(ctx, s.Pool, c.DatabaseURL, Migrate); err != nil {
		return fmt.Errorf("%s: %w", Name, err)
	}
	s.store = &Store{Pool: s.Pool}
	s.s3 = c.S3.Client()
	pub := c.S3
	pub.Endpoint = c.PublicEndpoint
	s.presign = s3.NewPresignClient(pub.Client())
	if s.Verifier == nil {
		s.Verifier = c.Token.Verifier()
	}
	s.build()
	return nil
}

// Ready reports whether the database answers.
func (s *Service) Ready(ctx context.Context) (bool, error) {
	if s.Pool == nil {
		return false, errors.New(Name + ": not started")
	}
	if err := s.Pool.Ping(ctx); err != nil {
		return false, fmt.Errorf("%s: database: %w", Name, err)
	}
	return true, nil
}

// ServeHTTP implements server.Service.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.handler == nil {
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "not-started", "the uploads API is starting"))
		return
	}
	s.handler.ServeHTTP(w, r)
}

func (s *Service) build() {
	s.once.Do(func() {
		mux := http.NewServeMux()
		h := map[string]func(http.ResponseWriter, *http.Request) error{
			"POST /v1/admin/uploads":               s.create,
			"GET /v1/admin/uploads":                s.list,
			"GET /v1/admin/uploads/{id}":           s.get,
			"POST /v1/admin/uploads/{id}/complete": s.complete,
		}
		for _, rt := range apiRoutes {
			mux.Handle(rt.Pattern(), server.Handle(s.Log, "uploads API", h[rt.Pattern()]))
		}
		s.handler = s.Verifier.Middleware(s.Log, token.RequireRole(token.RoleAdmin, mux))
	})
}

// CreateRequest is the body of POST /v1/admin/uploads.
type CreateRequest struct {
	Filename    string `json:"filename"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	// AutoPublish overrides INGEST_AUTO_PUBLISH for this upload.
	AutoPublish *bool `json:"auto_publish"`
	// ReplaceTrackID gives an existing track this audio.
	ReplaceTrackID string `json:"replace_track_id"`
}

// Part is one presigned part upload: PUT the bytes [Offset, Offset+Size)
// of the file to URL and keep the ETag header of the answer.
type Part struct {
	Number int32  `json:"number"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	URL    string `json:"url,omitempty"`
	// ETag is set for a part storage already has (GET of a pending upload).
	ETag string `json:"etag,omitempty"`
}

// Multipart is how to send a pending upload's bytes.
type Multipart struct {
	PartSize  int64     `json:"part_size"`
	Parts     []Part    `json:"parts"`
	ExpiresAt time.Time `json:"expires_at"`
	// Complete is where to POST once every part is stored.
	Complete string `json:"complete"`
}

// UploadAnswer is an upload with, while it is pending, how to send it.
type UploadAnswer struct {
	Upload
	Multipart *Multipart `json:"multipart,omitempty"`
	// Track is the catalog's track of a ready upload (GET and the list).
	Track *catalog.TrackView `json:"track,omitempty"`
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) error {
	var in CreateRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return problem.BadRequest("the body must be a JSON object {filename, size, content_type, auto_publish, replace_track_id}: " + err.Error())
	}
	errs := map[string]string{}
	name := path.Base(strings.ReplaceAll(in.Filename, `\`, "/"))
	if in.Filename == "" || name == "." || name == "/" || !utf8.ValidString(name) || len(name) > 255 || strings.ContainsRune(name, 0) {
		errs["filename"] = "must be a file name of 1 to 255 bytes"
	}
	if in.Size <= 0 {
		errs["size"] = "must be the file's size in bytes, at least 1"
	} else if in.Size > s.cfg.MaxBytes {
		errs["size"] = fmt.Sprintf("must be at most %d bytes (INGEST_MAX_BYTES)", s.cfg.MaxBytes)
	}
	if in.ReplaceTrackID != "" {
		if _, err := uuid.Parse(in.ReplaceTrackID); err != nil {
			errs["replace_track_id"] = "must be a track id (UUID)"
		}
	}
	if len(errs) > 0 {
		return problem.Validation(errs)
	}
	if in.ContentType == "" {
		in.ContentType = "application/octet-stream"
	}
	claims, _ := token.FromContext(r.Context())
	id := uuid.NewString()
	key := "admin/" + id + "/" + name
	meta := map[string]string{}
	if in.ReplaceTrackID != "" {
		meta["overture-track-id"] = in.ReplaceTrackID
	}
	if in.AutoPublish != nil {
		meta["overture-auto-publish"] = strconv.FormatBool(*in.AutoPublish)
	}
	mp, err := s.s3.CreateMultipartUpload(r.Context(), &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.cfg.UploadsBucket), Key: aws.String(key), ContentType: aws.String(in.ContentType), Metadata: meta,
	})
	if err != nil {
		return fmt.Errorf("create multipart upload: %w", err)
	}
	u, err := s.store.Announce(r.Context(), Upload{ID: id, Bucket: s.cfg.UploadsBucket, Key: key, Size: &in.Size,
		UploaderID: claims.Subject, Filename: name, ContentType: in.ContentType, MultipartID: aws.ToString(mp.UploadId),
		AutoPublish: in.AutoPublish, ReplaceTrackID: in.ReplaceTrackID})
	if err != nil {
		return err
	}
	ans, err := s.answer(r.Context(), u, false)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, ans)
}

// answer adds fresh presigned URLs to a pending upload; withStored lists
// the parts storage already has (a resumed upload sends only the others).
func (s *Service) answer(ctx context.Context, u Upload, withStored bool) (UploadAnswer, error) {
	ans := UploadAnswer{Upload: u}
	if u.State != StatePending || u.MultipartID == "" || u.Size == nil {
		return ans, nil
	}
	stored := map[int32]string{}
	if withStored {
		p := s3.NewListPartsPaginator(s.s3, &s3.ListPartsInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key), UploadId: aws.String(u.MultipartID)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			var ae smithy.APIError
			if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
				// Completed, and storage's notification not yet recorded:
				// nothing is left to send.
				return ans, nil
			}
			if err != nil {
				return ans, fmt.Errorf("list parts of upload %s: %w", u.ID, err)
			}
			for _, pt := range page.Parts {
				stored[aws.ToInt32(pt.PartNumber)] = NormalizeETag(aws.ToString(pt.ETag))
			}
		}
	}
	size, ps := *u.Size, s.cfg.PartSize
	m := &Multipart{PartSize: ps, ExpiresAt: time.Now().Add(PresignTTL).UTC(), Complete: "/v1/admin/uploads/" + u.ID + "/complete"}
	for n, off := int32(1), int64(0); off < size; n, off = n+1, off+ps {
		pt := Part{Number: n, Offset: off, Size: min(ps, size-off)}
		if etag, ok := stored[n]; ok {
			pt.ETag = etag
		} else {
			req, err := s.presign.PresignUploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key),
				UploadId: aws.String(u.MultipartID), PartNumber: aws.Int32(n), ContentLength: aws.Int64(pt.Size)},
				s3.WithPresignExpires(PresignTTL))
			if err != nil {
				return ans, fmt.Errorf("presign part %d of upload %s: %w", n, u.ID, err)
			}
			pt.URL = req.URL
		}
		m.Parts = append(m.Parts, pt)
	}
	ans.Multipart = m
	return ans, nil
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) error {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return problem.Validation(map[string]string{"limit": "must be 1 to 500"})
		}
		limit = n
	}
	var before time.Time
	if v := r.URL.Query().Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return problem.Validation(map[string]string{"before": "must be an RFC 3339 time (the created_at of the last upload of the previous page)"})
		}
		before = t
	}
	us, err := s.store.List(r.Context(), limit, before)
	if err != nil {
		return err
	}
	ans := make([]UploadAnswer, len(us))
	for i, u := range us {
		ans[i] = UploadAnswer{Upload: u}
	}
	if err := s.store.withTracks(r.Context(), ans); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"uploads": ans})
}

func (s *Service) load(r *http.Request) (Upload, error) {
	u, err := s.store.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		return u, problem.New(http.StatusNotFound, "not-found", fmt.Sprintf("no upload with id %q", r.PathValue("id")))
	}
	return u, err
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) error {
	u, err := s.load(r)
	if err != nil {
		return err
	}
	ans, err := s.answer(r.Context(), u, true)
	if err != nil {
		return err
	}
	one := []UploadAnswer{ans}
	if err := s.store.withTracks(r.Context(), one); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, one[0])
}

// complete finishes the multipart upload from the parts storage holds (the
// client need not send their ETags); versitygw then announces the object.
func (s *Service) complete(w http.ResponseWriter, r *http.Request) error {
	u, err := s.load(r)
	if err != nil {
		return err
	}
	if u.State != StatePending {
		return writeJSON(w, http.StatusOK, UploadAnswer{Upload: u})
	}
	var parts []types.CompletedPart
	var total int64
	p := s3.NewListPartsPaginator(s.s3, &s3.ListPartsInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key), UploadId: aws.String(u.MultipartID)})
	for p.HasMorePages() {
		page, err := p.NextPage(r.Context())
		if err != nil {
			return fmt.Errorf("list parts of upload %s: %w", u.ID, err)
		}
		for _, pt := range page.Parts {
			parts = append(parts, types.CompletedPart{PartNumber: pt.PartNumber, ETag: pt.ETag})
			total += aws.ToInt64(pt.Size)
		}
	}
	if u.Size != nil && total != *u.Size {
		return problem.New(http.StatusConflict, "incomplete", fmt.Sprintf("storage holds %d of the %d bytes announced; upload the missing parts (GET /v1/admin/uploads/%s lists them) and complete again", total, *u.Size, u.ID))
	}
	if _, err := s.s3.CompleteMultipartUpload(r.Context(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key),
		UploadId: aws.String(u.MultipartID), MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		return fmt.Errorf("complete upload %s: %w", u.ID, err)
	}
	u, err = s.store.Get(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, UploadAnswer{Upload: u})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
