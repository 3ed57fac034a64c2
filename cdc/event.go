package cdc

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
)

// Connector names this relay in the envelope's source block.
const Connector = "overture-cdc"

// Extension attribute names CDC sets.
const (
	ExtPartitionKey = "partitionkey"
	ExtCommitLSN    = "commitlsn"
	ExtTxIndex      = "txindex"
)

// toEvent turns a change into the CloudEvent the broker receives: a change
// event for a catalog row, or the outbox row's own event.
func toEvent(c *Change, source, db string, now time.Time) (event.Event, error) {
	if c.Outbox != nil {
		var e event.Event
		if err := json.Unmarshal(c.Outbox, &e); err != nil {
			return e, fmt.Errorf("outbox row %d: decode event: %w", c.OutboxID, err)
		}
		e.SetExtension(ExtCommitLSN, lsn.FormatToken(c.CommitLSN))
		return e, nil
	}
	e := event.New()
	e.SetType(eventtype.CDCChanged(c.Table))
	e.SetSource(source)
	key := strings.Join(c.Key, ":")
	if c.Snapshot {
		e.SetID("snapshot/" + lsn.FormatToken(c.CommitLSN) + "/" + c.Table + "/" + key)
	} else {
		e.SetID(lsn.FormatToken(c.LSN) + "/" + strconv.Itoa(c.Index))
		e.SetExtension(ExtTxIndex, c.Index)
	}
	e.SetTime(c.Commit)
	e.SetExtension(ExtPartitionKey, c.Table+":"+key)
	e.SetExtension(ExtCommitLSN, lsn.FormatToken(c.CommitLSN))
	e.SetDataContentType(event.ApplicationJSON)
	e.DataEncoded = appendChange(make([]byte, 0, 512), c, db, now)
	return e, nil
}

// span is a stretch (from, to] of the WAL that a progress report covers,
// with the transactions in it that produced change events.
type span struct {
	from, to uint64
	snapshot bool
	rows     int
	resume   bool
	txns     []eventtype.ProgressTxn
	open     bool // from is set
}

// add extends s over b.
func (s *span) add(b *batch) {
	if !s.open {
		s.from, s.resume, s.open = b.start, b.resume, true
	}
	s.to = max(s.to, b.end)
	for i := range b.changes {
		c := &b.changes[i]
		if c.Outbox != nil {
			continue
		}
		tok := lsn.FormatToken(c.CommitLSN)
		if n := len(s.txns); n > 0 && s.txns[n-1].CommitLSN == tok {
			s.txns[n-1].Changes++
			continue
		}
		s.txns = append(s.txns, eventtype.ProgressTxn{CommitLSN: tok, Changes: 1})
	}
}

// progressEvent is the CDCProgress report of s.
func progressEvent(s *span, source, slot string) (event.Event, error) {
	e := event.New()
	e.SetType(eventtype.CDCProgress)
	e.SetSource(source)
	from, to := lsn.FormatToken(s.from), lsn.FormatToken(s.to)
	e.SetID("progress/" + from + "-" + to)
	e.SetTime(time.Now())
	e.SetExtension(ExtPartitionKey, "cdc-progress:"+slot)
	e.SetExtension(ExtCommitLSN, to)
	txns := s.txns
	if txns == nil {
		txns = []eventtype.ProgressTxn{}
	}
	err := e.SetData(event.ApplicationJSON, eventtype.ProgressData{
		From: from, To: to, Snapshot: s.snapshot, Rows: s.rows, Resume: s.resume, Txns: txns,
	})
	return e, err
}

// appendChange writes c as the JSON of eventtype.ChangeData. It is written by
// hand rather than with encoding/json because encoding was most of the
// relay's CPU time (maps and reflection per column); the fuzz test checks it
// against encoding/json. Columns keep table order.
func appendChange(b []byte, c *Change, db string, now time.Time) []byte {
	b = append(b, `{"before":`...)
	b = appendRow(b, c.Before)
	b = append(b, `,"after":`...)
	b = appendRow(b, c.After)
	b = append(b, `,"source":{"connector":"`+Connector+`","db":`...)
	b = appendString(b, db)
	b = append(b, `,"schema":"public","table":`...)
	b = appendString(b, c.Table)
	b = append(b, `,"lsn":`...)
	b = strconv.AppendUint(b, c.LSN, 10)
	b = append(b, `,"txId":`...)
	b = strconv.AppendUint(b, uint64(c.TxID), 10)
	b = append(b, `,"ts_ms":`...)
	b = strconv.AppendInt(b, c.Commit.UnixMilli(), 10)
	b = append(b, `,"snapshot":`...)
	b = strconv.AppendBool(b, c.Snapshot)
	b = append(b, `},"op":`...)
	b = appendString(b, c.Op)
	b = append(b, `,"ts_ms":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	if len(c.UnchangedToast) > 0 {
		b = append(b, `,"unchanged_toast":[`...)
		for i, n := range c.UnchangedToast {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, n)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendRow(b []byte, r Row) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, c := range r {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, c.Name)
		b = append(b, ':')
		b = appendValue(b, c.Value)
	}
	return append(b, '}')
}

func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, v)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case bool:
		return strconv.AppendBool(b, v)
	case time.Time:
		b = append(b, '"')
		b = v.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	case json.RawMessage:
		return append(b, v...)
	case json.Number:
		return append(b, v...)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return appendString(b, strconv.FormatFloat(v, 'g', -1, 64))
		}
		j, _ := json.Marshal(v)
		return append(b, j...)
	case []byte:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v)
		return append(b, '"')
	}
	j, err := json.Marshal(v)
	if err != nil {
		return appendString(b, fmt.Sprint(v))
	}
	return append(b, j...)
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Invalid UTF-8 goes through
// encoding/json, which replaces it.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		j, _ := json.Marshal(s)
		return append(b, j...)
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
