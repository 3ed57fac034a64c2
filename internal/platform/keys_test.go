package platform

import (
	"bytes"
	"context"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/overture-music/overture/cdc"
	"github.com/overture-music/overture/edge"
	"github.com/overture-music/overture/functions"
	"github.com/overture-music/overture/internal/config"
	"github.com/overture-music/overture/internal/deploy"
	"github.com/overture-music/overture/internal/lifecycle"
	"github.com/overture-music/overture/internal/manifest"
)

// declaring is a component that lists the settings it reads: the keys its
// one parse function reads (config.KeysOf).
type declaring interface{ ConfigKeys() []config.Key }

// undeclared are the components that do not list their settings yet, each
// with the reason. Every other function and service must.
var undeclared = map[string]string{
	"noop": "reads no settings",
}

type keyed struct {
	name, kind string // kind: function, service, edge or cdc (deploy's readBy)
	keys       []config.Key
	start      func(cfg map[string]string) error // nil: not a lifecycle component
}

// everyComponent lists every function, service, the CDN edge and the CDC
// relay with the keys it declares.
func everyComponent(t *testing.T) []keyed {
	t.Helper()
	var out []keyed
	add := func(name, kind string, c any) {
		d, ok := c.(declaring)
		if !ok {
			if _, known := undeclared[name]; !known {
				t.Errorf("%s %s does not declare its settings (ConfigKeys)", kind, name)
			}
			return
		}
		out = append(out, keyed{name: name, kind: kind, keys: d.ConfigKeys(), start: func(cfg map[string]string) error {
			return lifecycle.Start(context.Background(), c, lifecycle.Env{Name: name}, cfg)
		}})
	}
	for _, e := range functions.All() {
		add(e.Name, "function", e.New())
	}
	for _, s := range Services() {
		add(s.Name(), "service", s)
	}
	out = append(out, keyed{name: "edge", kind: "edge", keys: edge.Keys()}, keyed{name: "cdc", kind: "cdc", keys: cdc.Keys()})
	if len(out) < 15 {
		t.Fatalf("only %d components declare their settings", len(out))
	}
	return out
}

// Every component fails closed: started with nothing set, it stops at once
// with an error naming every key it requires, and it requires no key it
// did not declare (the declaration is the parse).
func TestStartWithoutSettingsNamesEveryRequiredKey(t *testing.T) {
	t.Parallel()
	for _, c := range everyComponent(t) {
		if c.start == nil {
			continue
		}
		err := c.start(map[string]string{})
		var required []string
		for _, k := range c.keys {
			if k.Required {
				required = append(required, k.Name)
			}
		}
		if len(required) == 0 {
			continue
		}
		if err == nil {
			t.Errorf("%s started with no settings; it requires %v", c.name, required)
			continue
		}
		for _, k := range required {
			if !strings.Contains(err.Error(), k) {
				t.Errorf("%s without settings: %v; the error does not name %s", c.name, err, k)
			}
		}
	}
}

// Every key a component reads is provided where it runs:
//
//   - under `make run`, every required key is one the platform fills
//     (ProvidedKeys: what it sets itself and its development defaults);
//   - on Knative, every required key reaches the component from the deploy's
//     one settings list (deploy/config.yaml: a setting whose readBy names
//     it, not optional) or its func.yaml run.envs, or the render sets it;
//     every optional key is at least known to the deploy (a setting, or
//     notListed with the reason it is not deployed).
func TestDeclaredKeysAreProvided(t *testing.T) {
	t.Parallel()
	provided := ProvidedKeys()
	dc, err := deploy.LoadConfig("../../deploy/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	funcs, err := manifest.LoadDir("../../functions")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range everyComponent(t) {
		envs := map[string]bool{}
		if c.kind == "function" {
			f, ok := funcs.Func(c.name)
			if !ok {
				t.Errorf("function %s has no func.yaml", c.name)
				continue
			}
			for _, e := range f.Run.Envs {
				envs[e.Name] = true
			}
		}
		deployed := map[string]deploy.Setting{}
		for _, s := range dc.For(c.name, c.kind) {
			deployed[s.Key] = s
		}
		for _, k := range c.keys {
			if k.Required && c.kind != "edge" && c.kind != "cdc" && !slices.Contains(provided, k.Name) {
				t.Errorf("make run: %s requires %s, which the platform does not provide", c.name, k.Name)
			}
			s, inSettings := deployed[k.Name]
			reason, notListed := dc.NotListed[k.Name]
			byRender := notListed && (strings.HasPrefix(reason, "set by the render") || strings.HasPrefix(reason, "set per POP") || strings.HasPrefix(reason, "injected by"))
			switch {
			case k.Required && inSettings && s.Optional:
				t.Errorf("Knative: %s requires %s, which deploy/config.yaml marks optional (it may deploy empty)", c.name, k.Name)
			case k.Required && !inSettings && !envs[k.Name] && !byRender:
				t.Errorf("Knative: %s requires %s, which neither deploy/config.yaml (readBy), its func.yaml nor the render gives it", c.name, k.Name)
			case !k.Required && !inSettings && !envs[k.Name] && !notListed:
				if _, anywhere := dc.Setting(k.Name); !anywhere {
					t.Errorf("Knative: %s reads %s, which deploy/config.yaml does not know (neither a setting nor notListed)", c.name, k.Name)
				}
			}
		}
	}
}

// No development secret is reachable outside `make run`: the deploy's
// settings list gives no secret key a literal value (each is generated,
// kept, or comes from the operator), and no deployed file (deploy/,
// functions' func.yaml, brokers, triggers) carries a development value.
func TestNoDevSecretOutsideMakeRun(t *testing.T) {
	t.Parallel()
	dc, err := deploy.LoadConfig("../../deploy/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	secret := map[string]bool{}
	for _, c := range everyComponent(t) {
		for _, k := range c.keys {
			if k.Secret {
				secret[k.Name] = true
			}
		}
	}
	if len(secret) < 8 {
		t.Fatalf("only %d secret keys declared: %v", len(secret), secret)
	}
	for _, s := range dc.Settings {
		if !secret[s.Key] || s.Value == "" || strings.Contains(s.Value, "${") {
			continue // unset, or composed of generated or operator-given settings
		}
		// A URL that is secret for the password it may carry, deployed
		// without one, holds nothing secret.
		if u, err := url.Parse(s.Value); err == nil && u.Scheme != "" && u.Host != "" {
			if _, hasPassword := u.User.Password(); !hasPassword {
				continue
			}
		}
		t.Errorf("deploy/config.yaml gives the secret %s a literal value; generate it or take it from the operator", s.Key)
	}
	devValues := []string{devCDNSigningKeys, strings.SplitN(devCDNSigningKeys, ":", 2)[1], devCDNAdminSecret, devMetricsToken,
		devPaymentShopID, devPaymentSecretKey, devPaymentWebhookSecret, DefaultS3SecretKey}
	files := 0
	for _, dir := range []string{"../../deploy", "../../functions", "../../brokers", "../../triggers"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				return err
			}
			files++
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, v := range devValues {
				if bytes.Contains(b, []byte(v)) {
					t.Errorf("%s carries the development value %q", path, v)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 20 {
		t.Fatalf("scanned %d deployed files; the walk missed them", files)
	}
}
