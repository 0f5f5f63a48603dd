package recognize

import (
	"strings"
	"unicode/utf8"
)

// kwCat is a keyword category, as in PostgreSQL's kwlist.h.
type kwCat uint8

const (
	kwNone       kwCat = iota // not a keyword
	kwUnreserved              // usable as any name
	kwColName                 // usable as a column or table name, not as a function or type name
	kwTypeFunc                // usable as a function or type name, not as a column or table name
	kwReserved                // usable only after AS, or quoted
)

// maxKeywordLen is the length of the longest keyword.
const maxKeywordLen = 17

// namedatalen is PostgreSQL's NAMEDATALEN: identifiers are cut to
// namedatalen-1 bytes.
const namedatalen = 64

// category returns the keyword category of an unquoted identifier token.
func category(src string, t token) kwCat {
	if t.kind != tkIdent || t.end-t.pos > maxKeywordLen {
		return kwNone
	}
	w := src[t.pos:t.end]
	if t.flags&fUpper != 0 {
		var buf [maxKeywordLen]byte
		for i := 0; i < len(w); i++ {
			c := w[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		return keywords[string(buf[:len(w)])]
	}
	return keywords[w]
}

// identName returns the name of an identifier token as the server folds it.
// It reports false for tokens that are not identifiers, and for U&"..."
// identifiers, which it does not decode.
func identName(src string, t token) (string, bool) {
	var s string
	switch t.kind {
	case tkIdent:
		s = src[t.pos:t.end]
		if t.flags&fUpper != 0 {
			s = lowerASCII(s)
		}
	case tkQIdent:
		s = src[t.pos+1 : t.end-1]
		if t.flags&fEscape != 0 {
			s = strings.ReplaceAll(s, `""`, `"`)
		}
	default:
		return "", false
	}
	return truncateName(s), true
}

// lowerASCII lower-cases the ASCII letters of s, as the server does with
// unquoted identifiers in a multi-byte encoding.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// truncateName cuts s to at most 63 bytes without splitting a UTF-8
// character, like the server's truncate_identifier.
func truncateName(s string) string {
	if len(s) < namedatalen {
		return s
	}
	// Back off at most three bytes: a UTF-8 character has four at most,
	// and text that is not UTF-8 (which the server rejects) must not
	// shrink to nothing.
	n := namedatalen - 1
	for k := 0; k < utf8.UTFMax-1 && !utf8.RuneStart(s[n]); k++ {
		n--
	}
	return s[:n]
}

// qualifiedName reads [catalog.][schema.]name at toks[i] and returns the
// index after it. It reports false for anything else, including U&"..."
// identifiers, names of four parts or more, and names that start with a
// reserved keyword.
func qualifiedName(src string, toks []token, i int) (Table, int, bool) {
	var parts [3]string
	n := 0
	for {
		if i >= len(toks) || n == len(parts) {
			return Table{}, i, false
		}
		// The first part may not be a reserved or type/function keyword
		// (qualified_name: ColId indirection); later parts may be anything.
		if n == 0 && category(src, toks[i]) >= kwTypeFunc {
			return Table{}, i, false
		}
		name, ok := identName(src, toks[i])
		if !ok {
			return Table{}, i, false
		}
		parts[n] = name
		n++
		i++
		if i+1 < len(toks) && toks[i].kind == tkDot {
			i++
			continue
		}
		break
	}
	switch n {
	case 1:
		return Table{Name: parts[0]}, i, true
	case 2:
		return Table{Schema: parts[0], Name: parts[1]}, i, true
	default:
		return Table{Schema: parts[1], Name: parts[2]}, i, true
	}
}

// addTable appends t to ts unless it is there already.
func addTable(ts []Table, t Table) []Table {
	for _, u := range ts {
		if u == t {
			return ts
		}
	}
	return append(ts, t)
}

// MentionsAny reports whether sql has an identifier (unquoted, folded, or
// quoted) that is in names, or cannot be lexed (then it may have one).
// Callers pass the names of relations whose reading runs user code: a text
// that mentions one may read it, whatever role the name plays there.
func MentionsAny(sql string, names map[string]bool) bool {
	if len(names) == 0 {
		return false
	}
	buf := bufPool.Get().(*buffers)
	defer buf.release()
	toks, ok := lex(sql, buf.toks[:0])
	buf.toks = toks
	if !ok {
		return true
	}
	for _, t := range toks {
		if t.kind == tkUIdent {
			return true // U&"..." escapes: not read here
		}
		if n, ok := identName(sql, t); ok && names[n] {
			return true
		}
	}
	return false
}
