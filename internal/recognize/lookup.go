package recognize

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxParens bounds the nesting of parentheses around predicates.
const maxParens = 32

// maxParam is the largest parameter number the wire protocol can bind.
const maxParam = 65535

// parser reads the tokens of one statement from left to right.
type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return token{}
}

func (p *parser) done() bool { return p.i >= len(p.toks) }

func (p *parser) text(t token) string { return p.src[t.pos:t.end] }

func (p *parser) kw(k string) bool { return p.i < len(p.toks) && isKw(p.src, p.toks[p.i], k) }

func (p *parser) acceptKw(k string) bool {
	if p.kw(k) {
		p.i++
		return true
	}
	return false
}

func (p *parser) is(k tokKind) bool { return p.i < len(p.toks) && p.toks[p.i].kind == k }

func (p *parser) accept(k tokKind) bool {
	if p.is(k) {
		p.i++
		return true
	}
	return false
}

// isOp reports whether the next token is the operator op.
func (p *parser) isOp(op string) bool {
	t := p.peek()
	return t.kind == tkOp && p.text(t) == op
}

func (p *parser) acceptOp(op string) bool {
	if p.isOp(op) {
		p.i++
		return true
	}
	return false
}

// colID reads a column, table or alias name: a quoted identifier, or an
// unquoted one that is not a keyword other than an unreserved one. (The
// server also accepts column-name keywords such as "time" here; refusing
// them only costs a cache miss.) An unquoted name with non-ASCII letters is
// refused too: a server whose encoding is not UTF-8 folds them.
func (p *parser) colID() (string, bool) {
	t := p.peek()
	switch t.kind {
	case tkQIdent:
	case tkIdent:
		if t.flags&fNonASCII != 0 || category(p.src, t) > kwUnreserved {
			return "", false
		}
	default:
		return "", false
	}
	p.i++
	return identName(p.src, t)
}

// bareLabel reads an output name given without AS: quoted, or unquoted and
// not a keyword at all (older servers accept only those).
func (p *parser) bareLabel() (string, bool) {
	t := p.peek()
	if t.kind != tkQIdent && (t.kind != tkIdent || t.flags&fNonASCII != 0 || category(p.src, t) != kwNone) {
		return "", false
	}
	p.i++
	return identName(p.src, t)
}

// label reads an output name after AS: any identifier, keywords included.
func (p *parser) label() (string, bool) {
	t := p.peek()
	if t.kind != tkQIdent && (t.kind != tkIdent || t.flags&fNonASCII != 0) {
		return "", false
	}
	if t.kind == tkIdent && p.i+1 < len(p.toks) {
		// The server's lexer reads some keywords with the next one as
		// another token (NOT IN is NOT_LA IN), which is no label.
		next := p.toks[p.i+1]
		for _, la := range lookaheadKeywords {
			if !isKw(p.src, t, la[0]) {
				continue
			}
			for _, follower := range la[1:] {
				if isKw(p.src, next, follower) {
					return "", false
				}
			}
		}
	}
	p.i++
	return identName(p.src, t)
}

// lookaheadKeywords lists the keywords the server's lexer joins with the
// keyword that follows (parser.c base_yylex): the first word, then the
// words after which it becomes another token.
var lookaheadKeywords = [][]string{
	{"not", "between", "in", "like", "ilike", "similar"},
	{"nulls", "first", "last"},
	{"with", "time", "ordinality"},
	{"without", "time"},
	{"format", "json"},
}

// dotted reads name(.name)* with at most three parts, optionally ending in
// ".*" when star is allowed. The first part is a colID; the others may be
// any keyword (attr_name is a ColLabel in the server's grammar).
func (p *parser) dotted(parts *[3]string, allowStar bool) (n int, star bool, ok bool) {
	for {
		if n == len(parts) {
			return n, false, false
		}
		var name string
		if n == 0 {
			name, ok = p.colID()
		} else {
			name, ok = p.label()
		}
		if !ok {
			return n, false, false
		}
		parts[n] = name
		n++
		if !p.is(tkDot) {
			return n, false, true
		}
		p.i++
		if allowStar && p.isOp("*") {
			p.i++
			return n, true, true
		}
	}
}

// scope is the table a statement reads or writes, for qualifier checks.
type scope struct {
	table Table
	alias string
}

// qualifies reports whether quals (the parts before a column name, or before
// ".*") name the table in scope: the alias when there is one, otherwise the
// table name, or schema.table when the table was given with its schema.
func (s *scope) qualifies(quals []string) bool {
	switch len(quals) {
	case 0:
		return true
	case 1:
		if s.alias != "" {
			return quals[0] == s.alias
		}
		return quals[0] == s.table.Name
	case 2:
		return s.alias == "" && s.table.Schema != "" &&
			quals[0] == s.table.Schema && quals[1] == s.table.Name
	}
	return false
}

// colRef reads a column reference [[schema.]table.]column and returns the
// column name and whether it was qualified.
func (p *parser) colRef(s *scope) (string, bool, bool) {
	var parts [3]string
	n, _, ok := p.dotted(&parts, false)
	if !ok || !s.qualifies(parts[:n-1]) {
		return "", false, false
	}
	return parts[n-1], n > 1, true
}

// lookupBlock holds a Lookup and room for its usual slices in one allocation.
type lookupBlock struct {
	l     Lookup
	preds [3]Pred
	order [1]OrderCol
	lim   Value
	off   Value
}

// parseLookup recognizes the Lookup shape in a single SELECT statement.
func parseLookup(src string, toks []token) *Lookup {
	p := parser{src: src, toks: toks}
	if !p.acceptKw("select") {
		return nil
	}
	// Find FROM first: the qualifiers in the select list are checked
	// against the table. Every token before it is a name, '.', '*', ',' or
	// AS, and a name after AS may be any keyword, FROM included.
	from := -1
	for i := 1; i < len(toks); i++ {
		if isKw(src, toks[i], "as") {
			i++
			continue
		}
		if isKw(src, toks[i], "from") {
			from = i
			break
		}
	}
	if from < 0 {
		return nil
	}
	p.i = from + 1
	var parts [3]string
	var sc scope
	n, _, ok := p.dotted(&parts, false)
	if !ok || n > 2 {
		return nil
	}
	if n == 2 {
		sc.table = Table{Schema: parts[0], Name: parts[1]}
	} else {
		sc.table = Table{Name: parts[0]}
	}
	if p.acceptKw("as") {
		if sc.alias, ok = p.colID(); !ok {
			return nil
		}
	} else if t := p.peek(); t.kind == tkQIdent || t.kind == tkIdent && category(src, t) <= kwUnreserved {
		sc.alias, _ = p.colID()
	}
	if !p.acceptKw("where") {
		return nil
	}
	where := p.i
	blk := new(lookupBlock)
	l := &blk.l
	l.Table, l.Alias = sc.table, sc.alias

	// The select list, between SELECT and FROM.
	p.i = 1
	if !p.selectList(l, &sc, from) {
		return nil
	}

	p.i = where
	l.Preds, ok = p.conj(&sc, blk.preds[:0:len(blk.preds)], 0)
	if !ok {
		return nil
	}
	if p.acceptKw("order") {
		if !p.acceptKw("by") || !p.orderBy(l, &sc, blk.order[:0:len(blk.order)]) {
			return nil
		}
	}
	for {
		switch {
		case l.Limit == nil && p.acceptKw("limit"):
			if !p.count(&blk.lim) {
				return nil
			}
			l.Limit = &blk.lim
		case l.Limit == nil && p.acceptKw("fetch"):
			if !p.acceptKw("first") && !p.acceptKw("next") {
				return nil
			}
			if p.kw("row") || p.kw("rows") {
				blk.lim = Value{Literal: "1"}
			} else if !p.count(&blk.lim) {
				return nil
			}
			if !(p.acceptKw("row") || p.acceptKw("rows")) || !p.acceptKw("only") {
				return nil
			}
			l.Limit = &blk.lim
		case l.Offset == nil && p.acceptKw("offset"):
			if !p.count(&blk.off) {
				return nil
			}
			_ = p.acceptKw("row") || p.acceptKw("rows")
			l.Offset = &blk.off
		default:
			if !p.done() {
				return nil
			}
			// The server rejects a text that is not valid UTF-8 or holds a
			// NUL byte anywhere, comments included.
			if !utf8.ValidString(src) || strings.IndexByte(src, 0) >= 0 {
				return nil
			}
			return l
		}
	}
}

// selectList reads the output columns from toks[p.i] up to toks[from].
func (p *parser) selectList(l *Lookup, sc *scope, from int) bool {
	var parts [3]string
	n, star, ok := p.dotted(&parts, true)
	if !ok && p.isOp("*") && p.i == 1 {
		p.i++
		n, star, ok = 0, true, true
	}
	if !ok {
		return false
	}
	if star {
		if p.i != from || !sc.qualifies(parts[:n]) {
			return false
		}
		l.Star = true
		return true
	}
	// Count the items to allocate the columns once.
	items := 1
	for i := p.i; i < from; i++ {
		if p.toks[i].kind == tkComma {
			items++
		}
	}
	l.Columns = make([]OutCol, 0, items)
	for {
		if !sc.qualifies(parts[:n-1]) {
			return false
		}
		col := OutCol{Column: parts[n-1], As: parts[n-1]}
		if p.is(tkCast) {
			var v Value
			if !p.castSuffix(&v, false) || v.Cast == "" {
				return false
			}
			col.Cast = v.Cast
		}
		if p.acceptKw("as") {
			if col.As, ok = p.label(); !ok {
				return false
			}
		} else if p.i < from && !p.is(tkComma) {
			if col.As, ok = p.bareLabel(); !ok {
				return false
			}
		}
		l.Columns = append(l.Columns, col)
		if p.i == from {
			return true
		}
		if !p.accept(tkComma) {
			return false
		}
		if n, _, ok = p.dotted(&parts, false); !ok {
			return false
		}
	}
}

// orderBy reads the ORDER BY list and resolves its names: an unqualified
// name is an output column's name first (and ambiguous when two output
// columns of that name read different columns), a table column otherwise.
func (p *parser) orderBy(l *Lookup, sc *scope, order []OrderCol) bool {
	for {
		col, qualified, ok := p.colRef(sc)
		if !ok {
			return false
		}
		if !qualified && !l.Star {
			found := ""
			for _, c := range l.Columns {
				if c.As == col {
					if c.Cast != "" || found != "" && found != c.Column {
						// An output column cast (ORDER BY its cast value)
						// or two of the name reading different columns.
						return false
					}
					found = c.Column
				}
			}
			if found != "" {
				col = found
			}
		}
		desc := false
		if p.acceptKw("desc") {
			desc = true
		} else {
			p.acceptKw("asc")
		}
		order = append(order, OrderCol{Column: col, Desc: desc})
		if !p.accept(tkComma) {
			break
		}
	}
	l.OrderBy = order
	return true
}

// count reads a LIMIT, OFFSET or FETCH count: $n or a non-negative integer.
func (p *parser) count(v *Value) bool {
	t := p.peek()
	switch {
	case t.kind == tkParam:
		return p.value(v)
	case t.kind == tkNumber && t.flags&(fJunk|fNotDecimal|fFraction) == 0:
		p.i++
		*v = Value{Literal: p.text(t)}
		return true
	}
	return false
}

// conj reads predicates joined by AND, each optionally in parentheses.
func (p *parser) conj(sc *scope, preds []Pred, depth int) ([]Pred, bool) {
	for {
		var ok bool
		if p.is(tkLParen) {
			if depth >= maxParens {
				return nil, false
			}
			p.i++
			if preds, ok = p.conj(sc, preds, depth+1); !ok || !p.accept(tkRParen) {
				return nil, false
			}
		} else if preds, ok = p.pred(sc, preds); !ok {
			return nil, false
		}
		if !p.acceptKw("and") {
			return preds, true
		}
	}
}

// pred reads col = v, v = col, col IN (v, ...), col = ANY($n), col IS NULL.
func (p *parser) pred(sc *scope, preds []Pred) ([]Pred, bool) {
	var v Value
	if p.valueStart() {
		if !p.value(&v) || !p.castSuffix(&v, false) || !p.acceptOp("=") {
			return nil, false
		}
		col, _, ok := p.colRef(sc)
		if !ok {
			return nil, false
		}
		return append(preds, Pred{Column: col, Kind: PredEq, Value: v}), true
	}
	col, _, ok := p.colRef(sc)
	if !ok {
		return nil, false
	}
	switch {
	case p.acceptOp("="):
		if p.acceptKw("any") {
			if !p.accept(tkLParen) || !p.is(tkParam) || !p.value(&v) || !p.castSuffix(&v, true) || !p.accept(tkRParen) {
				return nil, false
			}
			return append(preds, Pred{Column: col, Kind: PredAny, Value: v}), true
		}
		if !p.value(&v) || !p.castSuffix(&v, false) {
			return nil, false
		}
		return append(preds, Pred{Column: col, Kind: PredEq, Value: v}), true
	case p.acceptKw("in"):
		if !p.accept(tkLParen) {
			return nil, false
		}
		items := 1
		for i := p.i; i < len(p.toks) && p.toks[i].kind != tkRParen; i++ {
			if p.toks[i].kind == tkComma {
				items++
			}
		}
		list := make([]Value, items)
		for k := range list {
			if k > 0 && !p.accept(tkComma) {
				return nil, false
			}
			if !p.value(&list[k]) || !p.castSuffix(&list[k], false) {
				return nil, false
			}
		}
		if !p.accept(tkRParen) {
			return nil, false
		}
		return append(preds, Pred{Column: col, Kind: PredIn, List: list}), true
	case p.acceptKw("is"):
		if !p.acceptKw("null") {
			return nil, false
		}
		return append(preds, Pred{Column: col, Kind: PredIsNull}), true
	}
	return nil, false
}

// typeWord reads an unquoted word of a type name: any keyword but a
// reserved one (int, bigint and varchar are column-name keywords). A quoted
// name is not read: "bigint" names no type.
func (p *parser) typeWord() (string, bool) {
	t := p.peek()
	if t.kind != tkIdent || t.flags&fNonASCII != 0 || category(p.src, t) == kwReserved {
		return "", false
	}
	p.i++
	return identName(p.src, t)
}

// castSuffix reads an optional "::type" after a value: a type name of one
// word, or of two for double precision and character varying, optionally
// qualified by pg_catalog, with "[]" when array (and only then). A type
// modifier ("varchar(3)") or any other form is not read: false.
func (p *parser) castSuffix(v *Value, array bool) bool {
	if !p.accept(tkCast) {
		return true
	}
	if strings.HasPrefix(v.Literal, "-") && !v.String {
		// -5::int2 is -(5::int2): the cast is of the number alone.
		return false
	}
	name, ok := p.typeWord()
	if !ok {
		return false
	}
	if name == "pg_catalog" && p.accept(tkDot) {
		if name, ok = p.typeWord(); !ok || keywordType[name] {
			// pg_catalog.bigint is no type: the keywords name types
			// only unqualified.
			return false
		}
	}
	if impliedModifier[name] {
		return false
	}
	switch name {
	case "double":
		if !p.acceptKw("precision") {
			return false
		}
		name = "double precision"
	case "character":
		if !p.acceptKw("varying") {
			return false
		}
		name = "character varying"
	}
	if array {
		if !p.accept(tkLBracket) || !p.accept(tkRBracket) {
			return false
		}
		name += "[]"
	}
	if p.is(tkLParen) || p.is(tkLBracket) || p.is(tkCast) {
		return false
	}
	v.Cast = name
	return true
}

// keywordType lists the type names PostgreSQL's grammar knows as keywords
// (SystemTypeName): they name a pg_catalog type only when unqualified.
var keywordType = map[string]bool{
	"int": true, "integer": true, "smallint": true, "bigint": true, "boolean": true, "real": true,
	"double": true, "character": true, "char": true, "dec": true, "decimal": true, "float": true,
	"national": true, "nchar": true, "bit": true, "setof": true,
}

// impliedModifier lists the type names the grammar gives a type modifier
// when written without one (char is char(1), bit is bit(1)).
var impliedModifier = map[string]bool{"char": true, "nchar": true, "bit": true, "national": true, "setof": true}

// valueStart reports whether the next token may start a value.
func (p *parser) valueStart() bool {
	switch p.peek().kind {
	case tkParam, tkNumber, tkString, tkEString:
		return true
	}
	return p.isOp("-")
}

// value reads $n, a decimal number with an optional '-', '...' or E'...'.
func (p *parser) value(v *Value) bool {
	t := p.peek()
	switch t.kind {
	case tkParam:
		if t.flags&(fJunk|fNotDecimal) != 0 {
			return false
		}
		digits := p.src[t.pos+1 : t.end]
		for len(digits) > 1 && digits[0] == '0' {
			digits = digits[1:]
		}
		if len(digits) > 5 {
			return false
		}
		n, err := strconv.Atoi(digits)
		if err != nil || n < 1 || n > maxParam {
			return false
		}
		p.i++
		*v = Value{Param: n}
		return true
	case tkNumber:
		if t.flags&(fJunk|fNotDecimal) != 0 {
			return false
		}
		p.i++
		*v = Value{Literal: p.text(t)}
		return true
	case tkOp:
		if p.text(t) != "-" || p.i+1 >= len(p.toks) {
			return false
		}
		num := p.toks[p.i+1]
		if num.kind != tkNumber || num.flags&(fJunk|fNotDecimal) != 0 {
			return false
		}
		p.i += 2
		if num.pos == t.end {
			*v = Value{Literal: p.src[t.pos:num.end]}
		} else {
			*v = Value{Literal: "-" + p.text(num)}
		}
		return true
	case tkString:
		// A backslash means something else when standard_conforming_strings
		// is off; a continued constant is not worth the trouble.
		if t.flags&(fBackslash|fContinued) != 0 {
			return false
		}
		s := p.src[t.pos+1 : t.end-1]
		if t.flags&fEscape != 0 {
			s = strings.ReplaceAll(s, "''", "'")
		}
		p.i++
		*v = Value{Literal: s, String: true}
		return true
	case tkEString:
		if t.flags&fContinued != 0 {
			return false
		}
		s := p.src[t.pos+2 : t.end-1]
		if t.flags&fEscape != 0 {
			var ok bool
			if s, ok = unescapeE(s); !ok {
				return false
			}
		}
		p.i++
		*v = Value{Literal: s, String: true}
		return true
	}
	return false
}

// unescapeE decodes the body of an E'...' constant. It reports false for
// what the server rejects or decodes in ways not worth copying: a zero byte,
// invalid UTF-8, surrogate or out-of-range Unicode escapes.
func unescapeE(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\'' { // ''
			b.WriteByte('\'')
			i += 2
			continue
		}
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		i++
		if i >= len(s) {
			return "", false
		}
		c = s[i]
		i++
		switch c {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for k := 0; k < 2 && i < len(s) && isOctDigit(s[i]); k++ {
				v = v*8 + int(s[i]-'0')
				i++
			}
			if v == 0 || v > 0xFF {
				return "", false
			}
			b.WriteByte(byte(v))
		case 'x':
			if i >= len(s) || !isHexDigit(s[i]) {
				b.WriteByte('x')
				break
			}
			v := 0
			for k := 0; k < 2 && i < len(s) && isHexDigit(s[i]); k++ {
				v = v*16 + hexVal(s[i])
				i++
			}
			if v == 0 {
				return "", false
			}
			b.WriteByte(byte(v))
		case 'u', 'U':
			digits := 4
			if c == 'U' {
				digits = 8
			}
			if i+digits > len(s) {
				return "", false
			}
			v := 0
			for k := 0; k < digits; k++ {
				if !isHexDigit(s[i+k]) {
					return "", false
				}
				v = v*16 + hexVal(s[i+k])
			}
			i += digits
			if v == 0 || v > utf8.MaxRune || 0xD800 <= v && v <= 0xDFFF {
				return "", false
			}
			b.WriteRune(rune(v))
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	if !utf8.ValidString(out) {
		return "", false
	}
	return out, true
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}

// writeBlock holds a Write and room for its usual slices in one allocation.
type writeBlock struct {
	w     Write
	preds [3]Pred
	set   [4]string
}

// parseWrite describes a single-table INSERT, UPDATE or DELETE that does not
// start with WITH.
func parseWrite(src string, toks []token) *Write {
	p := parser{src: src, toks: toks}
	c := classifier{src: src, toks: toks}
	blk := new(writeBlock)
	w := &blk.w
	var ok bool
	var j int
	switch {
	case p.acceptKw("insert"):
		w.Op = "INSERT"
		if !p.acceptKw("into") {
			return nil
		}
		if w.Table, j, ok = qualifiedName(src, toks, p.i); !ok {
			return nil
		}
		p.i = j
		if p.acceptKw("as") {
			if w.Alias, ok = p.colID(); !ok {
				return nil
			}
		}
		for on := c.find(p.i, "on"); on >= 0; on = c.find(on+1, "on") {
			if c.kw(on+1, "conflict") {
				w.OnConflict = true
				break
			}
		}
		w.Returning = c.find(p.i, "returning") >= 0
		return w
	case p.acceptKw("update"):
		w.Op = "UPDATE"
	case p.acceptKw("delete"):
		w.Op = "DELETE"
		if !p.acceptKw("from") {
			return nil
		}
	default:
		return nil
	}
	p.acceptKw("only")
	if w.Table, j, ok = qualifiedName(src, toks, p.i); !ok {
		return nil
	}
	p.i = j
	p.acceptOp("*")
	if p.acceptKw("as") {
		if w.Alias, ok = p.colID(); !ok {
			return nil
		}
	} else if t := p.peek(); t.kind == tkQIdent || t.kind == tkIdent && !isKw(src, t, "set") && category(src, t) <= kwUnreserved {
		w.Alias, _ = p.colID()
	}
	w.Returning = c.find(p.i, "returning") >= 0
	if w.Op == "UPDATE" {
		if !p.acceptKw("set") {
			return nil
		}
		w.SetCols = blk.set[:0:len(blk.set)]
		if w.SetCols, ok = p.setList(w.SetCols); !ok {
			return nil
		}
		if p.kw("from") {
			return w
		}
	} else if p.kw("using") {
		return w
	}
	if !p.acceptKw("where") {
		return w
	}
	sc := scope{table: w.Table, alias: w.Alias}
	preds, ok := p.conj(&sc, blk.preds[:0:len(blk.preds)], 0)
	if ok && (p.done() || p.kw("returning")) {
		w.Preds = preds
	}
	return w
}

// setList reads the assignments of UPDATE ... SET and returns their columns;
// it stops before FROM, WHERE, RETURNING or the end.
func (p *parser) setList(cols []string) ([]string, bool) {
	for {
		if p.accept(tkLParen) { // (a, b) = ...
			for {
				name, ok := identName(p.src, p.peek())
				if !ok {
					return nil, false
				}
				p.i++
				cols = append(cols, name)
				p.skipIndirection()
				if p.accept(tkRParen) {
					break
				}
				if !p.accept(tkComma) {
					return nil, false
				}
			}
		} else {
			name, ok := identName(p.src, p.peek())
			if !ok {
				return nil, false
			}
			p.i++
			cols = append(cols, name)
			p.skipIndirection()
		}
		if !p.acceptOp("=") {
			return nil, false
		}
		// Skip the expression.
		depth := 0
		for ; p.i < len(p.toks); p.i++ {
			t := p.toks[p.i]
			switch t.kind {
			case tkLParen, tkLBracket:
				depth++
				continue
			case tkRParen, tkRBracket:
				depth--
				continue
			}
			if depth != 0 {
				continue
			}
			if t.kind == tkComma || p.kw("where") || p.kw("returning") ||
				p.kw("from") && !(p.i > 0 && isKw(p.src, p.toks[p.i-1], "distinct")) {
				break
			}
		}
		if !p.accept(tkComma) {
			return cols, true
		}
	}
}

// skipIndirection skips .field and [subscript] after a SET column.
func (p *parser) skipIndirection() {
	for {
		switch {
		case p.is(tkDot):
			p.i += 2
		case p.is(tkLBracket):
			depth := 0
		scan:
			for ; p.i < len(p.toks); p.i++ {
				switch p.toks[p.i].kind {
				case tkLBracket:
					depth++
				case tkRBracket:
					depth--
					if depth == 0 {
						break scan
					}
				}
			}
			p.i++
		default:
			return
		}
	}
}
