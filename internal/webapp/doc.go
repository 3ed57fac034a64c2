// Package webapp serves Overture's listener app and admin console: one
// single-page application (web/src, plain TypeScript) that talks only to the
// public HTTP APIs, as a mobile client would.
//
// The bundle is built without Node by esbuild's Go API (package bundle, run
// by hack/deps/webapp.sh) into dist/, which is embedded here: the binary
// carries its own front end. Assets have content-hashed names and are cached
// for a year (immutable); index.html is revalidated on every load, so a new
// release is picked up at the next navigation. Every answer carries a
// Content-Security-Policy without 'unsafe-inline': scripts and styles come
// only from this origin, media and playlists only from the configured CDN
// POPs.
//
// The gateway mounts Handler in front of its 404: GET and HEAD of the app's
// routes (/, /search, /artist/{id}, /admin/…) and of /assets/… are served
// here; everything else falls through. The admin console is part of the same
// bundle; the admin role is enforced by the APIs it calls, not by this
// handler (the page itself holds no secret).
package webapp
