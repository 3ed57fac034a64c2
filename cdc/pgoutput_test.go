package cdc

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

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
	require.Equal(t, time.Date(2026, 11, 25, 19, 52, 15, 500_000_000, time.UTC), c.After["updated_at"])

	u := tx.changes[1]
	require.Equal(t, "u", u.Op)
	require.Equal(t, map[string]any{"id": "rock"}, u.Before, "an old-key tuple yields only the key")
	require.Equal(t, map[string]any{"id": "rock2", "name": "Rock"}, u.After)
	require.Equal(t, []string{"updated_at"}, u.UnchangedToast)
	require.Equal(t, 1, u.Index)

	del := tx.changes[2]
	require.Equal(t, "d", del.Op)
	require.Nil(t, del.After)
	require.Equal(t, map[string]any{"id": "rock2"}, del.Before)
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
				if _, err := toEvent(&tx.changes[i], "/s", "db", time.Now()); err != nil && tx.changes[i].Outbox == nil {
					t.Fatalf("a decoded change must encode: %v", err)
				}
			}
		}
	})
}
