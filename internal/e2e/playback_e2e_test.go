package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

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

func TestMain(m *testing.M) { testenv.Main(m) }

// suite is the embedded platform with every function and service, its own
// versitygw (so its bucket notifications reach the S3 event source, as in
// make run), a real POP in front of that versitygw and the payment sandbox
// on a free port.
type suite struct {
	p       *platform.Platform
	db      *pgxpool.Pool
	s3      *s3.Client
	mailAPI string
	client  *http.Client
	admin   account
}

type account struct{ email, password, access string }

func start(t *testing.T) *suite {
	t.Helper()
	// The POP must name its origin before the platform starts versitygw, and
	// steering must name the POP before the platform starts: the S3 port is
	// picked here and handed to both.
	s3Port, err := infra.FreePort()
	require.NoError(t, err)
	// The payment provider: the sandbox on a port bound here (make run's
	// fixed one may be taken), told the gateway's webhook once that exists.
	pay := &provider{}
	payLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	paySrv := &http.Server{Handler: pay, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = paySrv.Serve(payLn) }()
	t.Cleanup(func() { _ = paySrv.Close() })
	s3URL := "http://127.0.0.1:" + strconv.Itoa(s3Port)
	// CDN_SIGNING_KEYS holds the secret as text (urlsign.ParseKeys).
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	secret := base64.RawURLEncoding.EncodeToString(raw)
	origin := &edgetest.Origin{Endpoint: s3URL, AccessKey: platform.DefaultS3AccessKey, SecretKey: platform.DefaultS3SecretKey}
	pops, _ := origin.StartPOPs(t, urlsign.Keys{"k1": []byte(secret)}, steering.POP{Name: "pop-a", Region: "eu-west"})
	smtpURL, mailAPI := testenv.SMTP(t)
	dbURL := testenv.Postgres(t)
	env := map[string]string{
		platform.KeyDatabaseURL: dbURL, platform.KeyRedisURL: testenv.Redis(t),
		platform.KeySMTPURL: smtpURL, platform.KeyMailpitURL: mailAPI,
		platform.KeyCDCSlot: "e2e_" + slotName(t), platform.KeyCDCPublication: "e2e_" + slotName(t),
		"CDN_POPS": edgetest.POPList(pops), "CDN_ADMIN_SECRET": edgetest.AdminSecret,
		"CDN_SIGNING_KEYS": "k1:" + secret,
		sandbox.KeyAddr:    "off", "PAYMENT_PROVIDER_URL": "http://" + payLn.Addr().String() + "/v3",
		"PAYMENT_SHOP_ID": "e2e-shop", "PAYMENT_SECRET_KEY": "e2e-shop-secret", "PAYMENT_WEBHOOK_SECRET": webhookSecret,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Options{Env: env, DataDir: t.TempDir(), Ports: platform.Ports{S3: s3Port},
		Log: telemetry.NewLogger(io.Discard, nil), ManifestDirs: []string{"../../brokers", "../../triggers"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	sb := sandbox.New(sandbox.Config{ShopID: "e2e-shop", SecretKey: "e2e-shop-secret", WebhookSecret: webhookSecret,
		WebhookURL: p.GatewayURL() + "/v1/payments/webhook", WebhookDelay: 100 * time.Millisecond})
	t.Cleanup(sb.Close)
	pay.sb.Store(sb)
	db, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	s := &suite{p: p, db: db, mailAPI: mailAPI, client: &http.Client{Timeout: 30 * time.Second},
		s3: s3.New(s3.Options{BaseEndpoint: aws.String(s3URL), Region: platform.DefaultS3Region, UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(platform.DefaultS3AccessKey, platform.DefaultS3SecretKey, "")})}
	s.admin = account{email: "admin@example.com", password: "admin password 1"}
	_, _, err = auth.CreateAdmin(context.Background(), db, s.admin.email, s.admin.password, auth.DefaultArgon2)
	require.NoError(t, err)
	s.login(t, &s.admin)
	return s
}

const webhookSecret = "e2e-webhook-secret-0123456789"

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

func slotName(t *testing.T) string {
	return strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
}

// An audio file put into the uploads bucket with a plain S3 client becomes a
// track with its tags, duration and loudness; published, it plays through a
// POP in ffmpeg — every variant the listener may play, completely and at its
// bit rate — with the 256k variant for the premium listener only; an
// unpublish stops the URLs already issued within seconds.
func TestUploadPublishPlayUnpublish(t *testing.T) {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required (hack/deps installs it)", tool)
		}
	}
	s := start(t)
	ctx := context.Background()

	// The source: 24 s of stereo FLAC (lossless, so a FLAC rendition is made
	// too) with Cyrillic tags and an attached cover.
	dir := t.TempDir()
	src := filepath.Join(dir, "source.flac")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=330:duration=24:sample_rate=44100",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=24:sample_rate=44100",
		"-f", "lavfi", "-i", "color=c=teal:s=640x640:d=1",
		"-filter_complex", "[0:a][1:a]amerge=inputs=2,volume=-9dB[a]", "-map", "[a]", "-map", "2:v",
		"-c:a", "flac", "-c:v", "mjpeg", "-frames:v", "1", "-disposition:v", "attached_pic",
		"-metadata", "title=Группа крови", "-metadata", "artist=Кино", "-metadata", "album=Группа крови",
		"-metadata", "date=1988", src)
	wantDur := probeDuration(t, src)
	wantLUFS := measureLoudness(t, src)

	// Put it into the uploads bucket as an admin's S3 client would.
	key := "e2e/" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/gruppa-krovi.flac"
	f, err := os.Open(src)
	require.NoError(t, err)
	defer f.Close()
	_, err = s.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String(key), Body: f, ContentType: aws.String("audio/flac")})
	require.NoError(t, err)

	// The upload record (admin API) goes ready with a track.
	var up struct {
		ID, Key, State, Reason, Detail string
		TrackID                        string `json:"track_id"`
	}
	require.Eventually(t, func() bool {
		var list struct {
			Uploads []json.RawMessage `json:"uploads"`
		}
		s.callJSON(t, "GET", "/v1/admin/uploads?limit=50", s.admin.access, nil, http.StatusOK, &list)
		for _, raw := range list.Uploads {
			var u = up
			require.NoError(t, json.Unmarshal(raw, &u))
			if u.Key != key {
				continue
			}
			require.NotEqual(t, "failed", u.State, "ingestion failed: %s: %s", u.Reason, u.Detail)
			up = u
			return u.State == "ready"
		}
		return false
	}, 2*time.Minute, 200*time.Millisecond, "upload of %s never got ready (last: %+v)", key, up)
	require.NotEmpty(t, up.TrackID)
	id := up.TrackID

	// The draft track: tags, duration within 50 ms of ffprobe's, loudness
	// within 0.5 LU of ffmpeg's own measurement.
	var title, state, album string
	var durMS int
	var lufs float64
	var artists []string
	require.NoError(t, s.db.QueryRow(ctx, `SELECT t.title, t.state, coalesce(al.title, ''), t.duration_ms, t.loudness_lufs,
		array(SELECT a.name FROM track_artist ta JOIN artist a ON a.id = ta.artist_id WHERE ta.track_id = t.id ORDER BY ta.position)
		FROM track t LEFT JOIN album al ON al.id = t.album_id WHERE t.id = $1`, id).Scan(&title, &state, &album, &durMS, &lufs, &artists))
	require.Equal(t, "Группа крови", title)
	require.Equal(t, "draft", state)
	require.Equal(t, "Группа крови", album)
	require.Equal(t, []string{"Кино"}, artists)
	require.InDelta(t, wantDur.Milliseconds(), durMS, 50, "duration")
	require.InDelta(t, wantLUFS, lufs, 0.5, "integrated loudness")

	// An admin publishes it; the public card follows.
	resp := s.do(t, "POST", "/v1/admin/tracks/"+id+"/publish", s.admin.access, nil)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	after := resp.Header.Get("X-Consistency-Token")
	var card struct {
		Title   string `json:"title"`
		Artists []struct {
			Name string `json:"name"`
		} `json:"artists"`
		Album *struct {
			Title string `json:"title"`
		} `json:"album"`
		DurationMS int `json:"duration_ms"`
	}
	s.callJSON(t, "GET", "/v1/tracks/"+id+"?after="+after, "", nil, http.StatusOK, &card)
	require.Equal(t, "Группа крови", card.Title)
	require.Len(t, card.Artists, 1)
	require.Equal(t, "Кино", card.Artists[0].Name)
	require.NotNil(t, card.Album)
	require.Equal(t, "Группа крови", card.Album.Title)
	require.Equal(t, durMS, card.DurationMS)

	free := s.listener(t, "free@example.com")
	premium := s.listener(t, "premium@example.com")
	s.buyPremium(t, &premium)

	// The free listener: the master lists the free variants only, each
	// decodes completely through the POP at its bit rate; the 256k one is
	// refused by the POP and by steering.
	pf := s.playback(t, id, free.access)
	require.False(t, pf.ListenerPremium)
	kinds := map[string]steering.PlaybackRendition{}
	for _, r := range pf.Renditions {
		kinds[r.Kind] = r
		require.Equal(t, !r.Premium, r.Playable, r.Kind)
	}
	for _, k := range []string{"hls", "hls-aac-64", "hls-aac-128", "hls-aac-256", "flac"} {
		require.Contains(t, kinds, k)
	}
	require.True(t, kinds["hls-aac-256"].Premium)
	require.True(t, kinds["flac"].Premium)
	require.NotNil(t, pf.LoudnessGainDB)
	require.InDelta(t, -18-wantLUFS, *pf.LoudnessGainDB, 1, "gain toward -18 LUFS")
	require.Contains(t, s.body(t, pf.WaveformURL), `"version":2`)
	require.Len(t, pf.CoverURLs, 3)
	for size, u := range pf.CoverURLs {
		require.Equal(t, http.StatusOK, s.status(t, u), "cover %s", size)
	}
	master := s.body(t, pf.MasterURL)
	require.NotContains(t, master, "aac256")
	s.playVariants(t, pf, wantDur, []int{64000, 128000})
	resp = s.do(t, "GET", "/v1/cdn/play/"+id+"/hls-aac-256", free.access, nil)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "steering signed the 256k variant for a free listener")

	// The premium listener: all three variants, the FLAC file too.
	pp := s.playback(t, id, premium.access)
	require.True(t, pp.ListenerPremium)
	for _, r := range pp.Renditions {
		require.True(t, r.Playable, r.Kind)
	}
	require.Contains(t, s.body(t, pp.MasterURL), "aac256/index.m3u8?t=")
	s.playVariants(t, pp, wantDur, []int{64000, 128000, 256000})
	// The 256k variant's URL with the free listener's token: the POP refuses
	// it by the catalog's flag carried in the token.
	premiumVariant := withToken(t, rendition(t, pp, "hls-aac-256").URL, pf.MasterURL)
	require.Equal(t, http.StatusForbidden, s.status(t, premiumVariant))
	_, err = decode(premiumVariant, "0:a:0")
	require.Error(t, err, "ffmpeg played the 256k variant with a free listener's URL")
	flacURL := rendition(t, pp, "flac").URL
	got, err := decode(flacURL, "0:a:0")
	require.NoError(t, err, "flac: %s", got)

	// The catalog alone decides: an admin makes the 256k variant free (in
	// PostgreSQL, as admins may) and the free listener plays it at once.
	_, err = s.db.Exec(ctx, `UPDATE track_rendition SET premium = false WHERE track_id = $1 AND kind = 'hls-aac-256'`, id)
	require.NoError(t, err)
	promo := s.playback(t, id, free.access)
	require.True(t, rendition(t, promo, "hls-aac-256").Playable)
	require.False(t, rendition(t, promo, "flac").Playable)
	require.Contains(t, s.body(t, promo.MasterURL), "aac256/index.m3u8?t=")
	s.playVariants(t, promo, wantDur, []int{64000, 128000, 256000})

	// Unpublish: URLs already issued (a master, a cached segment, the FLAC
	// file) stop working within seconds, and steering signs no new one.
	segment := firstSegment(t, s, pp.MasterURL)
	require.Equal(t, http.StatusOK, s.status(t, segment))
	resp = s.do(t, "POST", "/v1/admin/tracks/"+id+"/unpublish", s.admin.access, nil)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool {
		r := s.do(t, "GET", "/v1/tracks/"+id+"/playback", premium.access, nil)
		r.Body.Close()
		return r.StatusCode == http.StatusNotFound && s.status(t, pp.MasterURL) == http.StatusForbidden &&
			s.status(t, pf.MasterURL) == http.StatusForbidden && s.status(t, segment) == http.StatusForbidden &&
			s.status(t, flacURL) == http.StatusForbidden
	}, time.Minute, 100*time.Millisecond, "issued URLs still work after unpublish")
	_, err = decode(pp.MasterURL, "0:a:0")
	require.Error(t, err, "ffmpeg still plays an unpublished track")
}

// playVariants decodes every audio stream of the listener's master through
// the POP and checks each variant playlist's bit rate against nominal.
func (s *suite) playVariants(t *testing.T, pb steering.Playback, want time.Duration, nominal []int) {
	t.Helper()
	n := audioStreams(t, pb.MasterURL)
	require.Equal(t, len(nominal), n, "variants in the master")
	for i := range n {
		out, err := decode(pb.MasterURL, "0:a:"+strconv.Itoa(i))
		require.NoError(t, err, "variant %d: %s", i, out)
		require.InDelta(t, want.Seconds(), decodedSeconds(t, out), 0.5, "variant %d decoded completely", i)
	}
	for i, bps := range nominal {
		u := ""
		for _, r := range pb.Renditions {
			if r.Bitrate == bps && strings.HasPrefix(r.Kind, "hls-aac-") {
				u = r.URL
			}
		}
		require.NotEmpty(t, u, "rendition of %d bit/s", bps)
		got := variantBitrate(t, u)
		require.InEpsilon(t, float64(bps), got, 0.2, "variant %d: %d bit/s, nominal %d", i, got, bps)
	}
}

// rendition is the playback answer's rendition of kind.
func rendition(t *testing.T, pb steering.Playback, kind string) steering.PlaybackRendition {
	t.Helper()
	for _, r := range pb.Renditions {
		if r.Kind == kind {
			return r
		}
	}
	t.Fatalf("no rendition %s in %+v", kind, pb.Renditions)
	return steering.PlaybackRendition{}
}

// withToken is u with the token of the URL from.
func withToken(t *testing.T, u, from string) string {
	t.Helper()
	a, err := url.Parse(u)
	require.NoError(t, err)
	b, err := url.Parse(from)
	require.NoError(t, err)
	q := a.Query()
	q.Set(urlsign.Param, b.Query().Get(urlsign.Param))
	a.RawQuery = q.Encode()
	return a.String()
}

var (
	timeRe   = regexp.MustCompile(`time=(\d\d):(\d\d):(\d\d\.\d+)`)
	inputIRe = regexp.MustCompile(`"input_i"\s*:\s*"(-?[\d.]+)"`)
)

func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...)...).CombinedOutput()
	require.NoError(t, err, "ffmpeg %v: %s", args, out)
}

func probeDuration(t *testing.T, path string) time.Duration {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	require.NoError(t, err)
	sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	require.NoError(t, err, "%s", out)
	return time.Duration(sec * float64(time.Second))
}

// measureLoudness is ffmpeg's own EBU R128 integrated loudness of path.
func measureLoudness(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-i", path, "-af", "loudnorm=print_format=json", "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := inputIRe.FindSubmatch(out)
	require.NotNil(t, m, "no loudnorm JSON: %s", out)
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return v
}

// decode plays stream of u completely, as a player would; it returns
// ffmpeg's output.
func decode(u, stream string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-stats", "-i", u, "-map", stream, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ffmpeg -i %s -map %s: %w", u, stream, err)
	}
	return string(out), nil
}

func decodedSeconds(t *testing.T, out string) float64 {
	t.Helper()
	m := timeRe.FindAllStringSubmatch(out, -1)
	require.NotEmpty(t, m, "no progress in %s", out)
	last := m[len(m)-1]
	h, _ := strconv.Atoi(last[1])
	mi, _ := strconv.Atoi(last[2])
	sec, _ := strconv.ParseFloat(last[3], 64)
	return float64(h*3600+mi*60) + sec
}

func audioStreams(t *testing.T, u string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=index", "-of", "json", u).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var p struct {
		Streams []struct{} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &p), "%s", out)
	return len(p.Streams)
}

// variantBitrate is the audio stream's bit rate ffprobe reads from the
// variant playlist (the container's would be the playlist file's).
func variantBitrate(t *testing.T, u string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=bit_rate", "-of", "csv=p=0", u).CombinedOutput()
	require.NoError(t, err, "%s", out)
	n, err := strconv.Atoi(strings.Fields(string(out) + " -")[0]) // once per program and stream
	require.NoError(t, err, "ffprobe gives no bit rate for %s: %s", u, out)
	return n
}

// firstSegment follows the master's first variant to its first media
// segment's URL (rewritten by the POP, so it carries the token).
func firstSegment(t *testing.T, s *suite, masterURL string) string {
	t.Helper()
	base, err := url.Parse(masterURL)
	require.NoError(t, err)
	next := func(body, suffix string) *url.URL {
		for _, line := range strings.Split(body, "\n") {
			if line != "" && !strings.HasPrefix(line, "#") && strings.Contains(line, suffix) {
				ref, err := url.Parse(line)
				require.NoError(t, err)
				return base.ResolveReference(ref)
			}
		}
		t.Fatalf("no %s URI in %s", suffix, body)
		return nil
	}
	base = next(s.body(t, masterURL), ".m3u8")
	seg := next(s.body(t, base.String()), ".m4s")
	require.NotEmpty(t, seg.Query().Get(urlsign.Param), "segment URI without a token: %s", seg)
	return seg.String()
}

// listener signs up, confirms through the mailed link and signs in.
func (s *suite) listener(t *testing.T, email string) account {
	t.Helper()
	a := account{email: email, password: "listener password 1"}
	resp := s.do(t, "POST", "/v1/auth/register", "", map[string]string{"email": a.email, "password": a.password})
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	link := s.mailLink(t, a.email, "/v1/auth/confirm?token=")
	r, err := s.client.Get(link)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusOK, r.StatusCode)
	s.login(t, &a)
	return a
}

// buyPremium buys a monthly subscription with the sandbox's succeeding
// card and signs in again once the saga made the listener premium.
func (s *suite) buyPremium(t *testing.T, a *account) {
	t.Helper()
	resp := s.do(t, "POST", "/v1/subscriptions", a.access, map[string]string{"plan": "monthly", "payment_method": sandbox.CardSuccess})
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s", b)
	require.Eventually(t, func() bool {
		var me struct {
			Premium bool `json:"premium"`
		}
		s.callJSON(t, "GET", "/v1/auth/me", a.access, nil, http.StatusOK, &me)
		return me.Premium
	}, time.Minute, 250*time.Millisecond, "%s never became premium", a.email)
	// The access token in hand predates the purchase: a new one says premium.
	s.login(t, a)
}

func (s *suite) playback(t *testing.T, id, bearer string) steering.Playback {
	t.Helper()
	var pb steering.Playback
	s.callJSON(t, "GET", "/v1/tracks/"+id+"/playback", bearer, nil, http.StatusOK, &pb)
	return pb
}

func (s *suite) login(t *testing.T, a *account) {
	t.Helper()
	var lr struct {
		AccessToken string `json:"access_token"`
	}
	s.callJSON(t, "POST", "/v1/auth/login", "", map[string]string{"email": a.email, "password": a.password}, http.StatusOK, &lr)
	a.access = lr.AccessToken
}

// do sends a request through the gateway (a JSON body when body is not nil).
func (s *suite) do(t *testing.T, method, path, bearer string, body any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.p.GatewayURL()+path, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	return resp
}

func (s *suite) callJSON(t *testing.T, method, path, bearer string, body any, want int, into any) {
	t.Helper()
	resp := s.do(t, method, path, bearer, body)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, b)
	if into != nil {
		require.NoError(t, json.Unmarshal(b, into), "%s", b)
	}
}

func (s *suite) status(t *testing.T, u string) int {
	t.Helper()
	resp, err := s.client.Get(u)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (s *suite) body(t *testing.T, u string) string {
	t.Helper()
	resp, err := s.client.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", u, b)
	return string(b)
}

// mailLink waits for the mail to addr and returns its link containing marker.
func (s *suite) mailLink(t *testing.T, addr, marker string) string {
	t.Helper()
	var link string
	require.Eventually(t, func() bool {
		var list struct {
			Messages []struct {
				ID string `json:"ID"`
				To []struct {
					Address string `json:"Address"`
				} `json:"To"`
			} `json:"messages"`
		}
		s.getJSON(t, s.mailAPI+"/api/v1/messages?limit=500", &list)
		for _, m := range list.Messages {
			if len(m.To) == 0 || !strings.EqualFold(m.To[0].Address, addr) {
				continue
			}
			var msg struct {
				Text string `json:"Text"`
			}
			s.getJSON(t, s.mailAPI+"/api/v1/message/"+m.ID, &msg)
			for _, f := range strings.Fields(msg.Text) {
				if strings.Contains(f, marker) {
					link = f
					return true
				}
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "no mail to %s with %s", addr, marker)
	return link
}

func (s *suite) getJSON(t *testing.T, u string, into any) {
	t.Helper()
	resp, err := s.client.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, u)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
}
