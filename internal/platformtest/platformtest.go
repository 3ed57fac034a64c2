// Package platformtest starts the whole platform for a test, as a user
// outside it would meet it: the embedded platform with every function and
// service on private PostgreSQL, Redis, SMTP (mailpit) and its own versitygw
// (so bucket notifications reach ingestion, as in make run), a real CDN POP
// in front of that versitygw, and the payment sandbox on a free port. It
// then signs an admin in, and offers what journeys need: listeners who sign
// up through the emailed link, tracks ingested from ffmpeg-made audio,
// premium bought with the sandbox's card.
//
// It exists so the end-to-end, attack and browser tests share one set-up
// instead of three copies that drift. Packages using it run under
// testenv.Main.
package platformtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/edge/edgetest"
	"github.com/overture-music/overture/edge/urlsign"
	"github.com/overture-music/overture/internal/auth"
	"github.com/overture-music/overture/internal/infra"
	"github.com/overture-music/overture/internal/payment/sandbox"
	"github.com/overture-music/overture/internal/platform"
	"github.com/overture-music/overture/internal/steering"
	"github.com/overture-music/overture/internal/telemetry"
	"github.com/overture-music/overture/internal/testenv"
)

// SigningKeyID names the CDN signing key of the platform (CDN_SIGNING_KEYS).
const SigningKeyID = "k1"

// Payment settings the platform's adapter and the sandbox share.
const (
	ShopID        = "platformtest-shop"
	ShopSecret    = "platformtest-shop-secret"
	WebhookSecret = "platformtest-webhook-secret-0123456789"
)

// Platform is one started platform and the clients to reach it.
type Platform struct {
	*platform.Platform
	DB      *pgxpool.Pool
	Redis   *redis.Client
	S3      *s3.Client
	S3URL   string
	MailAPI string
	// POP is the one CDN point of presence (region eu-west).
	POP       steering.POP
	POPServer *edge.Server
	// SigningKey is the secret the POP verifies URLs with.
	SigningKey []byte
	Admin      Account
	Client     *http.Client
	Sandbox    *sandbox.Sandbox
}

// Account is a signed-in user.
type Account struct{ ID, Email, Password, Access, Refresh string }

// Options change the set-up; the zero value is the usual one.
type Options struct {
	// Env is added to (and overrides) the platform's environment.
	Env map[string]string
}

// Start starts the platform for t; everything stops when t ends.
func Start(t *testing.T, o Options) *Platform {
	t.Helper()
	// The POP must name its origin before the platform starts versitygw, and
	// steering must name the POP before the platform starts: the S3 port is
	// picked here and handed to both.
	s3Port, err := infra.FreePort()
	require.NoError(t, err)
	s3URL := "http://127.0.0.1:" + strconv.Itoa(s3Port)
	// The payment provider: the sandbox behind a listener bound here (make
	// run's fixed port may be taken), told the gateway's webhook once the
	// gateway exists.
	pay := &provider{}
	payLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	paySrv := &http.Server{Handler: pay, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = paySrv.Serve(payLn) }()
	t.Cleanup(func() { _ = paySrv.Close() })

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	secret := base64.RawURLEncoding.EncodeToString(key)
	origin := &edgetest.Origin{Endpoint: s3URL, AccessKey: platform.DefaultS3AccessKey, SecretKey: platform.DefaultS3SecretKey}
	pops, servers := origin.StartPOPs(t, urlsign.Keys{SigningKeyID: []byte(secret)}, steering.POP{Name: "pop-a", Region: "eu-west"})
	smtpURL, mailAPI := testenv.SMTP(t)
	dbURL, redisURL := testenv.Postgres(t), testenv.Redis(t)
	slot := Slot(t)
	env := map[string]string{
		platform.KeyDatabaseURL: dbURL, platform.KeyRedisURL: redisURL,
		platform.KeySMTPURL: smtpURL, platform.KeyMailpitURL: mailAPI,
		// Replication slots are per server: one for each test.
		platform.KeyCDCSlot: slot, platform.KeyCDCPublication: slot,
		"CDN_POPS": edgetest.POPList(pops), "CDN_ADMIN_SECRET": edgetest.AdminSecret,
		"CDN_SIGNING_KEYS": SigningKeyID + ":" + secret,
		sandbox.KeyAddr:    "off", "PAYMENT_PROVIDER_URL": "http://" + payLn.Addr().String() + "/v3",
		"PAYMENT_SHOP_ID": ShopID, "PAYMENT_SECRET_KEY": ShopSecret, "PAYMENT_WEBHOOK_SECRET": WebhookSecret,
	}
	for k, v := range o.Env {
		env[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Options{Env: env, DataDir: t.TempDir(), Ports: platform.Ports{S3: s3Port},
		Log: telemetry.NewLogger(io.Discard, nil), ManifestDirs: []string{root(t) + "/brokers", root(t) + "/triggers"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	sb := sandbox.New(sandbox.Config{ShopID: ShopID, SecretKey: ShopSecret, WebhookSecret: WebhookSecret,
		WebhookURL: p.GatewayURL() + "/v1/payments/webhook", WebhookDelay: 100 * time.Millisecond})
	t.Cleanup(sb.Close)
	pay.sb.Store(sb)

	db, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	ro, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(ro)
	t.Cleanup(func() { _ = rdb.Close() })
	tp := &Platform{Platform: p, DB: db, Redis: rdb, S3URL: s3URL, MailAPI: mailAPI, POP: pops[0], POPServer: servers[0],
		SigningKey: []byte(secret), Client: &http.Client{Timeout: 30 * time.Second}, Sandbox: sb,
		S3: s3.New(s3.Options{BaseEndpoint: aws.String(s3URL), Region: platform.DefaultS3Region, UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(platform.DefaultS3AccessKey, platform.DefaultS3SecretKey, "")})}
	tp.Admin = Account{Email: "admin@example.com", Password: "admin password 1"}
	tp.Admin.ID, _, err = auth.CreateAdmin(context.Background(), db, tp.Admin.Email, tp.Admin.Password, auth.DefaultArgon2)
	require.NoError(t, err)
	tp.Login(t, &tp.Admin)
	return tp
}

// provider serves the payment sandbox once it is set (503 before).
type provider struct {
	sb atomic.Pointer[sandbox.Sandbox]
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sb := p.sb.Load()
	if sb == nil {
		http.Error(w, "provider not ready", http.StatusServiceUnavailable)
		return
	}
	sb.ServeHTTP(w, r)
}

// Slot is a replication slot (and publication) name unique to the test.
func Slot(t *testing.T) string {
	return "pt_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
}

// root is the repository root (brokers/ and triggers/ are there).
func root(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	mod := strings.TrimSpace(string(out))
	require.NotEmpty(t, mod, "not inside the module")
	return strings.TrimSuffix(mod, "/go.mod")
}

// Login signs a in with its password and fills its tokens and id.
func (p *Platform) Login(t *testing.T, a *Account) {
	t.Helper()
	var lr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		UserID       string `json:"user_id"`
	}
	p.CallJSON(t, "POST", "/v1/auth/login", "", map[string]string{"email": a.Email, "password": a.Password}, http.StatusOK, &lr)
	a.Access, a.Refresh = lr.AccessToken, lr.RefreshToken
	var me struct {
		UserID string `json:"user_id"`
	}
	p.CallJSON(t, "GET", "/v1/auth/me", a.Access, nil, http.StatusOK, &me)
	a.ID = me.UserID
	require.NotEmpty(t, a.ID)
}

// Listener signs a listener up, confirms through the link mailed to them
// (whatever page of the web app it opens, its token goes to the API, as
// that page does) and signs in.
func (p *Platform) Listener(t *testing.T, email string) Account {
	t.Helper()
	a := Account{Email: email, Password: "listener password 1"}
	p.CallJSON(t, "POST", "/v1/auth/register", "", map[string]string{"email": a.Email, "password": a.Password}, http.StatusCreated, nil)
	link := p.MailLink(t, a.Email, "token=")
	tok := link[strings.LastIndex(link, "token=")+len("token="):]
	p.CallJSON(t, "GET", "/v1/auth/confirm?token="+tok, "", nil, http.StatusOK, nil)
	p.Login(t, &a)
	return a
}

// BuyPremium buys a monthly subscription with the sandbox's succeeding
// card and signs in again once the saga made the listener premium.
func (p *Platform) BuyPremium(t *testing.T, a *Account) {
	t.Helper()
	p.CallJSON(t, "POST", "/v1/subscriptions", a.Access, map[string]string{"plan": "monthly", "payment_method": sandbox.CardSuccess}, http.StatusAccepted, nil)
	require.Eventually(t, func() bool {
		var me struct {
			Premium bool `json:"premium"`
		}
		p.CallJSON(t, "GET", "/v1/auth/me", a.Access, nil, http.StatusOK, &me)
		return me.Premium
	}, 2*time.Minute, 250*time.Millisecond, "%s never became premium", a.Email)
	// The access token in hand predates the purchase: a new one says premium.
	p.Login(t, a)
}

// Do sends a request through the gateway (a JSON body when body is not nil).
func (p *Platform) Do(t *testing.T, method, path, bearer string, body any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.GatewayURL()+path, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := p.Client.Do(req)
	require.NoError(t, err)
	return resp
}

// Call sends a request through the gateway, checks the status and returns
// the body.
func (p *Platform) Call(t *testing.T, method, path, bearer string, body any, want int) []byte {
	t.Helper()
	resp := p.Do(t, method, path, bearer, body)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, b)
	return b
}

// CallJSON is Call decoding the answer into into (when not nil).
func (p *Platform) CallJSON(t *testing.T, method, path, bearer string, body any, want int, into any) {
	t.Helper()
	b := p.Call(t, method, path, bearer, body, want)
	if into != nil {
		require.NoError(t, json.Unmarshal(b, into), "%s", b)
	}
}

// Status is the status of a GET of u (any URL), body discarded.
func (p *Platform) Status(t *testing.T, u string) int {
	t.Helper()
	resp, err := p.Client.Get(u)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Body is the body of a GET of u, which must answer 200.
func (p *Platform) Body(t *testing.T, u string) string {
	t.Helper()
	resp, err := p.Client.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", u, b)
	return string(b)
}

// GetJSON decodes the 200 answer of a GET of u.
func (p *Platform) GetJSON(t *testing.T, u string, into any) {
	t.Helper()
	resp, err := p.Client.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, u)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
}
