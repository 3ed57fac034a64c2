package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/config"
)

// A start with several bad or missing keys names every one of them, and
// never the value of a secret.
func TestReaderNamesEveryKey(t *testing.T) {
	t.Parallel()
	r := config.NewReader(map[string]string{
		"A_URL":     "ftp://x",
		"A_TIMEOUT": "soon",
		"A_SIZE":    "-3",
		"A_KEY":     "c2hvcnQ=", // "short"
	})
	_ = r.URL("A_URL")
	_ = r.DurationOr("A_TIMEOUT", time.Second)
	_ = r.Int64Or("A_SIZE", 1)
	_ = r.Secret("A_SECRET")
	_ = r.Key32("A_KEY")
	_ = r.String("A_NAME")
	err := r.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, k := range []string{"A_URL: want an absolute", `A_TIMEOUT: "soon"`, `A_SIZE: "-3"`, "A_SECRET is not set", "A_KEY: must be 32 bytes", "A_NAME is not set"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not mention %q", err, k)
		}
	}
	if !errors.Is(err, config.ErrMissing) {
		t.Error("a missing key is not ErrMissing")
	}
	var ke *config.KeyError
	if !errors.As(err, &ke) {
		t.Error("no KeyError")
	}
	if strings.Contains(err.Error(), "c2hvcnQ") {
		t.Error("the bad key's value is in the error")
	}
}

func TestReaderDefaultsAndValues(t *testing.T) {
	t.Parallel()
	r := config.NewReader(map[string]string{"U": "https://pay.example/v3/", "D": "2s", "S": " s3cr3t ", "K": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})
	if got := r.URL("U"); got != "https://pay.example/v3" {
		t.Errorf("URL = %q", got)
	}
	if got := r.URLOr("NOPE", "http://d"); got != "http://d" {
		t.Errorf("URLOr = %q", got)
	}
	if got := r.DurationOr("D", time.Minute); got != 2*time.Second {
		t.Errorf("DurationOr = %v", got)
	}
	if got := r.DurationOr("NOPE", time.Minute); got != time.Minute {
		t.Errorf("DurationOr default = %v", got)
	}
	if got := r.Secret("S").Reveal(); got != "s3cr3t" {
		t.Errorf("Secret = %q", got)
	}
	if got := r.Key32("K"); len(got) != 32 {
		t.Errorf("Key32 = %d bytes", len(got))
	}
	if !r.SecretOptional("NOPE").IsZero() {
		t.Error("unset optional secret is not zero")
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

// A Secret printed by mistake — fmt, JSON, slog in either format — shows no
// value.
func TestSecretRedacts(t *testing.T) {
	t.Parallel()
	const v = "hunter2-very-secret"
	s := config.NewSecret(v)
	type holder struct {
		Name   string
		Secret config.Secret
	}
	h := holder{"x", s}
	var out []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		out = append(out, fmt.Sprintf(f, s), fmt.Sprintf(f, h), fmt.Sprintf(f, &h))
	}
	out = append(out, s.String(), fmt.Sprint(s), fmt.Sprintln(h))
	js, _ := json.Marshal(h)
	out = append(out, string(js))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "secret", s, "holder", h)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "secret", s, "holder", h)
	out = append(out, buf.String())
	for _, o := range out {
		if strings.Contains(o, v) || strings.Contains(o, fmt.Sprintf("%x", v)) {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if !strings.Contains(string(js), "[redacted]") {
		t.Errorf("JSON %s", js)
	}
	if got := fmt.Sprint(config.Secret{}); got != "[unset]" {
		t.Errorf("zero secret prints %q", got)
	}
}
