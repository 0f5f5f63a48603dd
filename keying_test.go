package wtcache

import (
	"database/sql/driver"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/wtcache/wtcache/internal/recognize"
)

// Unit tests of key normalisation and key encoding; no services needed.

// rpID is an application's named key type (type AccountID int64).
type rpID int64

// rpValuer is a driver.Valuer key (sql.NullInt64-like wrappers).
type rpValuer struct{ n int64 }

func (v rpValuer) Value() (driver.Value, error) { return v.n, nil }

// rpUUID is a named [16]byte without methods.
type rpUUID [16]byte

// rpGoogleUUID is shaped like github.com/google/uuid.UUID: a named
// [16]byte whose driver.Valuer returns the canonical string.
type rpGoogleUUID [16]byte

func (u rpGoogleUUID) Value() (driver.Value, error) {
	s, _ := normalizeUUID([16]byte(u))
	return s, nil
}

func intCol(bits int) *columnInfo {
	oid := map[int]uint32{16: 21, 32: 23, 64: 20}[bits]
	return &columnInfo{name: "id", typeOID: oid, keyKind: keyInt, intBits: bits}
}

var (
	textCol = &columnInfo{name: "k", typeOID: 25, keyKind: keyText}
	uuidCol = &columnInfo{name: "u", typeOID: 2950, keyKind: keyUUID}
)

func TestNormalizeKeyIntegerForms(t *testing.T) {
	col := intCol(64)
	same := map[string]any{
		"int64":         int64(5),
		"int32":         int32(5),
		"int":           int(5),
		"int16":         int16(5),
		"int8":          int8(5),
		"uint8":         uint8(5),
		"uint16":        uint16(5),
		"uint32":        uint32(5),
		"uint64":        uint64(5),
		"uint":          uint(5),
		"string":        "5",
		"named int64":   rpID(5),
		"driver.Valuer": rpValuer{5},
	}
	for name, v := range same {
		got, ok := normalizeKey(col, v)
		if !ok || got != "5" {
			t.Errorf("%s %#v: (%q, %v), want (\"5\", true)", name, v, got, ok)
		}
	}
	for _, c := range []struct {
		v    any
		want string
	}{
		{int64(-7), "-7"}, {"-7", "-7"}, {"0", "0"}, {int64(0), "0"},
		{int64(math.MinInt64), "-9223372036854775808"},
		{uint64(math.MaxInt64), "9223372036854775807"},
	} {
		if got, ok := normalizeKey(col, c.v); !ok || got != c.want {
			t.Errorf("%#v: (%q, %v), want %q", c.v, got, ok, c.want)
		}
	}
	// Anything that is not exactly one plain integer passes through.
	for _, v := range []any{
		"05", " 5", "5 ", "+5", "5.0", "-0", "", "5e0", "0x5", "five",
		"9223372036854775808", 5.5, float64(5), float32(5), true,
		uint64(math.MaxUint64), uint64(math.MaxInt64) + 1, []byte("5"), nil,
		new(int64), // pointer: not reduced
	} {
		if got, ok := normalizeKey(col, v); ok {
			t.Errorf("%#v was accepted as %q; it must pass through", v, got)
		}
	}
}

func TestNormalizeKeyIntegerRange(t *testing.T) {
	for _, c := range []struct {
		bits    int
		in, out []any
	}{
		{16, []any{int64(math.MaxInt16), int64(math.MinInt16), "32767", "-32768"},
			[]any{int64(math.MaxInt16 + 1), int64(math.MinInt16 - 1), "32768", "-32769", uint32(40000)}},
		{32, []any{int64(math.MaxInt32), int64(math.MinInt32), "2147483647"},
			[]any{int64(math.MaxInt32 + 1), int64(math.MinInt32 - 1), "2147483648", "-2147483649", uint64(3e9)}},
		{64, []any{int64(math.MaxInt64), int64(math.MinInt64)},
			[]any{"9223372036854775808", "-9223372036854775809"}},
	} {
		col := intCol(c.bits)
		for _, v := range c.in {
			if _, ok := normalizeKey(col, v); !ok {
				t.Errorf("int%d: %#v rejected", c.bits/8, v)
			}
		}
		for _, v := range c.out {
			if s, ok := normalizeKey(col, v); ok {
				t.Errorf("int%d: out-of-range %#v accepted as %q", c.bits/8, v, s)
			}
		}
	}
}

func TestNormalizeKeyUUIDForms(t *testing.T) {
	const want = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
	raw := [16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	forms := map[string]any{
		"[16]byte":                raw,
		"[]byte(16)":              raw[:],
		"canonical":               want,
		"upper case":              "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
		"no hyphens":              "a0eebc999c0b4ef8bb6d6bb9bd380a11",
		"braces":                  "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
		"named [16]byte":          rpUUID(raw),
		"google/uuid-like Valuer": rpGoogleUUID(raw),
	}
	for name, v := range forms {
		got, ok := normalizeKey(uuidCol, v)
		if !ok || got != want {
			t.Errorf("%s: (%q, %v), want %q", name, got, ok, want)
		}
	}
	for _, v := range []any{
		raw[:15], append(raw[:16:16], 0), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "a0eebc99x9c0b-4ef8-bb6d-6bb9bd380a11",
		"g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", int64(1), "",
	} {
		if s, ok := normalizeKey(uuidCol, v); ok {
			t.Errorf("%#v accepted as %q", v, s)
		}
	}
}

func TestNormalizeKeyText(t *testing.T) {
	for _, s := range []string{"a", "A", " a", "a ", "", "05", "ä", "a:b", "{x}", "%41", "line\nbreak"} {
		if got, ok := normalizeKey(textCol, s); !ok || got != s {
			t.Errorf("%q: (%q, %v): text keys keep their exact bytes", s, got, ok)
		}
	}
	type name string
	if got, ok := normalizeKey(textCol, name("x")); !ok || got != "x" {
		t.Errorf("named string: (%q, %v)", got, ok)
	}
	for _, v := range []any{"a\x00b", "\xff", "a\xc3", []byte("a"), int64(5)} {
		if s, ok := normalizeKey(textCol, v); ok {
			t.Errorf("%#v accepted as %q", v, s)
		}
	}
	// Two different texts never share a key.
	tag := tableTag("p", "d", recognize.Table{Schema: "s", Name: "t"})
	seen := map[string]string{}
	for _, s := range []string{"a", "A", "a ", " a", "a%20", "a%", "%", "%25", ":", "%3A", "{", "}", "%7B"} {
		k := rowKey(tag, []string{s})
		if prev, ok := seen[k]; ok {
			t.Errorf("texts %q and %q share the key %q", prev, s, k)
		}
		seen[k] = s
	}
}

// firstHashTag returns the part of key that Redis Cluster hashes: the text
// between the first '{' and the first '}' after it, when not empty.
func firstHashTag(key string) (string, bool) {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return "", false
	}
	return key[i+1 : i+1+j], true
}

// crc16 is Redis Cluster's CRC16 (XMODEM).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// clusterSlot is Redis Cluster's keyHashSlot.
func clusterSlot(key string) uint16 {
	if tag, ok := firstHashTag(key); ok {
		key = tag
	}
	return crc16(key) % 16384
}

func TestKeyEncodingUnambiguous(t *testing.T) {
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16 check value %#x, want 0x31c3", got)
	}
	tag := tableTag("wtc", "db", recognize.Table{Schema: "public", Name: "t"})
	if a, b := rowKey(tag, []string{"a:b", "c"}), rowKey(tag, []string{"a", "b:c"}); a == b {
		t.Fatalf("composite keys (a:b, c) and (a, b:c) share %q", a)
	}
	if a, b := rowKey(tag, []string{"a", ""}), rowKey(tag, []string{"a:"}); a == b {
		t.Fatalf("(a, '') and (a:) share %q", a)
	}
	k := rowKey(tag, []string{"{x}", "50%", "}{"})
	if strings.ContainsAny(k[len(tag):], "{}") {
		t.Fatalf("braces of a key value reach the key: %q", k)
	}
	if !strings.Contains(k, "%7Bx%7D") || !strings.Contains(k, "50%25") {
		t.Fatalf("'{', '}' and '%%' are not escaped as %%XX: %q", k)
	}

	// Distinct (prefix, database, schema, table) never share a tag. (Roles
	// share entries: see keying.go.)
	type ns struct{ prefix, db, schema, name string }
	spaces := []ns{
		{"wtc", "db", "public", "t"},
		{"wtc", "db", "public", "T"},
		{"wtc:db", "app", "public", "t"},
		{"wtc", "db:app", "public", "t"},
		{"wtc", "a/b", "s", "t"},
		{"wtc", "a", "b/s", "t"},
		{"wtc", "d", "a.b", "c"},
		{"wtc", "d", "a", "b.c"},
		{"wtc", "d:s", "x", "t"},
		{"wtc", "d", "x:s", "t"},
		{"wtc", "d", "s", "t}"},
		{"wtc", "d", "s", "{t"},
		{"wtc", "d", "s", "t%7D"},
		{"w{tc}", "d", "s", "t"},
		{"wtc", "d.s", "", "t"},
	}
	tags := map[string]ns{}
	for _, n := range spaces {
		tg := tableTag(n.prefix, n.db, recognize.Table{Schema: n.schema, Name: n.name})
		if prev, ok := tags[tg]; ok {
			t.Errorf("%+v and %+v share the hash tag %q", prev, n, tg)
		}
		tags[tg] = n

		// Every key of the table hashes on exactly its tag: the tag is the
		// first {...} pair, so Redis Cluster puts them in one slot.
		keys := []string{metaKey(tg), rowKey(tg, []string{"1"}), rowKey(tg, []string{"}{", "{"}), rowKey(tg, []string{"a:b", "%7D"})}
		want := tg[1 : len(tg)-1]
		if strings.ContainsAny(want, "{}") {
			t.Errorf("tag %q holds a brace inside it", tg)
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, tg) {
				t.Errorf("key %q does not start with its tag %q", k, tg)
			}
			if got, ok := firstHashTag(k); !ok || got != want {
				t.Errorf("key %q hashes on %q, want %q", k, got, want)
			}
			if strings.Count(k, "{") != 1 || strings.Count(k, "}") != 1 {
				t.Errorf("key %q has braces besides its hash tag", k)
			}
			if clusterSlot(k) != clusterSlot(metaKey(tg)) {
				t.Errorf("key %q is in slot %d, its meta key in %d", k, clusterSlot(k), clusterSlot(metaKey(tg)))
			}
		}
	}
}

// TestKeyIsNormalizeKey: keyIs answers what comparing normalizeKey's text
// answers, for integers of every column width around their bounds and
// for texts, against matching and non-matching parts.
func TestKeyIsNormalizeKey(t *testing.T) {
	var values []any
	for _, n := range []int64{0, 1, -1, 7, 100, -100, math.MaxInt16, math.MaxInt16 + 1, math.MinInt16, math.MinInt16 - 1,
		math.MaxInt32, math.MaxInt32 + 1, math.MinInt32, math.MinInt32 - 1, math.MaxInt64, math.MinInt64} {
		values = append(values, n, int32(n), strconv.FormatInt(n, 10))
	}
	values = append(values, nil, "07", "+7", " 7", "x", 7.0, []byte("7"))
	cols := []*columnInfo{intCol(16), intCol(32), intCol(64), textCol}
	for _, col := range cols {
		for _, v := range values {
			want, ok := normalizeKey(col, v)
			parts := []string{want, want + "0", "7", "-1", "", fmt.Sprint(v)} // its own text too, in range or not
			for _, p := range parts {
				if got, exp := keyIs(col, v, p), ok && want == p; got != exp {
					t.Fatalf("column %d bits %d, value %#v, part %q: keyIs %v, normalizeKey %q %v", col.typeOID, col.intBits, v, p, got, want, ok)
				}
			}
		}
	}
}
