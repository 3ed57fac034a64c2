// Package config reads a component's settings from the cfg map the host hands
// it (the process environment on Knative, the platform's map in `make run`)
// one way: typed getters for strings, URLs, durations, integers and secrets,
// each failing with an error that names the key.
//
// A component declares its settings once as a struct and fills it with a
// Reader, the way cdc.Config and broker.Config are parsed:
//
//	r := config.NewReader(cfg)
//	c := Config{
//		URL:     r.URL("PAYMENT_PROVIDER_URL"),
//		Secret:  r.Secret("PAYMENT_SECRET_KEY"),
//		Timeout: r.DurationOr("PAYMENT_TIMEOUT", 10*time.Second),
//	}
//	if err := r.Err(); err != nil { ... } // every bad or missing key, named
//
// The package has no development defaults and never will: a required key
// that is missing is an error wherever the component runs. Defaults for
// `make run` live in the embedded platform (internal/platform), which fills
// the cfg map before any component reads it. That is what "fails closed"
// means here: outside `make run`, a component without its secret does not
// start, rather than start with a key everyone knows.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrMissing is wrapped by the error of a required key that is unset.
var ErrMissing = errors.New("is not set")

// KeyError is a problem with one key. Its message starts with the key, so an
// operator reading a failed start knows what to set.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string {
	if errors.Is(e.Err, ErrMissing) {
		return e.Key + " " + e.Err.Error()
	}
	return e.Key + ": " + e.Err.Error()
}

func (e *KeyError) Unwrap() error { return e.Err }

func missing(key string) error { return &KeyError{Key: key, Err: ErrMissing} }

func invalid(key string, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

// Secret is a setting that must never be printed: its String, GoString,
// Format, MarshalJSON and LogValue all say "[redacted]" (or "[unset]"). Only
// Reveal gives the value, at the one place that uses it.
type Secret struct{ v string }

// NewSecret wraps v (tests, and values that do not come from a cfg map).
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

func (s Secret) mask() string {
	if s.v == "" {
		return "[unset]"
	}
	return "[redacted]"
}

// String implements fmt.Stringer.
func (s Secret) String() string { return s.mask() }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return "config.Secret(" + s.mask() + ")" }

// Format implements fmt.Formatter, so that every verb (%s, %v, %q, %x, %+v)
// prints the mask.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.mask()))
}

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.mask())), nil }

// MarshalText implements encoding.TextMarshaler (YAML, map keys, slog's text handler).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.mask()), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.mask()) }

// Key is one setting a component reads, as its Reader saw it.
type Key struct {
	Name     string
	Required bool // the component does not start without it
	Secret   bool // read with Secret or Key32: never printed
}

// Reader reads typed settings from a cfg map and collects every problem, so
// that one failed start names every key that needs fixing, not only the
// first. It also records every key it was asked for (Keys), so a
// component's parse function is its declaration of the keys it reads.
type Reader struct {
	m    map[string]string
	errs []error
	keys []Key
}

// Keys returns every key read so far, in the order first read.
func (r *Reader) Keys() []Key { return append([]Key(nil), r.keys...) }

// KeysOf runs parse on an empty cfg map and returns the keys it read: the
// settings a component declares by the one function that parses them.
// Keys read only when another key has some value are not among them.
func KeysOf(parse func(*Reader)) []Key {
	r := NewReader(nil)
	parse(r)
	return r.Keys()
}

func (r *Reader) note(key string, required, secret bool) {
	for i, k := range r.keys {
		if k.Name == key {
			r.keys[i].Required = k.Required || required
			r.keys[i].Secret = k.Secret || secret
			return
		}
	}
	r.keys = append(r.keys, Key{Name: key, Required: required, Secret: secret})
}

// NewReader reads from m (which it does not change).
func NewReader(m map[string]string) *Reader { return &Reader{m: m} }

// Err returns every problem found so far, joined, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Fail records a problem with key that the getters cannot see (a
// component's own validation, e.g. two keys that must agree).
func (r *Reader) Fail(key, format string, args ...any) {
	r.errs = append(r.errs, invalid(key, format, args...))
}

// Has reports whether key is set (to anything but blanks).
func (r *Reader) Has(key string) bool {
	r.note(key, false, false)
	return strings.TrimSpace(r.m[key]) != ""
}

func (r *Reader) get(key string) string { return strings.TrimSpace(r.m[key]) }

// optional reads an optional key; required, a required one.
func (r *Reader) optional(key string) string { r.note(key, false, false); return r.get(key) }
func (r *Reader) required(key string) string { r.note(key, true, false); return r.get(key) }

// String returns the required setting key.
func (r *Reader) String(key string) string {
	v := r.required(key)
	if v == "" {
		r.errs = append(r.errs, missing(key))
	}
	return v
}

// StringOr returns key, or def when unset.
func (r *Reader) StringOr(key, def string) string {
	if v := r.optional(key); v != "" {
		return v
	}
	return def
}

// URL returns the required absolute http(s) URL key, without a trailing slash.
func (r *Reader) URL(key string) string {
	v := r.required(key)
	if v == "" {
		r.errs = append(r.errs, missing(key))
		return ""
	}
	return r.checkURL(key, v)
}

// URLOr returns the absolute http(s) URL key, or def when unset.
func (r *Reader) URLOr(key, def string) string {
	v := r.optional(key)
	if v == "" {
		return def
	}
	return r.checkURL(key, v)
}

func (r *Reader) checkURL(key, v string) string {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.errs = append(r.errs, invalid(key, "want an absolute http(s) URL"))
		return ""
	}
	return strings.TrimRight(v, "/")
}

// DurationOr returns the Go duration key (e.g. "10s", "1m30s"), or def when
// unset; zero and negative durations are refused.
func (r *Reader) DurationOr(key string, def time.Duration) time.Duration {
	v := r.optional(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		r.errs = append(r.errs, invalid(key, "%q is not a duration (e.g. 10s, 5m)", v))
		return def
	case d <= 0:
		r.errs = append(r.errs, invalid(key, "%q must be positive", v))
		return def
	}
	return d
}

// Int64Or returns the integer key, or def when unset; negative values are
// refused.
func (r *Reader) Int64Or(key string, def int64) int64 {
	v := r.optional(key)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		r.errs = append(r.errs, invalid(key, "%q is not a non-negative integer", v))
		return def
	}
	return n
}

// Secret returns the required secret key. The value is never part of an
// error message.
func (r *Reader) Secret(key string) Secret {
	r.note(key, true, true)
	v := r.get(key)
	if v == "" {
		r.errs = append(r.errs, missing(key))
	}
	return Secret{v: v}
}

// SecretOptional returns the secret key, or the zero Secret when unset.
func (r *Reader) SecretOptional(key string) Secret {
	r.note(key, false, true)
	return Secret{v: r.get(key)}
}

// Key32 returns the required base64 (standard or URL alphabet, padded or
// not) 32-byte key, e.g. an AES-256 key.
func (r *Reader) Key32(key string) []byte {
	r.note(key, true, true)
	v := r.get(key)
	if v == "" {
		r.errs = append(r.errs, missing(key))
		return nil
	}
	b, err := DecodeKey32(v)
	if err != nil {
		r.errs = append(r.errs, &KeyError{Key: key, Err: err})
		return nil
	}
	return b
}

// DecodeKey32 decodes a base64 32-byte key. Its error never contains the
// value.
func DecodeKey32(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("must be 32 bytes in base64, got %d bytes", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64 (want 32 random bytes, e.g. `openssl rand -base64 32`)")
}

// Settings is implemented by a component's settings struct: Read fills it
// from r, recording every problem on r.
type Settings[T any] interface {
	*T
	Read(r *Reader)
}

// Parse reads a T from cfg with its Read method and returns it with every
// problem found, each naming its key:
//
//	c, err := config.Parse[Config](cfg)
func Parse[T any, P Settings[T]](cfg map[string]string) (T, error) {
	var c T
	r := NewReader(cfg)
	P(&c).Read(r)
	return c, r.Err()
}

// KeysFor returns the keys T's Read reads (see KeysOf).
func KeysFor[T any, P Settings[T]]() []Key { return KeysOf(P(new(T)).Read) }
