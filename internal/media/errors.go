package media

import (
	"errors"
	"fmt"
)

// Reason says why a file could not be processed; it is stable and meant to be
// stored and shown (an upload's failure reason).
type Reason string

// The reasons an *Error carries.
const (
	ReasonNotAudio         Reason = "not_audio"         // not a media file, or a picture/text
	ReasonTruncated        Reason = "truncated"         // cut short or corrupted: decoding failed or ended early
	ReasonEmpty            Reason = "empty"             // zero bytes
	ReasonTooLong          Reason = "too_long"          // longer than Config.MaxDuration
	ReasonUnsupportedCodec Reason = "unsupported_codec" // no audio stream, or an audio codec not accepted
	ReasonFFmpegFailed     Reason = "ffmpeg_failed"     // ffmpeg/ffprobe crashed or failed for another reason
	ReasonTimeout          Reason = "timeout"           // one ffmpeg/ffprobe run exceeded Config.Timeout
)

// Error is a failure to process a file, with the Reason a caller branches on
// and a Detail a person reads (for ffmpeg failures, the end of its stderr).
type Error struct {
	Reason Reason
	Detail string
	Err    error
}

func (e *Error) Error() string {
	s := "media: " + string(e.Reason)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of the *Error in err's chain, or "" when err is
// not an *Error (for example a cancelled context).
func ReasonOf(err error) Reason {
	var me *Error
	if errors.As(err, &me) {
		return me.Reason
	}
	return ""
}

func newError(r Reason, err error, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...), Err: err}
}
