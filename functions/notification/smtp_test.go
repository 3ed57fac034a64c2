package notification

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	mail "github.com/wneessen/go-mail"
	"sigs.k8s.io/yaml"

	"github.com/overture-music/overture/internal/eventtype"
)

func TestParseSMTPURL(t *testing.T) {
	t.Parallel()
	ok := []struct {
		in   string
		want smtpConfig
	}{
		{"smtp://127.0.0.1:1025", smtpConfig{host: "127.0.0.1", port: 1025, tls: mail.TLSOpportunistic}},
		{"smtp://mail.example.com", smtpConfig{host: "mail.example.com", port: 25, tls: mail.TLSOpportunistic}},
		{"smtp://u:p%40ss@mail.example.com:587?tls=mandatory", smtpConfig{host: "mail.example.com", port: 587, user: "u", password: "p@ss", tls: mail.TLSMandatory}},
		{"smtp://mailpit:1025?tls=none", smtpConfig{host: "mailpit", port: 1025, tls: mail.NoTLS}},
		{"smtps://u@mail.example.com", smtpConfig{host: "mail.example.com", port: 465, user: "u", ssl: true, tls: mail.TLSMandatory}},
		{"smtp://[::1]:2525/", smtpConfig{host: "::1", port: 2525, tls: mail.TLSOpportunistic}},
	}
	for _, c := range ok {
		got, err := parseSMTPURL(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseSMTPURL(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"", "127.0.0.1:1025", "http://127.0.0.1:1025", "smtp://", "smtp://host:0", "smtp://host:99999",
		"smtp://host:1025?tls=maybe", "smtp://host?foo=bar", "smtps://host?tls=none", "smtp://host/path", "smtp:host",
	} {
		if _, err := parseSMTPURL(in); !errors.Is(err, ErrSMTPURL) {
			t.Errorf("parseSMTPURL(%q) error %v, want ErrSMTPURL", in, err)
		}
	}
}

// FuzzParseSMTPURL: any input either parses into something dialable or is
// refused with ErrSMTPURL, and the refusal never repeats the password.
func FuzzParseSMTPURL(f *testing.F) {
	for _, s := range []string{
		"smtp://127.0.0.1:1025", "smtps://user:hunter2@mail.example.com", "smtp://u:hunter2@h:99999",
		"smtp://u:hunter2@%zz", "smtp://u:hunter2@host?tls=none&tls=x", "smtp://[::1", "::", "smtp://h:-1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := parseSMTPURL(in)
		if err != nil {
			if !errors.Is(err, ErrSMTPURL) {
				t.Fatalf("error %v is not ErrSMTPURL", err)
			}
			if strings.Contains(in, "hunter2") && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q repeats the password", err)
			}
			return
		}
		if c.host == "" || c.port < 1 || c.port > 65535 {
			t.Fatalf("parsed %q into %+v", in, c)
		}
		if c.password != "" && strings.Contains(c.addr(), c.password) {
			t.Fatalf("addr %q shows the password", c.addr())
		}
	})
}

func TestMessageIDIsStableAndDistinct(t *testing.T) {
	t.Parallel()
	a := MessageID("/overture/subscription", "e1")
	if a != MessageID("/overture/subscription", "e1") {
		t.Fatal("MessageID is not deterministic")
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}@overture\.local$`).MatchString(a) {
		t.Fatalf("MessageID %q", a)
	}
	for _, other := range [][2]string{{"/overture/payment", "e1"}, {"/overture/subscription", "e2"}, {"/overture/subscriptio", "ne1"}} {
		if MessageID(other[0], other[1]) == a {
			t.Errorf("MessageID%v collides with %q", other, a)
		}
	}
}

// The Triggers route exactly the consumed types to this function, each with
// the retry policy and dead-letter sink the design asks for, and the catalog
// names this function as a consumer of each.
func TestTriggersMatchConsumedTypes(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../triggers/notification.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type trigger struct {
		Kind     string
		Metadata struct{ Name, Namespace string }
		Spec     struct {
			Broker string
			Filter struct {
				Attributes map[string]string
			}
			Subscriber struct {
				Ref struct{ APIVersion, Kind, Name string }
			}
			Delivery struct {
				Retry          int
				BackoffPolicy  string
				BackoffDelay   string
				DeadLetterSink struct {
					Ref struct{ Kind, Name, Namespace string }
				}
			}
		}
	}
	var routed []string
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var tr trigger
		if err := yaml.Unmarshal([]byte(doc), &tr); err != nil {
			t.Fatal(err)
		}
		s := tr.Spec
		if tr.Kind != "Trigger" || tr.Metadata.Namespace != "overture" || s.Broker != "default" ||
			s.Subscriber.Ref.Kind != "Service" || s.Subscriber.Ref.Name != Name {
			t.Errorf("trigger %s: %+v", tr.Metadata.Name, tr)
		}
		if d := s.Delivery; d.Retry != 10 || d.BackoffPolicy != "exponential" || d.BackoffDelay != "PT1S" ||
			d.DeadLetterSink.Ref.Name != "dead-letter" || d.DeadLetterSink.Ref.Namespace != "overture" {
			t.Errorf("trigger %s delivery: %+v", tr.Metadata.Name, d)
		}
		if len(s.Filter.Attributes) != 1 {
			t.Errorf("trigger %s filters on %v, want exactly its type", tr.Metadata.Name, s.Filter.Attributes)
		}
		routed = append(routed, s.Filter.Attributes["type"])
	}
	consumed := ConsumedTypes()
	slices.Sort(routed)
	slices.Sort(consumed)
	if !slices.Equal(routed, consumed) {
		t.Fatalf("triggers route %v, function consumes %v", routed, consumed)
	}
	for _, typ := range consumed {
		spec, ok := eventtype.Lookup(typ)
		if !ok || !slices.Contains(spec.Consumers, Name) {
			t.Errorf("catalog does not list %s as a consumer of %s", Name, typ)
		}
	}
	fy, err := os.ReadFile("func.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var fn struct{ Name, Invoke string }
	if err := yaml.Unmarshal(fy, &fn); err != nil || fn.Name != Name || fn.Invoke != "cloudevent" {
		t.Fatalf("func.yaml: %+v %v", fn, err)
	}
}
