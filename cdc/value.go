package cdc

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// PostgreSQL type OIDs decoded without going through pgtype.
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// typeMap decodes the types without a fast path (arrays, intervals …).
var typeMap = pgtype.NewMap()

// textValue turns a column's text-format value into the JSON-ready Go value
// of the change envelope: strings for uuid and text, int64 for integers, bool,
// time.Time (RFC 3339 with nanoseconds in JSON) for timestamps, json.RawMessage
// for json/jsonb, json.Number for numeric. Anything it cannot type stays the
// text PostgreSQL sent, so a value is never lost. data is copied.
func textValue(oid uint32, data []byte) any {
	switch oid {
	case oidText, oidVarchar, oidBPChar, oidUUID:
		return string(data)
	case oidInt2, oidInt4, oidInt8, oidOID:
		if v, err := strconv.ParseInt(string(data), 10, 64); err == nil {
			return v
		}
	case oidBool:
		if len(data) == 1 {
			return data[0] == 't'
		}
	case oidTimestamptz:
		if t, ok := parseTimestamp(string(data), true); ok {
			return t
		}
	case oidTimestamp:
		if t, ok := parseTimestamp(string(data), false); ok {
			return t
		}
	case oidDate:
		return string(data)
	case oidJSON, oidJSONB:
		if json.Valid(data) {
			return json.RawMessage(append([]byte(nil), data...))
		}
	case oidFloat4, oidFloat8:
		if v, err := strconv.ParseFloat(string(data), 64); err == nil {
			return v
		}
	case oidNumeric:
		s := string(data)
		if _, err := strconv.ParseFloat(s, 64); err == nil { // not NaN/Infinity text
			return json.Number(s)
		}
		return s
	default:
		if t, ok := typeMap.TypeForOID(oid); ok {
			if v, err := t.Codec.DecodeValue(typeMap, oid, pgtype.TextFormatCode, data); err == nil {
				if _, err := json.Marshal(v); err == nil {
					return v
				}
			}
		}
	}
	return string(data)
}

// parseTimestamp parses PostgreSQL's ISO output ("2026-11-25 19:52:15.123456+00").
// The replication and snapshot sessions run with DateStyle=ISO and TimeZone=UTC,
// but other offsets parse too. Infinity and BC dates are left as text.
func parseTimestamp(s string, zoned bool) (time.Time, bool) {
	if t, ok := fastTimestamp(s, zoned); ok {
		return t, true
	}
	if !zoned {
		t, err := time.Parse("2006-01-02 15:04:05.999999999", s)
		return t, err == nil
	}
	for _, layout := range [...]string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999-07:00:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// fastTimestamp parses the common shape "2006-01-02 15:04:05[.ffffff][+00]"
// without time.Parse (a tenth of its cost); anything else is left to it.
func fastTimestamp(s string, zoned bool) (time.Time, bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	h, ok4 := num(11, 2)
	mi, ok5 := num(14, 2)
	se, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59 {
		return time.Time{}, false
	}
	rest := s[19:]
	ns := 0
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		scale := 100_000_000
		for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9'; i++ {
			if i > 9 {
				return time.Time{}, false
			}
			ns += int(rest[i]-'0') * scale
			scale /= 10
		}
		if i == 1 {
			return time.Time{}, false
		}
		rest = rest[i:]
	}
	switch {
	case !zoned && rest == "":
	case zoned && rest == "+00":
	default:
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, ns, time.UTC)
	if t.Day() != d { // e.g. February 30th: let time.Parse refuse it
		return time.Time{}, false
	}
	return t, true
}
