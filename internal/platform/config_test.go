package platform

import (
	"os"
	"testing"
)

func TestApplyDefaultsExpandsAndKeepsOverrides(t *testing.T) {
	saved := defaults
	t.Cleanup(func() { defaults = saved })
	defaults = map[string]string{
		"SEARCH_DIR":  "${OVERTURE_DATA_DIR}/search",
		"AUTH_ISSUER": "${PUBLIC_BASE_URL}",
		"MAIL_FROM":   "noreply@overture.local",
	}
	cfg := map[string]string{KeyDataDir: "/d", KeyPublicBaseURL: "http://127.0.0.1:8080", "MAIL_FROM": "ops@example.com"}
	applyDefaults(cfg)
	for k, want := range map[string]string{"SEARCH_DIR": "/d/search", "AUTH_ISSUER": "http://127.0.0.1:8080", "MAIL_FROM": "ops@example.com"} {
		if cfg[k] != want {
			t.Errorf("%s = %q, want %q", k, cfg[k], want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@db:5432/x": "postgres://u:xxxxx@db:5432/x",
		"redis://127.0.0.1:6380/0":      "redis://127.0.0.1:6380/0",
		"smtp://user@mail:25":           "smtp://user@mail:25",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTraversable(t *testing.T) {
	root, err := os.MkdirTemp("", "traversable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	dir := root + "/a/b"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o700); err != nil {
		t.Fatal(err)
	}
	const other = 54321
	if err := traversable(dir+"/postgres", other, other); err == nil {
		t.Fatal("a 0700 ancestor was reported traversable for another user")
	}
	if err := os.Chmod(root, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := traversable(dir+"/postgres", other, other); err != nil {
		t.Fatalf("o+x ancestors reported unreachable: %v", err)
	}
}
