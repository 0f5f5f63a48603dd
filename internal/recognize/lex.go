package recognize

import (
	"math"
	"strings"
)

// tokKind is the kind of a lexical token. The lexer follows PostgreSQL's
// scan.l (PostgreSQL 16): it must find the same statement boundaries and the
// same identifiers as the server, and it marks everything the server would
// reject or read in a version-dependent way so that no Lookup is built on it.
type tokKind uint8

const (
	tkIdent       tokKind = iota + 1 // unquoted identifier or keyword
	tkQIdent                         // "quoted identifier"
	tkUIdent                         // U&"identifier"
	tkString                         // '...'
	tkEString                        // E'...'
	tkOtherString                    // B'...', X'...', N'...', U&'...'
	tkDollar                         // $tag$...$tag$
	tkNumber                         // 1, 1.5, .5, 1e10, 0x1F, 1_000
	tkParam                          // $1
	tkOp                             // operator, including * = - < >
	tkLParen                         // (
	tkRParen                         // )
	tkLBracket                       // [
	tkRBracket                       // ]
	tkComma                          // ,
	tkSemi                           // ;
	tkDot                            // .
	tkColon                          // :
	tkCast                           // ::
	tkOther                          // any other byte: a syntax error for the server
)

// Token flags.
const (
	fUpper      uint8 = 1 << iota // tkIdent: has an ASCII upper-case letter
	fEscape                       // tkQIdent: has ""; tkString, tkEString: has '' or a backslash escape
	fBackslash                    // tkString: has a backslash (meaning depends on standard_conforming_strings)
	fContinued                    // string constant continued over a newline ('a'\n'b')
	fJunk                         // tkNumber, tkParam: malformed or followed by identifier characters
	fNotDecimal                   // tkNumber: hexadecimal, octal, binary, or with '_' separators
	fFraction                     // tkNumber: has a '.' or an exponent
	fNonASCII                     // tkIdent: has a byte >= 0x80 (folded differently in single-byte server encodings)
)

// token is one lexical token: src[pos:end], quotes and prefixes included.
type token struct {
	kind  tokKind
	flags uint8
	pos   int32
	end   int32
}

// Character classes, looked up in charClass.
const (
	ccSpace      uint8 = 1 << iota // white space
	ccIdentStart                   // may start an identifier: a letter, '_', any byte >= 0x80
	ccIdentCont                    // may continue one: also digits and '$'
	ccOp                           // operator character
	ccDigit                        // decimal digit
)

var charClass = func() (t [256]uint8) {
	for _, c := range []byte(" \t\n\r\f\v") {
		t[c] |= ccSpace
	}
	for c := 0; c < 256; c++ {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80 {
			t[c] |= ccIdentStart | ccIdentCont
		}
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= ccIdentCont | ccDigit
	}
	t['$'] |= ccIdentCont
	for _, c := range []byte("~!@#^&|`?+-*/%<>=") {
		t[c] |= ccOp
	}
	return t
}()

func isSpace(c byte) bool { return charClass[c]&ccSpace != 0 }

func isDigit(c byte) bool { return charClass[c]&ccDigit != 0 }

// isIdentStart reports whether c may start an identifier: a letter, '_', or
// any byte of a multi-byte character.
func isIdentStart(c byte) bool { return charClass[c]&ccIdentStart != 0 }

func isIdentCont(c byte) bool { return charClass[c]&ccIdentCont != 0 }

func isOpChar(c byte) bool { return charClass[c]&ccOp != 0 }

// lex appends the tokens of s to toks. It reports false when s cannot be
// tokenized: an unterminated string, quoted identifier, dollar quote or
// comment, or a zero-length quoted identifier. The server rejects such a
// text as a whole, before it runs any of its statements.
func lex(s string, toks []token) ([]token, bool) {
	if len(s) > math.MaxInt32 {
		return toks, false
	}
	n := len(s)
	i := 0
	for i < n {
		c := s[i]
		start := i
		var kind tokKind
		var flags uint8
		switch {
		case isSpace(c):
			i++
			continue
		case c == '-' && i+1 < n && s[i+1] == '-':
			i += 2
			for i < n && s[i] != '\n' && s[i] != '\r' {
				i++
			}
			continue
		case c == '/' && i+1 < n && s[i+1] == '*':
			j, ok := skipBlockComment(s, i)
			if !ok {
				return toks, false
			}
			i = j
			continue
		case isIdentStart(c):
			if i+1 < n && s[i+1] == '\'' {
				var ok bool
				switch c {
				case 'e', 'E':
					kind = tkEString
					i, flags, ok = scanStringBody(s, i+2, quoteE)
				case 'b', 'B', 'x', 'X':
					kind = tkOtherString
					i, flags, ok = scanStringBody(s, i+2, quoteBit)
				case 'n', 'N':
					kind = tkOtherString
					i, flags, ok = scanStringBody(s, i+2, quoteStd)
				}
				if kind != 0 {
					if !ok {
						return toks, false
					}
					break
				}
			}
			if (c == 'u' || c == 'U') && i+2 < n && s[i+1] == '&' && (s[i+2] == '\'' || s[i+2] == '"') {
				var ok bool
				if s[i+2] == '\'' {
					kind = tkOtherString
					i, flags, ok = scanStringBody(s, i+3, quoteStd)
				} else {
					kind = tkUIdent
					i, flags, ok = scanQuotedIdent(s, i+3)
				}
				if !ok {
					return toks, false
				}
				break
			}
			kind = tkIdent
			for i < n && isIdentCont(s[i]) {
				if c := s[i]; 'A' <= c && c <= 'Z' {
					flags |= fUpper
				} else if c >= 0x80 {
					flags |= fNonASCII
				}
				i++
			}
		case c == '"':
			var ok bool
			kind = tkQIdent
			i, flags, ok = scanQuotedIdent(s, i+1)
			if !ok {
				return toks, false
			}
		case c == '\'':
			var ok bool
			kind = tkString
			i, flags, ok = scanStringBody(s, i+1, quoteStd)
			if !ok {
				return toks, false
			}
		case c == '$':
			if i+1 < n && isDigit(s[i+1]) {
				kind = tkParam
				i, flags = scanDigits(s, i+1, isDigit)
				if i < n && isIdentCont(s[i]) {
					flags |= fJunk
				}
				break
			}
			j := i + 1
			if j < n && isIdentStart(s[j]) {
				for j < n && (isIdentStart(s[j]) || isDigit(s[j])) {
					j++
				}
			}
			if j < n && s[j] == '$' {
				delim := s[i : j+1]
				k := strings.Index(s[j+1:], delim)
				if k < 0 {
					return toks, false
				}
				kind = tkDollar
				i = j + 1 + k + len(delim)
				break
			}
			kind = tkOther
			i++
		case isDigit(c) || c == '.' && i+1 < n && isDigit(s[i+1]):
			kind = tkNumber
			i, flags = scanNumber(s, i)
		case c == '.':
			kind = tkDot
			i++
		case c == '(':
			kind = tkLParen
			i++
		case c == ')':
			kind = tkRParen
			i++
		case c == '[':
			kind = tkLBracket
			i++
		case c == ']':
			kind = tkRBracket
			i++
		case c == ',':
			kind = tkComma
			i++
		case c == ';':
			kind = tkSemi
			i++
		case c == ':':
			kind = tkColon
			i++
			if i < n && s[i] == ':' {
				kind = tkCast
				i++
			}
		case isOpChar(c):
			kind = tkOp
			i = scanOperator(s, i)
		default:
			kind = tkOther
			i++
		}
		toks = append(toks, token{kind: kind, flags: flags, pos: int32(start), end: int32(i)})
	}
	return toks, true
}

// skipBlockComment skips the nested /* ... */ comment that starts at s[i].
func skipBlockComment(s string, i int) (int, bool) {
	depth := 0
	n := len(s)
	for i < n {
		if s[i] == '/' && i+1 < n && s[i+1] == '*' {
			depth++
			i += 2
			continue
		}
		if s[i] == '*' && i+1 < n && s[i+1] == '/' {
			depth--
			i += 2
			if depth == 0 {
				return i, true
			}
			continue
		}
		i++
	}
	return i, false
}

// scanQuotedIdent scans the body of a quoted identifier from s[i] (after the
// opening quote) and returns the index after the closing quote.
func scanQuotedIdent(s string, i int) (int, uint8, bool) {
	start := i
	var flags uint8
	for ; i < len(s); i++ {
		if s[i] != '"' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			flags |= fEscape
			i++
			continue
		}
		// A zero-length delimited identifier is an error.
		return i + 1, flags, i > start
	}
	return len(s), 0, false
}

type quoteStyle uint8

const (
	quoteStd quoteStyle = iota // '' is a quote
	quoteE                     // '' and \' are quotes, \ escapes the next byte
	quoteBit                   // no escapes at all (B'...', X'...')
)

// scanStringBody scans a string constant from s[i] (after the opening quote),
// including the continuations that PostgreSQL glues to it ('a' newline 'b'),
// and returns the index after the last closing quote.
func scanStringBody(s string, i int, style quoteStyle) (int, uint8, bool) {
	var flags uint8
	n := len(s)
	for {
		for {
			if i >= n {
				return n, 0, false
			}
			c := s[i]
			if c == '\\' {
				if style == quoteE {
					flags |= fEscape
					i += 2
					continue
				}
				flags |= fBackslash
			} else if c == '\'' {
				if style != quoteBit && i+1 < n && s[i+1] == '\'' {
					flags |= fEscape
					i += 2
					continue
				}
				i++
				break
			}
			i++
		}
		j, ok := quoteContinue(s, i)
		if !ok {
			return i, flags, true
		}
		flags |= fContinued
		i = j
	}
}

// quoteContinue reports whether a string constant that ended at s[i] goes on:
// white space and "--" comments containing at least one newline, then a
// quote (scan.l's quotecontinue). It returns the index after that quote.
func quoteContinue(s string, i int) (int, bool) {
	n := len(s)
	newline := false
	for i < n {
		c := s[i]
		switch {
		case c == '\n' || c == '\r':
			newline = true
			i++
		case c == ' ' || c == '\t' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < n && s[i+1] == '-':
			for i < n && s[i] != '\n' && s[i] != '\r' {
				i++
			}
		case c == '\'' && newline:
			return i + 1, true
		default:
			return 0, false
		}
	}
	return 0, false
}

// scanDigits scans digits accepted by ok with single '_' separators between
// them (PostgreSQL 16). It sets fNotDecimal for a separator and fJunk for a
// separator not followed by a digit.
func scanDigits(s string, i int, ok func(byte) bool) (int, uint8) {
	var flags uint8
	n := len(s)
	for i < n {
		if ok(s[i]) {
			i++
			continue
		}
		if s[i] == '_' {
			flags |= fNotDecimal
			if i+1 < n && ok(s[i+1]) {
				i += 2
				continue
			}
			flags |= fJunk
		}
		break
	}
	return i, flags
}

func isHexDigit(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
func isOctDigit(c byte) bool { return '0' <= c && c <= '7' }
func isBinDigit(c byte) bool { return c == '0' || c == '1' }

// scanNumber scans a numeric constant at s[i].
func scanNumber(s string, i int) (int, uint8) {
	n := len(s)
	var flags uint8
	if s[i] == '0' && i+1 < n {
		var digit func(byte) bool
		switch s[i+1] {
		case 'x', 'X':
			digit = isHexDigit
		case 'o', 'O':
			digit = isOctDigit
		case 'b', 'B':
			digit = isBinDigit
		}
		if digit != nil {
			j := i + 2
			if j < n && s[j] == '_' {
				j++ // 0x_1F is allowed
			}
			k, f := scanDigits(s, j, digit)
			flags = f | fNotDecimal
			if k == j {
				flags |= fJunk
			}
			if k < n && isIdentCont(s[k]) {
				flags |= fJunk
			}
			return k, flags
		}
	}
	if s[i] != '.' {
		i, flags = scanDigits(s, i, isDigit)
	}
	if i < n && s[i] == '.' && !(i+1 < n && s[i+1] == '.') {
		flags |= fFraction
		i++
		if i < n && isDigit(s[i]) {
			var f uint8
			i, f = scanDigits(s, i, isDigit)
			flags |= f
		}
	}
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < n && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < n && isDigit(s[j]) {
			var f uint8
			i, f = scanDigits(s, j, isDigit)
			flags |= f | fFraction
		} else {
			flags |= fJunk
		}
	}
	if i < n && isIdentCont(s[i]) {
		flags |= fJunk
	}
	return i, flags
}

// scanOperator scans an operator at s[i] with PostgreSQL's rules: the longest
// run of operator characters, cut before an embedded comment start, and
// without trailing '+' or '-' unless it contains one of ~ ! @ # % ^ & | ` ?
// (so "=-5" is "=" followed by "-5").
func scanOperator(s string, i int) int {
	start := i
	n := len(s)
	for i < n && isOpChar(s[i]) {
		if i > start && (s[i] == '-' && s[i-1] == '-' || s[i] == '*' && s[i-1] == '/') {
			i--
			break
		}
		i++
	}
	if i-start > 1 && (s[i-1] == '+' || s[i-1] == '-') {
		special := false
		for k := start; k < i-1; k++ {
			switch s[k] {
			case '~', '!', '@', '#', '^', '&', '|', '`', '?', '%':
				special = true
			}
		}
		if !special {
			for i-start > 1 && (s[i-1] == '+' || s[i-1] == '-') {
				i--
			}
		}
	}
	return i
}

// span is a statement: toks[from:to], the ';' excluded.
type span struct{ from, to int }

// split cuts the tokens into statements at ';' outside parentheses and
// brackets, and outside the BEGIN ATOMIC ... END body of CREATE FUNCTION or
// CREATE PROCEDURE, which is where the server's grammar ends a statement.
// Empty statements are dropped. It reports false for unbalanced parentheses,
// which the server rejects as a whole, and for a routine body whose end it
// cannot find for sure.
func split(src string, toks []token, spans []span) ([]span, bool) {
	from := 0
	depth := 0
	var body atomicBody
	routine := false
	for i, t := range toks {
		switch t.kind {
		case tkLParen, tkLBracket:
			depth++
		case tkRParen, tkRBracket:
			depth--
			if depth < 0 {
				return spans, false
			}
		case tkIdent:
			if i == from {
				routine = startsRoutine(src, toks[from:])
			}
			if routine && depth == 0 && !body.see(src, toks, i) {
				return spans, false
			}
		case tkSemi:
			if depth == 0 && body.depth == 0 {
				if i > from {
					spans = append(spans, span{from, i})
				}
				from = i + 1
				routine = false
			}
		}
	}
	if depth != 0 || body.depth != 0 {
		return spans, false
	}
	if from < len(toks) {
		spans = append(spans, span{from, len(toks)})
	}
	return spans, true
}

// atomicBody follows BEGIN ATOMIC ... END in a routine definition, at
// parenthesis depth 0 (CASE ... END inside parentheses cannot hide a ';').
// CASE and END are reserved words but may also be output names (AS end, or
// bare: SELECT 1 end;) and attribute names (t.end).
type atomicBody struct {
	depth int // open BEGIN ATOMIC blocks
	cases int // open CASE expressions inside them
}

// see accounts for the identifier toks[i]. It reports false when it cannot
// tell whether a CASE starts an expression.
func (b *atomicBody) see(src string, toks []token, i int) bool {
	t := toks[i]
	switch {
	case isKw(src, t, "begin"):
		if i+1 < len(toks) && isKw(src, toks[i+1], "atomic") {
			b.depth++
		}
		return true
	case b.depth == 0:
		return true
	case isKw(src, t, "case"):
		switch exprSide(src, toks, i) {
		case sideBefore:
			b.cases++
		case sideUnknown:
			return false
		}
	case isKw(src, t, "end"):
		prev := token{}
		if i > 0 {
			prev = toks[i-1]
		}
		switch {
		case prev.kind == tkDot || isKw(src, prev, "as"):
			// t.end, AS end: a name
		case b.cases > 0:
			b.cases--
		case prev.kind == tkSemi || isKw(src, prev, "atomic"):
			b.depth--
		}
		// Otherwise a bare output name: SELECT 1 end;
	}
	return true
}

type side uint8

const (
	sideUnknown side = iota
	sideBefore       // the token before may be followed by an expression: CASE starts one
	sideAfter        // the token before ends an expression or is AS or '.': CASE is a name
)

// exprSide tells whether the CASE at toks[i] starts an expression or is an
// output or attribute name, from the token before it.
func exprSide(src string, toks []token, i int) side {
	if i == 0 {
		return sideBefore
	}
	prev := toks[i-1]
	switch prev.kind {
	case tkOp:
		if src[prev.pos:prev.end] == "*" && i >= 2 && toks[i-2].kind == tkDot {
			return sideAfter // t.* or (t).*: a complete column reference
		}
		return sideBefore
	case tkLParen, tkLBracket, tkComma, tkSemi, tkColon:
		return sideBefore
	case tkNumber, tkString, tkEString, tkOtherString, tkDollar, tkParam,
		tkQIdent, tkUIdent, tkRParen, tkRBracket, tkDot:
		return sideAfter
	case tkIdent:
		w := src[prev.pos:prev.end]
		switch category(src, prev) {
		case kwNone:
			return sideAfter
		case kwReserved:
			for _, v := range [...]string{"null", "true", "false", "end", "as", "current_date",
				"current_time", "current_timestamp", "localtime", "localtimestamp", "current_user",
				"current_role", "current_catalog", "session_user", "system_user", "user"} {
				if eqFold(w, v) {
					return sideAfter
				}
			}
			return sideBefore
		}
		if eqFold(w, "by") { // ORDER BY, GROUP BY, PARTITION BY
			return sideBefore
		}
	}
	return sideUnknown
}

// startsRoutine reports whether toks start with CREATE [OR REPLACE]
// {FUNCTION | PROCEDURE}.
func startsRoutine(src string, toks []token) bool {
	if len(toks) < 2 || !isKw(src, toks[0], "create") {
		return false
	}
	i := 1
	if isKw(src, toks[1], "or") {
		if len(toks) < 4 || !isKw(src, toks[2], "replace") {
			return false
		}
		i = 3
	}
	return isKw(src, toks[i], "function") || isKw(src, toks[i], "procedure")
}

// eqFold reports whether s equals the lower-case ASCII word kw, ignoring the
// case of ASCII letters.
func eqFold(s, kw string) bool {
	if len(s) != len(kw) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != kw[i] {
			return false
		}
	}
	return true
}

// isKw reports whether t is the unquoted keyword kw (lower case).
func isKw(src string, t token, kw string) bool {
	return t.kind == tkIdent && eqFold(src[t.pos:t.end], kw)
}
