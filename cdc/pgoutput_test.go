package cdc

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/overture-music/overture/internal/eventtype"

	"github.com/stretchr/testify/require"
)

// wire builds pgoutput v1 messages for tests.
type wire []byte

func (w wire) u8(v byte) wire    { return append(w, v) }
func (w wire) u16(v uint16) wire { return binary.BigEndian.AppendUint16(w, v) }
func (w wire) u32(v uint32) wire { return binary.BigEndian.AppendUint32(w, v) }
func (w wire) u64(v uint64) wire { return binary.BigEndian.AppendUint64(w, v) }
func (w wire) str(s string) wire { return append(append(w, s...), 0) }
func (w wire) text(s string) wire {
	return append(w.u8('t').u32(uint32(len(s))), s...)
}

func relationMsgBytes() []byte {
	return wire{'R'}.u32(42).str("public").str("genre").u8('d').u16(3).
		u8(1).str("id").u32(oidText).u32(0xFFFFFFFF).
		u8(0).str("name").u32(oidText).u32(0xFFFFFFFF).
		u8(0).str("updated_at").u32(oidTimestamptz).u32(0xFFFFFFFF)
}

func beginBytes() []byte {
	return wire{'B'}.u64(1000).u64(uint64(5 * time.Second / time.Microsecond)).u32(77)
}

func insertBytes() []byte {
	return wire{'I'}.u32(42).u8('N').u16(3).text("rock").text("Rock").text("2026-11-25 19:52:15.5+00")
}

func updateBytes() []byte {
	return wire{'U'}.u32(42).u8('K').u16(3).text("rock").u8('n').u8('n').
		u8('N').u16(3).text("rock2").text("Rock").u8('u')
}

func deleteBytes() []byte {
	return wire{'D'}.u32(42).u8('K').u16(3).text("rock2").u8('n').u8('n')
}

func commitBytes() []byte {
	return wire{'C'}.u8(0).u64(1000).u64(1100).u64(uint64(5 * time.Second / time.Microsecond))
}

func TestDecoderTransaction(t *testing.T) {
	t.Parallel()
	d := newDecoder(map[string][]string{"genre": {"id"}})
	for i, m := range [][]byte{relationMsgBytes(), beginBytes(), insertBytes(), updateBytes(), deleteBytes()} {
		tx, err := d.handle(uint64(900+i), m)
		require.NoError(t, err)
		require.Nil(t, tx)
	}
	tx, err := d.handle(1000, commitBytes())
	require.NoError(t, err)
	require.NotNil(t, tx)
	require.Equal(t, uint64(1100), tx.end)
	require.Len(t, tx.changes, 3)

	c := tx.changes[0]
	require.Equal(t, "c", c.Op)
	require.Equal(t, uint32(77), c.TxID)
	require.Equal(t, uint64(902), c.LSN)
	require.Equal(t, uint64(1100), c.CommitLSN)
	require.Equal(t, []string{"rock"}, c.Key)
	require.Equal(t, time.Date(2026, 11, 25, 19, 52, 15, 500_000_000, time.UTC), c.After.Map()["updated_at"])

	u := tx.changes[1]
	require.Equal(t, "u", u.Op)
	require.Equal(t, map[string]any{"id": "rock"}, u.Before.Map(), "an old-key tuple yields only the key")
	require.Equal(t, map[string]any{"id": "rock2", "name": "Rock"}, u.After.Map())
	require.Equal(t, []string{"updated_at"}, u.UnchangedToast)
	require.Equal(t, 1, u.Index)

	del := tx.changes[2]
	require.Equal(t, "d", del.Op)
	require.Nil(t, del.After)
	require.Equal(t, map[string]any{"id": "rock2"}, del.Before.Map())
}

func TestDecodeMalformed(t *testing.T) {
	t.Parallel()
	for name, msg := range map[string][]byte{
		"empty":             {},
		"unknown tag":       {'Z', 1, 2},
		"short begin":       beginBytes()[:10],
		"short commit":      commitBytes()[:20],
		"relation no NUL":   wire{'R'}.u32(1).u8('p'),
		"too many columns":  wire{'R'}.u32(1).str("public").str("x").u8('d').u16(60000),
		"insert bad kind":   wire{'I'}.u32(42).u8('X'),
		"tuple overrun":     wire{'I'}.u32(42).u8('N').u16(1).u8('t').u32(1 << 30),
		"tuple bad col":     wire{'I'}.u32(42).u8('N').u16(1).u8('q'),
		"truncate overrun":  wire{'T'}.u32(1 << 20).u8(0),
		"update no new":     wire{'U'}.u32(42).u8('K').u16(0),
		"delete bad kind":   wire{'D'}.u32(42).u8('N').u16(0),
		"short tuple count": wire{'I'}.u32(42).u8('N').u8(0),
	} {
		_, err := decodeMessage(msg, nil)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	d := newDecoder(nil)
	_, err := d.handle(1, insertBytes())
	require.True(t, errors.Is(err, ErrMalformed), "a change outside a transaction is refused")
	_, err = d.handle(1, commitBytes())
	require.ErrorIs(t, err, ErrMalformed)
}

func TestTextValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		oid  uint32
		in   string
		want any
	}{
		{oidInt4, "42", int64(42)},
		{oidInt8, "-9007199254740993", int64(-9007199254740993)},
		{oidBool, "t", true},
		{oidBool, "f", false},
		{oidUUID, "0e6c3a3e-7f43-4d5b-9d3a-2b1f0c7b9a10", "0e6c3a3e-7f43-4d5b-9d3a-2b1f0c7b9a10"},
		{oidTimestamptz, "2026-01-02 03:04:05+03", time.Date(2026, 1, 2, 0, 4, 5, 0, time.UTC)},
		{oidTimestamptz, "2026-01-02 03:04:05.25+05:30", time.Date(2026, 1, 1, 21, 34, 5, 250_000_000, time.UTC)},
		{oidTimestamptz, "infinity", "infinity"},
		{oidTimestamptz, "2026-11-25 19:52:15+00", time.Date(2026, 11, 25, 19, 52, 15, 0, time.UTC)},
		{oidTimestamptz, "2026-11-25 19:52:15.000001+00", time.Date(2026, 11, 25, 19, 52, 15, 1000, time.UTC)},
		{oidTimestamptz, "2026-02-30 00:00:00+00", "2026-02-30 00:00:00+00"},
		{oidTimestamptz, "1999-12-31 23:59:59.5-08", time.Date(2000, 1, 1, 7, 59, 59, 500_000_000, time.UTC)},
		{oidTimestamp, "2026-11-25 19:52:15.25", time.Date(2026, 11, 25, 19, 52, 15, 250_000_000, time.UTC)},
		{oidNumeric, "12.50", "12.50"},
		{oidFloat8, "1.5", 1.5},
		{oidInt4, "oops", "oops"},
	} {
		got := textValue(tc.oid, []byte(tc.in))
		if n, ok := got.(interface{ String() string }); ok && tc.oid == oidNumeric {
			got = n.String()
		}
		require.Equal(t, tc.want, got, "%d %q", tc.oid, tc.in)
	}
}

// checkEncoding compares the hand-written JSON of a change with what
// encoding/json makes of the same eventtype.ChangeData.
func checkEncoding(t *testing.T, c *Change) {
	t.Helper()
	now := time.Unix(1700000000, 0)
	got := appendChange(nil, c, "db", now)
	want, err := json.Marshal(eventtype.ChangeData{
		Before: c.Before.Map(), After: c.After.Map(), Op: c.Op, TsMs: now.UnixMilli(), UnchangedToast: c.UnchangedToast,
		Source: eventtype.ChangeSource{Connector: Connector, DB: "db", Schema: "public", Table: c.Table, LSN: c.LSN, TxID: c.TxID, TsMs: c.Commit.UnixMilli(), Snapshot: c.Snapshot},
	})
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("encoding differs:\n got %s\nwant %s", got, want)
	}
}

func TestEncodingMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	rel, upd := trackUpdateMsgs()
	d := newDecoder(map[string][]string{"track": {"id"}, "genre": {"id"}})
	for i, m := range [][]byte{rel, beginBytes(), upd, relationMsgBytes(), insertBytes(), updateBytes(), deleteBytes()} {
		_, err := d.handle(uint64(i), m)
		require.NoError(t, err)
	}
	tx, err := d.handle(9, commitBytes())
	require.NoError(t, err)
	require.Len(t, tx.changes, 4)
	for i := range tx.changes {
		checkEncoding(t, &tx.changes[i])
	}
	odd := Change{Table: "genre", Op: "c", After: Row{{"s", "quote\" back\\ nl\n tab\t bell\a \u2028 кириллица"}, {"bad", "\xff\xfe"},
		{"f", 1.5e300}, {"nan", math.NaN()}, {"j", json.RawMessage(`{"a":[1,2]}`)}, {"n", json.Number("12.50")}, {"b", []byte{0, 1, 2}}, {"arr", []any{int64(1), "x"}}}}
	got := appendChange(nil, &odd, "db", time.Now())
	var v map[string]any
	require.NoError(t, json.Unmarshal(got, &v), string(got))
	after := v["after"].(map[string]any)
	require.Equal(t, "quote\" back\\ nl\n tab\t bell\a \u2028 кириллица", after["s"])
	require.Equal(t, "NaN", after["nan"])
	require.Equal(t, "AAEC", after["b"])
}

// FuzzTimestamp checks the fast timestamp path against time.Parse.
func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{"2026-11-25 19:52:15.123456+00", "2026-11-25 19:52:15+00", "0001-01-01 00:00:00+00", "2026-13-01 00:00:00+00", "2026-11-25 19:52:15.+00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := fastTimestamp(s, true)
		if !ok {
			return
		}
		want, err := time.Parse("2006-01-02 15:04:05.999999999-07", s)
		if err != nil || !want.Equal(got) {
			t.Fatalf("%q: fast %v, time.Parse %v (%v)", s, got, want, err)
		}
	})
}

// FuzzDecode feeds arbitrary bytes through the decoder as a stream of
// messages: nothing may panic, whatever the server (or a corrupt frame) sends.
func FuzzDecode(f *testing.F) {
	for _, m := range [][]byte{relationMsgBytes(), beginBytes(), insertBytes(), updateBytes(), deleteBytes(), commitBytes(),
		wire{'T'}.u32(1).u8(0).u32(42), wire{'Y'}.u32(1).str("public").str("t"), wire{'O'}.u64(1).str("o")} {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newDecoder(map[string][]string{"genre": {"id"}})
		_, _ = d.handle(1, relationMsgBytes())
		_, _ = d.handle(2, beginBytes())
		_, _ = d.handle(3, data)
		// Also as a relation redefinition followed by a change.
		_, _ = d.handle(4, insertBytes())
		_, _ = d.handle(5, updateBytes())
		tx, _ := d.handle(6, commitBytes())
		if tx != nil {
			for i := range tx.changes {
				checkEncoding(t, &tx.changes[i])
			}
		}
	})
}

// trackUpdateMsgs are a relation and a REPLICA IDENTITY FULL update of a
// track row, as PostgreSQL sends them.
func trackUpdateMsgs() (rel, upd []byte) {
	cols := []struct {
		name string
		oid  uint32
		val  string
	}{
		{"id", oidUUID, "0e6c3a3e-7f43-4d5b-9d3a-2b1f0c7b9a10"}, {"title", oidText, "Группа крови"},
		{"album_id", oidUUID, "1e6c3a3e-7f43-4d5b-9d3a-2b1f0c7b9a10"}, {"genre_id", oidText, "post-punk"},
		{"position", oidInt4, "1"}, {"duration_ms", oidInt4, "285000"}, {"explicit", oidBool, "f"},
		{"lyrics", oidText, ""}, {"popularity", oidInt8, "123456"}, {"state", oidText, "published"},
		{"published_at", oidTimestamptz, "2026-11-25 19:52:15.123456+00"}, {"created_at", oidTimestamptz, "2026-11-25 19:52:15.123456+00"},
		{"updated_at", oidTimestamptz, "2026-11-25 19:52:15.123456+00"},
	}
	r := wire{'R'}.u32(7).str("public").str("track").u8('f').u16(uint16(len(cols)))
	tuple := wire{}.u16(uint16(len(cols)))
	for _, c := range cols {
		r = r.u8(1).str(c.name).u32(c.oid).u32(0xFFFFFFFF)
		if c.name == "lyrics" {
			tuple = tuple.u8('n')
		} else {
			tuple = tuple.text(c.val)
		}
	}
	u := append(append(append(wire{'U'}.u32(7).u8('O'), tuple...), 'N'), tuple...)
	return r, u
}

func BenchmarkDecodeUpdate(b *testing.B) {
	rel, upd := trackUpdateMsgs()
	d := newDecoder(map[string][]string{"track": {"id"}})
	_, _ = d.handle(1, rel)
	_, _ = d.handle(2, beginBytes())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.handle(3, upd); err != nil {
			b.Fatal(err)
		}
		d.tx.changes = d.tx.changes[:0]
	}
}

func BenchmarkEncodeUpdate(b *testing.B) {
	rel, upd := trackUpdateMsgs()
	d := newDecoder(map[string][]string{"track": {"id"}})
	_, _ = d.handle(1, rel)
	_, _ = d.handle(2, beginBytes())
	_, _ = d.handle(3, upd)
	tx, _ := d.handle(4, commitBytes())
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := toEvent(&tx.changes[0], "/overture/cdc/x", "db", now); err != nil {
			b.Fatal(err)
		}
	}
}
