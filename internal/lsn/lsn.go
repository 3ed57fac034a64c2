// Package lsn formats and parses the consistency token Overture hands out after
// a catalog write: a PostgreSQL WAL position (LSN) written as a decimal uint64.
//
// The write side reads pg_current_wal_lsn() after commit and answers it in
// X-Consistency-Token; CDC stamps every event with the commit LSN of its
// transaction (extension commitlsn) in the same format; the read side waits
// until it has applied an LSN at least as large. Decimal rather than
// PostgreSQL's "16/B374D848" text so that the token is a plain number in URLs,
// headers and JSON, and compares like one. Both sides use this package so the
// format is defined once.
package lsn

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// WatermarkPrefix is the prefix of the logical decoding message
// (pg_logical_emit_message) a reader writes to ask CDC for a progress report
// reaching past every commit before it; see internal/search/applied.
const WatermarkPrefix = "overture.watermark"

// ErrInvalid is returned (wrapped) for a token that is not an LSN.
var ErrInvalid = errors.New("invalid consistency token")

// FormatToken returns the token for a WAL position: its decimal uint64.
func FormatToken(pos uint64) string { return strconv.FormatUint(pos, 10) }

// ParseToken parses a token made by FormatToken. For convenience it also
// accepts PostgreSQL's own "XXX/XXX" hexadecimal form (what psql shows for
// pg_current_wal_lsn()).
func ParseToken(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if hi, lo, ok := strings.Cut(s, "/"); ok {
		h, err1 := strconv.ParseUint(hi, 16, 32)
		l, err2 := strconv.ParseUint(lo, 16, 32)
		if err1 != nil || err2 != nil || hi == "" || lo == "" {
			return 0, fmt.Errorf("%w: %q is not an LSN", ErrInvalid, s)
		}
		return h<<32 | l, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not a decimal LSN", ErrInvalid, s)
	}
	return v, nil
}

// String renders pos in PostgreSQL's "XXX/XXX" form, for logs and SQL.
func String(pos uint64) string { return fmt.Sprintf("%X/%X", pos>>32, uint32(pos)) }
