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
