package cdc

import (
	"fmt"
	"slices"
	"time"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
)

// Change is one decoded row change (or an outbox event), typed but not yet a
// CloudEvent.
type Change struct {
	Table          string
	Op             string // eventtype.OpCreate … OpSnapshot, or "t" for TRUNCATE
	Before, After  Row    // nil when absent
	UnchangedToast []string
	// Key holds the primary key values as PostgreSQL printed them.
	Key       []string
	LSN       uint64 // the change's own WAL position
	Index     int    // position within its transaction
	TxID      uint32
	Commit    time.Time
	CommitLSN uint64 // end LSN of the transaction (snapshot: consistent point)
	Snapshot  bool
	// Outbox is the raw CloudEvent of an outbox insert (Table "outbox").
	Outbox   []byte
	OutboxID int64
}

// Col is one column of a row: its name and typed value (see textValue).
type Col struct {
	Name  string
	Value any
}

// Row is a row's columns in table order (JSON: an object in that order).
type Row []Col

// Map returns the row as a map.
func (r Row) Map() map[string]any {
	if r == nil {
		return nil
	}
	m := make(map[string]any, len(r))
	for _, c := range r {
		m[c.Name] = c.Value
	}
	return m
}

// relation is what the decoder knows about a published table.
type relation struct {
	relationMsg
	known  bool  // a catalog table or the outbox
	pk     []int // column indexes of the primary key
	outbox bool
	idCol  int // outbox: column index of id
	evCol  int // outbox: column index of event
}

// txn is a transaction being assembled.
type txn struct {
	xid     uint32
	commit  time.Time
	changes []Change
	end     uint64
}

// decoder turns pgoutput messages into Changes, one transaction at a time.
// It keeps the relation map (a Relation message arrives before a table's first
// change and again after ALTER TABLE) and the primary keys of catalog tables.
type decoder struct {
	pks     map[string][]string // table -> primary key columns
	rels    map[uint32]*relation
	inTx    bool
	tx      txn
	scratch [2][]tupleCol
	// truncates counts TRUNCATEs of catalog tables (metrics).
	truncates int
	// watermark is the position of the newest watermark request (a
	// non-transactional logical message with prefix lsn.WatermarkPrefix).
	watermark uint64
}

func newDecoder(pks map[string][]string) *decoder {
	return &decoder{pks: pks, rels: map[uint32]*relation{}}
}

// handle decodes one XLogData payload that started at walStart. When it
// completes a transaction it returns it (owned by the caller; the decoder
// starts a fresh one).
func (d *decoder) handle(walStart uint64, data []byte) (*txn, error) {
	m, err := decodeMessage(data, &d.scratch)
	if err != nil {
		return nil, err
	}
	switch m := m.(type) {
	case beginMsg:
		d.inTx = true
		d.tx = txn{xid: m.Xid, commit: m.CommitTime}
	case commitMsg:
		if !d.inTx {
			return nil, fmt.Errorf("%w: commit without begin", ErrMalformed)
		}
		d.inTx = false
		t := d.tx
		t.end = m.EndLSN
		t.commit = m.CommitTime
		for i := range t.changes {
			t.changes[i].CommitLSN = m.EndLSN
			t.changes[i].Commit = m.CommitTime
		}
		d.tx = txn{}
		return &t, nil
	case relationMsg:
		d.rels[m.ID] = d.relation(m)
	case logicalMsg:
		if !m.Transactional && m.Prefix == lsn.WatermarkPrefix {
			d.watermark = max(d.watermark, m.LSN)
		}
	case changeMsg:
		if !d.inTx {
			return nil, fmt.Errorf("%w: change outside a transaction", ErrMalformed)
		}
		rel, ok := d.rels[m.Relation]
		if !ok {
			return nil, fmt.Errorf("%w: change for unknown relation %d", ErrMalformed, m.Relation)
		}
		idx := len(d.tx.changes)
		if !rel.known {
			return nil, nil
		}
		c, keep, err := rel.change(m)
		if err != nil {
			return nil, err
		}
		if keep {
			c.LSN, c.Index, c.TxID, c.Table = walStart, idx, d.tx.xid, rel.Name
			d.tx.changes = append(d.tx.changes, c)
		}
	case truncateMsg:
		if !d.inTx {
			return nil, fmt.Errorf("%w: truncate outside a transaction", ErrMalformed)
		}
		for _, id := range m.Relations {
			rel, ok := d.rels[id]
			if !ok || !rel.known || rel.outbox {
				continue
			}
			d.truncates++
			d.tx.changes = append(d.tx.changes, Change{Table: rel.Name, Op: "t", LSN: walStart, Index: len(d.tx.changes), TxID: d.tx.xid})
		}
	}
	return nil, nil
}

func (d *decoder) relation(m relationMsg) *relation {
	r := &relation{relationMsg: m, idCol: -1, evCol: -1}
	if m.Namespace != "public" {
		return r
	}
	if m.Name == "outbox" {
		r.known, r.outbox = true, true
		for i, c := range m.Columns {
			switch c.Name {
			case "id":
				r.idCol = i
			case "event":
				r.evCol = i
			}
		}
		return r
	}
	pk, ok := d.pks[m.Name]
	if !ok {
		return r
	}
	r.known = true
	for _, name := range pk {
		for i, c := range m.Columns {
			if c.Name == name {
				r.pk = append(r.pk, i)
			}
		}
	}
	return r
}

// change converts an insert/update/delete of a known relation. keep is false
// for messages CDC deliberately drops (outbox updates and deletes).
func (r *relation) change(m changeMsg) (c Change, keep bool, err error) {
	if len(m.New) > len(r.Columns) || len(m.Old) > len(r.Columns) {
		return c, false, fmt.Errorf("%w: tuple of %s has more columns than its relation", ErrMalformed, r.Name)
	}
	if r.outbox {
		if m.Tag != tagInsert {
			return c, false, nil
		}
		if r.evCol < 0 || r.evCol >= len(m.New) || m.New[r.evCol].Kind != colText {
			return c, false, fmt.Errorf("%w: outbox insert without an event column", ErrMalformed)
		}
		c.Op = eventtype.OpCreate
		c.Outbox = slices.Clone(m.New[r.evCol].Data)
		if r.idCol >= 0 && r.idCol < len(m.New) {
			if v, ok := textValue(oidInt8, m.New[r.idCol].Data).(int64); ok {
				c.OutboxID = v
			}
		}
		return c, true, nil
	}
	switch m.Tag {
	case tagInsert:
		c.Op = eventtype.OpCreate
		c.After, _ = r.row(m.New, nil, false)
		c.Key = r.key(m.New)
	case tagUpdate:
		c.Op = eventtype.OpUpdate
		var old []tupleCol
		if m.OldKind == 'O' {
			old = m.Old
		}
		c.After, c.UnchangedToast = r.row(m.New, old, false)
		switch m.OldKind {
		case 'O':
			c.Before, _ = r.row(m.Old, nil, false)
		case 'K':
			c.Before, _ = r.row(m.Old, nil, true)
		default: // key unchanged and not logged: the old key is the new key
			c.Before = r.keyRow(m.New)
		}
		c.Key = r.key(m.New)
	case tagDelete:
		c.Op = eventtype.OpDelete
		c.Before, _ = r.row(m.Old, nil, m.OldKind == 'K')
		c.Key = r.key(m.Old)
	}
	return c, true, nil
}

// row builds a column map from a tuple. An unchanged TOAST column takes its
// value from old (the full old row of REPLICA IDENTITY FULL) when it is there;
// otherwise it is left out and reported in unchanged. keyOnly keeps only
// replica identity columns (an old-key tuple carries NULLs for the rest).
func (r *relation) row(t, old []tupleCol, keyOnly bool) (Row, []string) {
	row := make(Row, 0, len(t))
	var unchanged []string
	for i, col := range t {
		rc := r.Columns[i]
		if keyOnly && !rc.Key {
			continue
		}
		switch col.Kind {
		case colNull:
			row = append(row, Col{rc.Name, nil})
		case colUnchanged:
			if i < len(old) && (old[i].Kind == colText || old[i].Kind == colNull) {
				if old[i].Kind == colNull {
					row = append(row, Col{rc.Name, nil})
				} else {
					row = append(row, Col{rc.Name, textValue(rc.TypeOID, old[i].Data)})
				}
				continue
			}
			unchanged = append(unchanged, rc.Name)
		case colText:
			row = append(row, Col{rc.Name, textValue(rc.TypeOID, col.Data)})
		case colBinary:
			row = append(row, Col{rc.Name, slices.Clone(col.Data)})
		}
	}
	return row, unchanged
}

// keyRow is the primary key columns of t.
func (r *relation) keyRow(t []tupleCol) Row {
	row := make(Row, 0, len(r.pk))
	for _, i := range r.pk {
		if i < len(t) && t[i].Kind == colText {
			row = append(row, Col{r.Columns[i].Name, textValue(r.Columns[i].TypeOID, t[i].Data)})
		}
	}
	return row
}

// key is the text of the primary key values of t.
func (r *relation) key(t []tupleCol) []string {
	k := make([]string, 0, len(r.pk))
	for _, i := range r.pk {
		if i < len(t) && t[i].Kind == colText {
			k = append(k, string(t[i].Data))
		} else {
			k = append(k, "")
		}
	}
	return k
}
