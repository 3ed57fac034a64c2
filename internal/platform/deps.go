package platform

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/ingest"
)

// Ports are the loopback ports of the embedded platform; 0 picks a free one
// (what tests do).
type Ports struct {
	Postgres, Redis, S3, SMTP, MailUI int
	Gateway, Ingress                  int
	// ServiceBase is the first port of the HTTP services; each service gets the
	// next one in Services() order. 0 gives each a free port.
	ServiceBase int
}

// DefaultPorts are the ports `overture dev` uses.
func DefaultPorts() Ports {
	return Ports{Postgres: 5433, Redis: 6380, S3: 7070, SMTP: 1025, MailUI: 8025, Gateway: 8080, Ingress: 8081, ServiceBase: 8100}
}

// Database is the database the embedded PostgreSQL serves Overture from.
const Database = "overture"

// dependency is one started (or external) dependency, for the URL table.
type dependency struct {
	name, url string
	started   bool
}

// startDeps starts every dependency the user did not point at, filling cfg
// with their URLs. Started processes join group, which stops them in reverse.
func (p *Platform) startDeps(ctx context.Context) error {
	cfg, o := p.cfg, p.opts
	if cfg[KeyDatabaseURL] == "" {
		pgDir := filepath.Join(o.DataDir, "postgres")
		if err := checkPostgresCanReach(pgDir); err != nil {
			// A checkout under /root: keep PostgreSQL's data where its
			// user can reach it, tied to this data directory.
			var rerr error
			if pgDir, rerr = relocatedPostgres(relocationBase, o.DataDir); rerr != nil {
				return fmt.Errorf("PostgreSQL data directory: %w", rerr)
			}
			p.log.Warn("PostgreSQL data moved out of the data directory", "reason", err.Error(), "postgres_dir", pgDir)
		}
		pg, err := infra.StartPostgres(ctx, infra.PostgresOptions{Dir: pgDir, Port: o.Ports.Postgres})
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		p.group.Add(pg.Process)
		p.procs = append(p.procs, pg.Process)
		if err := ensureDatabase(ctx, pg.URL("postgres"), Database); err != nil {
			return err
		}
		cfg[KeyDatabaseURL] = pg.URL(Database)
		p.deps = append(p.deps, dependency{"PostgreSQL", pg.URL(Database), true})
	} else {
		p.deps = append(p.deps, dependency{"PostgreSQL", redactURL(cfg[KeyDatabaseURL]), false})
	}
	if cfg[KeyRedisURL] == "" {
		r, err := infra.StartRedis(ctx, infra.RedisOptions{Dir: filepath.Join(o.DataDir, "redis"), Port: o.Ports.Redis, Persist: true})
		if err != nil {
			return fmt.Errorf("start Redis: %w", err)
		}
		p.group.Add(r.Process)
		p.procs = append(p.procs, r.Process)
		cfg[KeyRedisURL] = r.URL(0)
		p.deps = append(p.deps, dependency{"Redis", r.URL(0), true})
	} else {
		p.deps = append(p.deps, dependency{"Redis", redactURL(cfg[KeyRedisURL]), false})
	}
	if cfg[KeyS3Endpoint] == "" {
		if cfg[KeyS3AccessKey] == "" {
			cfg[KeyS3AccessKey] = DefaultS3AccessKey
		}
		if cfg[KeyS3SecretKey] == "" {
			cfg[KeyS3SecretKey] = DefaultS3SecretKey
		}
		if cfg[KeyS3Region] == "" {
			cfg[KeyS3Region] = DefaultS3Region
		}
		// versitygw posts its test event at start and exits if nothing
		// answers: the S3 event source listens first.
		webhook, err := p.startS3Events(cfg)
		if err != nil {
			return err
		}
		s, err := infra.StartS3(ctx, infra.S3Options{Dir: filepath.Join(o.DataDir, "s3"), Port: o.Ports.S3,
			AccessKey: cfg[KeyS3AccessKey], SecretKey: cfg[KeyS3SecretKey], Region: cfg[KeyS3Region],
			EventWebhookURL: webhook, EventFilter: []string{"s3:ObjectCreated:*"}})
		if err != nil {
			return fmt.Errorf("start S3 (versitygw): %w", err)
		}
		p.group.Add(s.Process)
		p.procs = append(p.procs, s.Process)
		// The CDN's origin bucket, where renditions go, and the uploads
		// bucket admins put audio into (internal/ingest).
		for _, b := range []string{cmp.Or(cfg["CDN_BUCKET"], ingest.DefaultMediaBucket), cmp.Or(cfg["INGEST_BUCKET"], ingest.DefaultUploadsBucket)} {
			if err := s.EnsureBucket(ctx, b); err != nil {
				return err
			}
		}
		// The admin console PUTs upload parts from the gateway's pages
		// straight to the uploads bucket, cross-origin (docs/webapp.md).
		if err := s.AllowBrowserUploads(ctx, cmp.Or(cfg["INGEST_BUCKET"], ingest.DefaultUploadsBucket),
			browserOrigins(cfg[KeyPublicBaseURL], p.gatewayURL)); err != nil {
			return err
		}
		cfg[KeyS3Endpoint] = s.Endpoint()
		p.deps = append(p.deps, dependency{"S3 (versitygw)", s.Endpoint() + "  access key " + cfg[KeyS3AccessKey], true})
	} else {
		if cfg[KeyS3Region] == "" {
			cfg[KeyS3Region] = DefaultS3Region
		}
		p.deps = append(p.deps, dependency{"S3", cfg[KeyS3Endpoint], false})
	}
	if cfg[KeySMTPURL] == "" {
		m, err := infra.StartSMTP(ctx, infra.SMTPOptions{Dir: filepath.Join(o.DataDir, "mailpit"), SMTPPort: o.Ports.SMTP, HTTPPort: o.Ports.MailUI})
		if err != nil {
			return fmt.Errorf("start SMTP sink (mailpit): %w", err)
		}
		p.group.Add(m.Process)
		p.procs = append(p.procs, m.Process)
		cfg[KeySMTPURL] = m.URL()
		cfg[KeyMailpitURL] = m.APIURL()
		p.deps = append(p.deps, dependency{"SMTP (mailpit)", m.URL(), true}, dependency{"Mail UI (mailpit)", m.APIURL(), true})
	} else {
		p.deps = append(p.deps, dependency{"SMTP", redactURL(cfg[KeySMTPURL]), false})
		if cfg[KeyMailpitURL] != "" {
			p.deps = append(p.deps, dependency{"Mail UI", cfg[KeyMailpitURL], false})
		}
	}
	return nil
}

// browserOrigins are the origins (scheme://host[:port]) of the URLs, each
// once, in order; a URL without a host is left out.
func browserOrigins(urls ...string) []string {
	var out []string
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Host == "" {
			continue
		}
		if o := u.Scheme + "://" + u.Host; !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// startS3Events starts the S3 event source (internal/ingest.Source) on a
// loopback port and returns the webhook URL versitygw is to post to. The
// source publishes to the broker ingress (BROKER_URL) with the workload
// identity ingest-source, as it would on Knative; the ingress is bound
// already and serves once the broker runs; a notification that arrives
// before is answered 503 and its object found by the sweep. The URL's token
// (INGEST_WEBHOOK_SECRET, or a random one per start) is how the source tells
// versitygw's posts from anyone else's.
func (p *Platform) startS3Events(cfg map[string]string) (string, error) {
	ln, err := listen(0, "S3 event source")
	if err != nil {
		return "", err
	}
	secret := cfg["INGEST_WEBHOOK_SECRET"]
	if secret == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			ln.Close()
			return "", fmt.Errorf("S3 event source secret: %w", err)
		}
		secret = hex.EncodeToString(b)
	}
	src := &ingest.Source{
		Bucket: cmp.Or(cfg["INGEST_BUCKET"], ingest.DefaultUploadsBucket), Secret: secret,
		Publisher: function.NewHTTPPublisher(cfg[KeyBrokerURL], nil).WithToken(p.TokenSource(ingest.SourceName)),
		Log:       p.log.With("component", ingest.SourceName),
	}
	base := "http://" + ln.Addr().String()
	p.spawn("S3 event source", serveListener(ln, src, p.log))
	p.deps = append(p.deps, dependency{"S3 events (ingest-source)", base + ingest.WebhookPath, true})
	return ingest.WebhookURL(base, secret), nil
}

// ensureDatabase creates db on the server at adminURL unless it exists.
func ensureDatabase(ctx context.Context, adminURL, db string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL to create database %s: %w", db, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(cctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", db, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P04" { // created concurrently
			return nil
		}
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}

// relocationBase is where PostgreSQL's data goes when its user cannot reach
// the data directory.
const relocationBase = "/var/lib/overture"

// relocatedPostgres returns the PostgreSQL directory of dataDir under base.
// It lives and dies with the data directory: a marker file in dataDir names
// it, so a removed data directory (a fresh start) starts a fresh database too
// — the old one's signing keys are encrypted with a key that was kept in the
// removed directory and could no longer be read. The database of an earlier
// data directory at the same path is removed.
func relocatedPostgres(base, dataDir string) (string, error) {
	marker := filepath.Join(dataDir, "postgres.location")
	if b, err := os.ReadFile(marker); err == nil {
		if dir := strings.TrimSpace(string(b)); dir != "" {
			return dir, nil
		}
	}
	sum := sha256.Sum256([]byte(dataDir))
	checkout := filepath.Join(base, hex.EncodeToString(sum[:6]))
	// An earlier release kept it at checkout/postgres, without a marker:
	// adopt it while the data directory it belongs to is still whole.
	legacy := filepath.Join(checkout, "postgres")
	if _, err := os.Stat(filepath.Join(dataDir, authKeyFile)); err == nil {
		if _, err := os.Stat(legacy); err == nil {
			return legacy, os.WriteFile(marker, []byte(legacy+"\n"), 0o644)
		}
	}
	if err := os.RemoveAll(checkout); err != nil {
		return "", err
	}
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	dir := filepath.Join(checkout, hex.EncodeToString(id), "postgres")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(marker, []byte(dir+"\n"), 0o644)
}
