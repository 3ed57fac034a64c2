package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/overture-music/overture/internal/problem"
	"github.com/overture-music/overture/internal/text"
)

// maxBody bounds a request body (lyrics and bios are the largest fields).
const maxBody = 1 << 20

// kind is how a JSON field is parsed.
type kind int

const (
	kText kind = iota
	kUUID
	kInt
	kBool
)

// field describes one writable column of a resource.
type field struct {
	name     string // JSON member and column name
	kind     kind
	required bool // on create
	nullable bool // PATCH may set null
	min, max int  // text: length in characters; int: value range
	pattern  *regexp.Regexp
	hint     string // what the pattern means, for the error
	visible  bool   // shown to listeners: text.CheckVisible
	key      bool   // an object-storage key: checkObjectKey
}

// columns is the parsed input: column names and values in field order.
type columns struct {
	names  []string
	values []any
}

func (c *columns) get(name string) (any, bool) {
	i := slices.Index(c.names, name)
	if i < 0 {
		return nil, false
	}
	return c.values[i], true
}

var (
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
	slugRE    = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	kindRE    = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

// readObject reads a JSON object body. A body that is not a JSON object is a
// 400; a wrong content type is a 415.
func readObject(r *http.Request) (map[string]json.RawMessage, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "send the body as application/json")
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, problem.BadRequest("could not read the request body")
	}
	if len(body) > maxBody {
		return nil, problem.New(http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the body is larger than %d bytes", maxBody))
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, problem.BadRequest("the request body is empty; send a JSON object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, problem.BadRequest(fmt.Sprintf("the body is not valid JSON (at byte %d)", se.Offset))
		}
		return nil, problem.BadRequest("the body must be a JSON object")
	}
	return obj, nil
}

// parse validates obj against fields. On create every required field must be
// present; on update (create=false) any subset may be. extra lists members
// handled by the caller. Errors are collected per field.
func parse(obj map[string]json.RawMessage, fields []field, create bool, extra []string, errs map[string]string) columns {
	var out columns
	for name := range obj {
		if !slices.ContainsFunc(fields, func(f field) bool { return f.name == name }) && !slices.Contains(extra, name) {
			errs[name] = "unknown field"
		}
	}
	for _, f := range fields {
		raw, ok := obj[f.name]
		if !ok {
			if create && f.required {
				errs[f.name] = "is required"
			}
			continue
		}
		if string(bytes.TrimSpace(raw)) == "null" {
			if !f.nullable {
				errs[f.name] = "cannot be null"
				continue
			}
			out.names = append(out.names, f.name)
			out.values = append(out.values, nil)
			continue
		}
		v, msg := f.parse(raw)
		if msg != "" {
			errs[f.name] = msg
			continue
		}
		out.names = append(out.names, f.name)
		out.values = append(out.values, v)
	}
	return out
}

func (f field) parse(raw json.RawMessage) (any, string) {
	switch f.kind {
	case kText, kUUID:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, "must be a string"
		}
		if f.kind == kUUID {
			u, err := uuid.Parse(s)
			if err != nil || len(s) != 36 {
				return nil, "must be a UUID"
			}
			return u.String(), ""
		}
		s = strings.TrimSpace(s)
		n := utf8.RuneCountInString(s)
		if f.min > 0 && n < f.min {
			if f.min == 1 {
				return nil, "must not be empty"
			}
			return nil, fmt.Sprintf("must be at least %d characters", f.min)
		}
		if f.max > 0 && n > f.max {
			return nil, fmt.Sprintf("must be at most %d characters", f.max)
		}
		if strings.ContainsRune(s, 0) {
			return nil, "must not contain NUL characters"
		}
		if f.pattern != nil && !f.pattern.MatchString(s) {
			return nil, "must be " + f.hint
		}
		if f.visible {
			if err := text.CheckVisible(s); err != nil {
				return nil, err.Error()
			}
		}
		if f.key {
			if msg := checkObjectKey(s); msg != "" {
				return nil, msg
			}
		}
		return s, ""
	case kInt:
		var v int64
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, "must be an integer"
		}
		if v < int64(f.min) || v > int64(f.max) {
			return nil, fmt.Sprintf("must be between %d and %d", f.min, f.max)
		}
		return v, ""
	case kBool:
		var v bool
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, "must be true or false"
		}
		return v, ""
	}
	return nil, "unsupported"
}

// maxObjectKey bounds an object key (S3 allows 1024 bytes).
const maxObjectKey = 1024

// objectKeyRE is the characters an object key may use: S3's "safe"
// characters and the slash.
var objectKeyRE = regexp.MustCompile(`^[A-Za-z0-9!_.*'()/-]+$`)

// checkObjectKey returns why k cannot be an object key in the media bucket,
// or "". The key ends up in URLs, CDN purge tags and paths on a POP's disk,
// so ".." segments, a leading slash, empty segments, control characters
// (line breaks forge log lines and headers) and unusual characters are
// refused before they are stored.
func checkObjectKey(k string) string {
	switch {
	case k == "":
		return "must not be empty"
	case len(k) > maxObjectKey:
		return fmt.Sprintf("must be at most %d bytes", maxObjectKey)
	case strings.HasPrefix(k, "/"):
		return "must not start with a slash"
	case !objectKeyRE.MatchString(k):
		return "may contain only letters, digits, slashes and ! _ . * ' ( ) -"
	}
	for _, seg := range strings.Split(k, "/") {
		switch seg {
		case "":
			return "must not contain empty path segments (//) or end with a slash"
		case ".", "..":
			return "must not contain . or .. path segments"
		}
	}
	return ""
}

// parseUUIDList parses a JSON array of distinct UUIDs.
func parseUUIDList(raw json.RawMessage) ([]string, string) {
	var ss []string
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, "must be an array of UUIDs"
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		u, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			return nil, fmt.Sprintf("%q is not a UUID", s)
		}
		if seen[u.String()] {
			return nil, fmt.Sprintf("%s is listed twice", u)
		}
		seen[u.String()] = true
		out = append(out, u.String())
	}
	if len(out) > 50 {
		return nil, "lists more than 50 artists"
	}
	return out, ""
}

// pathID parses the {id} path value as a UUID; a malformed id is a 404 (no
// such resource can exist).
func pathID(r *http.Request, what string) (string, error) {
	s := r.PathValue("id")
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", notFound(what, s)
	}
	return u.String(), nil
}

func notFound(what, id string) *problem.Problem {
	return problem.New(http.StatusNotFound, "not-found", fmt.Sprintf("no %s with id %q", what, id))
}

func conflict(detail string) *problem.Problem {
	return problem.New(http.StatusConflict, "conflict", detail)
}

func validation(errs map[string]string) error {
	if len(errs) == 0 {
		return nil
	}
	return problem.Validation(errs)
}
