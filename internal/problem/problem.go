// Package problem writes RFC 9457 problem details (application/problem+json),
// the one error shape every Overture HTTP API answers with, so that a person
// reading an error learns what was wrong and a program can branch on its type.
package problem

import (
	"encoding/json"
	"errors"
	"net/http"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Problem is an RFC 9457 problem document. Type is a URI naming the kind of
// problem (relative "/problems/<slug>" URIs here); Detail is specific to this
// occurrence and safe to show to the client.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Extra    map[string]any `json:"-"`
}

// Error makes a Problem usable as an error that handlers return.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}

// New returns a problem with the given status, slug (the last part of its type
// URI) and detail; the title is the HTTP status text.
func New(status int, slug, detail string) *Problem {
	return &Problem{Type: "/problems/" + slug, Title: http.StatusText(status), Status: status, Detail: detail}
}

// MarshalJSON flattens Extra into the document, as RFC 9457 extension members.
func (p *Problem) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(p.Extra)+5)
	for k, v := range p.Extra {
		m[k] = v
	}
	m["type"] = p.Type
	m["title"] = p.Title
	m["status"] = p.Status
	if p.Detail != "" {
		m["detail"] = p.Detail
	}
	if p.Instance != "" {
		m["instance"] = p.Instance
	}
	return json.Marshal(m)
}

// Write sends p as the response.
func Write(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Error writes err: a *Problem (anywhere in its chain) as itself, anything else
// as a 500 whose detail does not leak the error text.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	var p *Problem
	if errors.As(err, &p) {
		Write(w, r, p)
		return
	}
	Write(w, r, New(http.StatusInternalServerError, "internal", "the server failed to handle the request; it has been logged"))
}

// BadRequest is shorthand for a 400 with a specific detail.
func BadRequest(detail string) *Problem { return New(http.StatusBadRequest, "bad-request", detail) }

// Validation returns a 422 listing each invalid field and why.
func Validation(fields map[string]string) *Problem {
	p := New(http.StatusUnprocessableEntity, "validation", "the request has invalid fields")
	p.Extra = map[string]any{"errors": fields}
	return p
}
