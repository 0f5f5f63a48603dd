package wtcache

import (
	"strings"
	"testing"

	"github.com/wtcache/wtcache/internal/recognize"
)

// strictUnescapeKeyPart reverses escapeKeyPart; ok is false for text
// escapeKeyPart cannot produce.
func strictUnescapeKeyPart(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if c <= ' ' || c >= 0x7f || strings.IndexByte(":{}/.", c) >= 0 {
				return "", false
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		var v byte
		for _, h := range []byte{s[i+1], s[i+2]} {
			switch {
			case h >= '0' && h <= '9':
				v = v<<4 | (h - '0')
			case h >= 'A' && h <= 'F':
				v = v<<4 | (h - 'A' + 10)
			default:
				return "", false
			}
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), true
}

// FuzzKeyEncoding: whatever the prefix, database, schema, table and key
// values, a row key holds exactly one hash tag, which is its table's tag
// (so every key of a table shares a cluster slot and no key escapes its
// table's tag), and it decodes back to exactly its inputs: two different
// rows, tables or namespaces never share a key.
func FuzzKeyEncoding(f *testing.F) {
	f.Add("wtc", "bank", "public", "accounts", "1", "")
	f.Add("a:b", "d}b", "s.c", "t{x}", "5:6", "%41")
	f.Add("", "", "", "", "", "")
	f.Add("{p}", "db", "my schema", "tä", "key with spaces", "\x00\xff")
	f.Add("p", "db", "s", "t", "a.b", "c/d")
	f.Fuzz(func(t *testing.T, prefix, db, schema, name, k1, k2 string) {
		tag := tableTag(prefix, db, recognize.Table{Schema: schema, Name: name})
		key := rowKey(tag, []string{k1, k2})
		if !strings.HasPrefix(key, tag) || strings.Count(key, "{") != 1 || strings.Count(key, "}") != 1 ||
			!strings.HasPrefix(key, "{") || strings.IndexByte(key, '}') != len(tag)-1 {
			t.Fatalf("key %q does not hold exactly its table's tag %q", key, tag)
		}
		if meta := metaKey(tag); !strings.HasPrefix(meta, tag) || strings.Count(meta, "{") != 1 {
			t.Fatalf("meta key %q escapes its tag", meta)
		}
		// Decode: {prefix:db:schema.name}:r:k1:k2
		inner := tag[1 : len(tag)-1]
		f3 := strings.Split(inner, ":")
		if len(f3) != 3 {
			t.Fatalf("tag %q has %d fields", tag, len(f3))
		}
		sn := strings.Split(f3[2], ".")
		if len(sn) != 2 {
			t.Fatalf("tag %q: schema.table has %d parts", tag, len(sn))
		}
		rest := strings.Split(strings.TrimPrefix(key[len(tag):], ":r:"), ":")
		if !strings.HasPrefix(key[len(tag):], ":r:") || len(rest) != 2 {
			t.Fatalf("key %q: parts %q", key, rest)
		}
		got := []string{}
		for _, enc := range []string{f3[0], f3[1], sn[0], sn[1], rest[0], rest[1]} {
			s, ok := strictUnescapeKeyPart(enc)
			if !ok {
				t.Fatalf("key %q: %q is not an escaped part", key, enc)
			}
			got = append(got, s)
		}
		want := []string{prefix, db, schema, name, k1, k2}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("key %q decodes to %q, want %q", key, got, want)
			}
		}
	})
}
