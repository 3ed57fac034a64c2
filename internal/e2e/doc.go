// Package e2e holds no code: its tests drive the whole embedded platform
// from outside with real clients, the way issues 11 and 12 define done. An
// audio file made by ffmpeg is put into the uploads bucket with a plain S3
// client; versitygw's notification starts ingestion; the track is published
// by an admin; free and premium listeners (premium bought through the payment
// sandbox) ask steering what to play and ffmpeg decodes it through a real
// POP; an unpublish stops the URLs already handed out.
package e2e
