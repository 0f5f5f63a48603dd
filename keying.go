package wtcache

import (
	"database/sql/driver"
	"encoding/hex"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wtcache/wtcache/internal/recognize"
)

// Keys. Every row has one Redis key:
//
//	{<prefix>:<database>:<schema>.<table>}:r:<pk1>:<pk2>...
//
// and every table one meta key {...}:t holding its generation and
// table-wide intents. The part in braces is a Redis Cluster hash tag: all
// keys of one table live in one slot, so that each protocol script, which
// reads the table's meta key with its rows, runs on one node. Components
// are escaped so that the encoding is unambiguous: ':', '{', '}', '%', '/',
// '.' and bytes outside printable ASCII become %XX.
//
// Keys are not namespaced by role: a write by any role must reach every
// reader's entries. Roles are kept apart instead by serving only what every
// reader may see whole: tables without row-level security, to sessions
// whose role holds SELECT on the whole table (a role with less goes to
// PostgreSQL, which answers it as it should).
//
// Primary-key values are normalised by the column's type before they are
// encoded: the same row asked for with int64(5), int32(5) or "5" has one
// key, and so has a UUID in any of its text forms or as 16 bytes.

// keyKind is how a primary-key column's values are normalised.
type keyKind uint8

const (
	keyUnsupported keyKind = iota
	keyInt                 // smallint, integer, bigint (and domains over them)
	keyText                // text, varchar with a deterministic collation
	keyUUID
)

// keyKindOf maps a base type OID to how its values are keyed.
func keyKindOf(baseOID uint32, deterministic bool) keyKind {
	switch baseOID {
	case 20, 21, 23: // int8, int2, int4
		return keyInt
	case 25, 1043: // text, varchar
		if deterministic {
			return keyText
		}
	case 2950: // uuid
		return keyUUID
	}
	return keyUnsupported
}

func escapeKeyPart(b *strings.Builder, s string) {
	var buf [64]byte
	b.Write(appendKeyPart(buf[:0], s))
}

// appendKeyPart appends s escaped (escapeKeyPart) to dst.
func appendKeyPart(dst []byte, s string) []byte {
	const hexdig = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ':' || c == '{' || c == '}' || c == '%' || c == '/' || c == '.' {
			dst = append(dst, '%', hexdig[c>>4], hexdig[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// tableTag returns the hash-tagged prefix shared by a table's keys.
func tableTag(prefix, database string, t recognize.Table) string {
	var b strings.Builder
	b.WriteByte('{')
	escapeKeyPart(&b, prefix)
	b.WriteByte(':')
	escapeKeyPart(&b, database)
	b.WriteByte(':')
	escapeKeyPart(&b, t.Schema)
	b.WriteByte('.')
	escapeKeyPart(&b, t.Name)
	b.WriteByte('}')
	return b.String()
}

func metaKey(tag string) string { return tag + ":t" }

// rowKey builds a row key from normalised key parts.
func rowKey(tag string, parts []string) string {
	var buf [160]byte
	return string(appendRowKey(buf[:0], tag, parts))
}

// appendRowKey appends rowKey(tag, parts) to dst.
func appendRowKey(dst []byte, tag string, parts []string) []byte {
	dst = append(dst, tag...)
	dst = append(dst, ':', 'r')
	for _, p := range parts {
		dst = append(dst, ':')
		dst = appendKeyPart(dst, p)
	}
	return dst
}

// normalizeKey turns an argument or literal into the canonical text of a
// key column value. ok is false when the value is not one the column
// would compare equal in exactly one way; the statement then passes
// through to the database, which gives its own answer.
func normalizeKey(col *columnInfo, v any) (string, bool) {
	v = basicValue(v)
	switch col.keyKind {
	case keyInt:
		if n, ok := v.(int64); ok { // the common argument: no text to parse back
			if !intFits(n, col.intBits) {
				return "", false
			}
			return strconv.FormatInt(n, 10), true
		}
		s, ok := normalizeInt(v)
		if !ok || !inIntRange(s, col.intBits) {
			// Out of the column's range: PostgreSQL would raise an error
			// for a parameter; let it.
			return "", false
		}
		return s, true
	case keyText:
		switch x := v.(type) {
		case string:
			if !utf8.ValidString(x) || strings.IndexByte(x, 0) >= 0 {
				return "", false
			}
			return x, true
		}
	case keyUUID:
		return normalizeUUID(v)
	}
	return "", false
}

func inIntRange(s string, bits int) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && intFits(n, bits)
}

// keyIs reports whether normalizeKey(col, v) is part, without making the
// text of an int64 (an image's key column, compared on every hit decoded).
func keyIs(col *columnInfo, v any, part string) bool {
	if n, ok := v.(int64); ok && col.keyKind == keyInt {
		var buf [20]byte
		return intFits(n, col.intBits) && string(strconv.AppendInt(buf[:0], n, 10)) == part
	}
	s, ok := normalizeKey(col, v)
	return ok && s == part
}

// intFits reports whether n is a value of an integer column of bits bits.
func intFits(n int64, bits int) bool {
	switch bits {
	case 16:
		return n >= math.MinInt16 && n <= math.MaxInt16
	case 32:
		return n >= math.MinInt32 && n <= math.MaxInt32
	}
	return true
}

func normalizeInt(v any) (string, bool) {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.FormatInt(int64(x), 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case int16:
		return strconv.FormatInt(int64(x), 10), true
	case int8:
		return strconv.FormatInt(int64(x), 10), true
	case uint8:
		return strconv.FormatUint(uint64(x), 10), true
	case uint16:
		return strconv.FormatUint(uint64(x), 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	case uint64:
		if x > math.MaxInt64 {
			return "", false
		}
		return strconv.FormatUint(x, 10), true
	case uint:
		if uint64(x) > math.MaxInt64 {
			return "", false
		}
		return strconv.FormatUint(uint64(x), 10), true
	case string:
		// PostgreSQL's integer input accepts surrounding blanks and a
		// sign; accept only the plain form and let anything else pass
		// through.
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil || (len(x) > 1 && x[0] == '0') || x == "-0" || strings.HasPrefix(x, "+") {
			return "", false
		}
		return strconv.FormatInt(n, 10), true
	}
	return "", false
}

func normalizeUUID(v any) (string, bool) {
	var raw [16]byte
	switch x := v.(type) {
	case [16]byte:
		raw = x
	case []byte:
		if len(x) != 16 {
			return "", false
		}
		copy(raw[:], x)
	case string:
		s := x
		if len(s) == 38 && s[0] == '{' && s[37] == '}' {
			s = s[1:37]
		}
		switch len(s) {
		case 36:
			if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
				return "", false
			}
			s = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
		case 32:
		default:
			return "", false
		}
		if _, err := hex.Decode(raw[:], []byte(s)); err != nil {
			return "", false
		}
	default:
		return "", false
	}
	var out [36]byte
	hex.Encode(out[0:8], raw[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], raw[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], raw[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], raw[8:10])
	out[23] = '-'
	hex.Encode(out[24:], raw[10:])
	return string(out[:]), true
}

// basicValue reduces an argument to a basic Go value: a driver.Valuer to
// its Value, a named type (type AccountID int64) to its underlying kind,
// a nil pointer of any type to nil (pgx sends it as NULL without calling
// a method of it).
func basicValue(v any) any {
	switch v.(type) {
	case nil, int64, int, int32, int16, int8, uint64, uint32, uint16, uint8, uint, string, []byte, [16]byte:
		return v
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil
	}
	if vr, ok := v.(driver.Valuer); ok {
		vv, err := vr.Value()
		if err != nil {
			return nil
		}
		return vv
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint()
	case reflect.String:
		return rv.String()
	case reflect.Array:
		if rv.Len() == 16 && rv.Type().Elem().Kind() == reflect.Uint8 {
			var b [16]byte
			reflect.Copy(reflect.ValueOf(b[:]), rv)
			return b
		}
	}
	return nil
}
