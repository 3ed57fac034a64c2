package cdc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// This file decodes pgoutput protocol version 1 messages (the payload of
// XLogData). pglogrepl ships decoders too, but they index the buffer without
// bounds checks (a truncated or corrupt message panics the relay) and allocate
// one struct and one copy per column; this decoder checks every length, returns
// ErrMalformed instead, and hands out sub-slices of the message that are valid
// until the next receive (callers copy what they keep).
// pglogrepl is still used for everything around it: slot creation, START_REPLICATION,
// XLogData/keepalive framing and standby status updates.

// ErrMalformed is returned (wrapped) for a pgoutput message that cannot be decoded.
var ErrMalformed = errors.New("malformed pgoutput message")

// pgoutput message tags (protocol v1).
const (
	tagBegin    = 'B'
	tagCommit   = 'C'
	tagOrigin   = 'O'
	tagRelation = 'R'
	tagType     = 'Y'
	tagInsert   = 'I'
	tagUpdate   = 'U'
	tagDelete   = 'D'
	tagTruncate = 'T'
	tagMessage  = 'M'
)

// Tuple column kinds.
const (
	colNull      = 'n'
	colUnchanged = 'u' // an unchanged TOASTed value PostgreSQL did not send
	colText      = 't'
	colBinary    = 'b'
)

// pgEpoch is PostgreSQL's timestamp epoch.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated %s", ErrMalformed, what)
	}
}

func (r *reader) u8(what string) byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16(what string) uint16 {
	if r.err != nil || len(r.b) < 2 {
		r.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32(what string) uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64(what string) uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) time(what string) time.Time {
	us := int64(r.u64(what))
	return pgEpoch.Add(time.Duration(us) * time.Microsecond)
}

// str reads a NUL-terminated string.
func (r *reader) str(what string) string {
	if r.err != nil {
		return ""
	}
	for i, c := range r.b {
		if c == 0 {
			s := string(r.b[:i])
			r.b = r.b[i+1:]
			return s
		}
	}
	r.fail(what)
	return ""
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		r.fail(what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// beginMsg starts a transaction.
type beginMsg struct {
	FinalLSN   uint64 // LSN of the commit record
	CommitTime time.Time
	Xid        uint32
}

// commitMsg ends a transaction.
type commitMsg struct {
	CommitLSN  uint64
	EndLSN     uint64 // end of the commit record: the position to confirm
	CommitTime time.Time
}

// relationColumn describes one column of a relation.
type relationColumn struct {
	Key     bool // part of the replica identity
	Name    string
	TypeOID uint32
	TypMod  int32
}

// relationMsg describes a table; it precedes the first change of a table in a
// session and is sent again after the table's definition changed.
type relationMsg struct {
	ID              uint32
	Namespace       string
	Name            string
	ReplicaIdentity byte // 'd' default, 'n' nothing, 'f' full, 'i' index
	Columns         []relationColumn
}

// tupleCol is one column value of a tuple; Data aliases the message buffer.
type tupleCol struct {
	Kind byte // colNull, colUnchanged, colText, colBinary
	Data []byte
}

// changeMsg is an insert, update or delete.
type changeMsg struct {
	Tag      byte // tagInsert, tagUpdate, tagDelete
	Relation uint32
	// OldKind is 'K' (old key), 'O' (old row, REPLICA IDENTITY FULL) or 0.
	OldKind byte
	Old     []tupleCol
	New     []tupleCol
}

// truncateMsg lists truncated relations.
type truncateMsg struct {
	Options   byte // 1 CASCADE, 2 RESTART IDENTITY
	Relations []uint32
}

// logicalMsg is a logical decoding message (pg_logical_emit_message).
type logicalMsg struct {
	Transactional bool
	LSN           uint64
	Prefix        string
}

// otherMsg is a message CDC does not act on (origin, type).
type otherMsg struct{ Tag byte }

// decodeMessage decodes one pgoutput v1 message. Tuple data alias msg. The
// scratch slices, when non-nil, are reused for tuple columns.
func decodeMessage(msg []byte, scratch *[2][]tupleCol) (any, error) {
	if len(msg) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	r := &reader{b: msg[1:]}
	var out any
	switch tag := msg[0]; tag {
	case tagBegin:
		m := beginMsg{FinalLSN: r.u64("begin lsn"), CommitTime: r.time("begin time"), Xid: r.u32("begin xid")}
		out = m
	case tagCommit:
		r.u8("commit flags")
		m := commitMsg{CommitLSN: r.u64("commit lsn"), EndLSN: r.u64("commit end lsn"), CommitTime: r.time("commit time")}
		out = m
	case tagRelation:
		m := relationMsg{ID: r.u32("relation id"), Namespace: r.str("namespace"), Name: r.str("relation name")}
		m.ReplicaIdentity = r.u8("replica identity")
		n := int(r.u16("column count"))
		if r.err == nil && n > len(r.b)/7 { // each column takes at least 7 bytes
			r.fail("relation columns")
		}
		if r.err == nil {
			m.Columns = make([]relationColumn, n)
			for i := range m.Columns {
				c := &m.Columns[i]
				c.Key = r.u8("column flags")&1 == 1
				c.Name = r.str("column name")
				c.TypeOID = r.u32("column type")
				c.TypMod = int32(r.u32("column typmod"))
			}
		}
		out = m
	case tagInsert:
		m := changeMsg{Tag: tag, Relation: r.u32("insert relation")}
		if k := r.u8("insert tuple kind"); r.err == nil && k != 'N' {
			return nil, fmt.Errorf("%w: insert tuple kind %q", ErrMalformed, k)
		}
		m.New = r.tuple(scratchSlot(scratch, 1))
		out = m
	case tagUpdate:
		m := changeMsg{Tag: tag, Relation: r.u32("update relation")}
		k := r.u8("update tuple kind")
		if k == 'K' || k == 'O' {
			m.OldKind = k
			m.Old = r.tuple(scratchSlot(scratch, 0))
			k = r.u8("update new tuple kind")
		}
		if r.err == nil && k != 'N' {
			return nil, fmt.Errorf("%w: update tuple kind %q", ErrMalformed, k)
		}
		m.New = r.tuple(scratchSlot(scratch, 1))
		out = m
	case tagDelete:
		m := changeMsg{Tag: tag, Relation: r.u32("delete relation")}
		k := r.u8("delete tuple kind")
		if r.err == nil && k != 'K' && k != 'O' {
			return nil, fmt.Errorf("%w: delete tuple kind %q", ErrMalformed, k)
		}
		m.OldKind = k
		m.Old = r.tuple(scratchSlot(scratch, 0))
		out = m
	case tagTruncate:
		n := int(r.u32("truncate count"))
		m := truncateMsg{Options: r.u8("truncate options")}
		if r.err == nil && n > len(r.b)/4 {
			r.fail("truncate relations")
		}
		for i := 0; i < n && r.err == nil; i++ {
			m.Relations = append(m.Relations, r.u32("truncate relation"))
		}
		out = m
	case tagMessage:
		m := logicalMsg{Transactional: r.u8("message flags")&1 == 1, LSN: r.u64("message lsn"), Prefix: r.str("message prefix")}
		r.bytes(int(r.u32("message length")), "message content")
		out = m
	case tagOrigin, tagType:
		out = otherMsg{Tag: tag}
	default:
		return nil, fmt.Errorf("%w: unknown message tag %q", ErrMalformed, tag)
	}
	if r.err != nil {
		return nil, r.err
	}
	if m, ok := out.(changeMsg); ok && scratch != nil {
		if m.Old != nil {
			scratch[0] = m.Old
		}
		if m.New != nil {
			scratch[1] = m.New
		}
	}
	return out, nil
}

func scratchSlot(s *[2][]tupleCol, i int) []tupleCol {
	if s == nil {
		return nil
	}
	return s[i][:0]
}

// tuple reads TupleData into buf (appending).
func (r *reader) tuple(buf []tupleCol) []tupleCol {
	n := int(r.u16("tuple column count"))
	if r.err != nil {
		return nil
	}
	if n > len(r.b) { // each column takes at least one byte
		r.fail("tuple columns")
		return nil
	}
	for i := 0; i < n; i++ {
		c := tupleCol{Kind: r.u8("tuple column kind")}
		switch c.Kind {
		case colNull, colUnchanged:
		case colText, colBinary:
			l := r.u32("tuple column length")
			if l > uint32(len(r.b)) {
				r.fail("tuple column data")
				return nil
			}
			c.Data = r.bytes(int(l), "tuple column data")
		default:
			if r.err == nil {
				r.err = fmt.Errorf("%w: tuple column kind %q", ErrMalformed, c.Kind)
			}
		}
		if r.err != nil {
			return nil
		}
		buf = append(buf, c)
	}
	return buf
}
