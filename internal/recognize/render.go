package recognize

import (
	"strconv"
	"strings"
)

// String renders the Lookup as canonical SQL: every identifier quoted, every
// column qualified by the alias or the table name, predicates joined by AND.
// Classify of the result gives back an equal Lookup.
func (l *Lookup) String() string {
	var b strings.Builder
	qual := l.Alias
	if qual == "" {
		qual = l.Table.Name
	}
	col := func(c string) {
		quoteIdent(&b, qual)
		b.WriteByte('.')
		quoteIdent(&b, c)
	}
	b.WriteString("SELECT ")
	if l.Star {
		b.WriteByte('*')
	}
	for i, c := range l.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		col(c.Column)
		if c.Cast != "" {
			b.WriteString("::")
			b.WriteString(c.Cast)
		}
		b.WriteString(" AS ")
		quoteIdent(&b, c.As)
	}
	b.WriteString(" FROM ")
	if l.Table.Schema != "" {
		quoteIdent(&b, l.Table.Schema)
		b.WriteByte('.')
	}
	quoteIdent(&b, l.Table.Name)
	if l.Alias != "" {
		b.WriteString(" AS ")
		quoteIdent(&b, l.Alias)
	}
	for i, p := range l.Preds {
		if i == 0 {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		col(p.Column)
		switch p.Kind {
		case PredEq:
			b.WriteString(" = ")
			writeValue(&b, p.Value)
		case PredIn:
			b.WriteString(" IN (")
			for k, v := range p.List {
				if k > 0 {
					b.WriteString(", ")
				}
				writeValue(&b, v)
			}
			b.WriteByte(')')
		case PredAny:
			b.WriteString(" = ANY(")
			writeValue(&b, p.Value)
			b.WriteByte(')')
		case PredIsNull:
			b.WriteString(" IS NULL")
		}
	}
	for i, o := range l.OrderBy {
		if i == 0 {
			b.WriteString(" ORDER BY ")
		} else {
			b.WriteString(", ")
		}
		col(o.Column)
		if o.Desc {
			b.WriteString(" DESC")
		}
	}
	if l.Limit != nil {
		b.WriteString(" LIMIT ")
		writeValue(&b, *l.Limit)
	}
	if l.Offset != nil {
		b.WriteString(" OFFSET ")
		writeValue(&b, *l.Offset)
	}
	return b.String()
}

// quoteIdent writes s as a quoted identifier.
func quoteIdent(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b.WriteByte('"')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// writeValue writes v as SQL: $n, the number, or a string constant (E'...'
// when it holds a backslash, so that the text means the same whatever
// standard_conforming_strings says, or a vertical tab, written \x0B: a text
// that holds one is never a lookup, see Classify).
func writeValue(b *strings.Builder, v Value) {
	switch {
	case v.Param != 0:
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(v.Param))
	case !v.String:
		b.WriteString(v.Literal)
	default:
		e := strings.IndexByte(v.Literal, '\\') >= 0 || strings.IndexByte(v.Literal, '\v') >= 0
		if e {
			b.WriteByte('E')
		}
		b.WriteByte('\'')
		for i := 0; i < len(v.Literal); i++ {
			c := v.Literal[i]
			if c == '\v' {
				b.WriteString(`\x0B`)
				continue
			}
			if c == '\'' || e && c == '\\' {
				b.WriteByte(c)
			}
			b.WriteByte(c)
		}
		b.WriteByte('\'')
	}
	if v.Cast != "" {
		// Cast holds a type name the parser folded: one or two words,
		// perhaps with "[]", which read back as they are written.
		b.WriteString("::")
		b.WriteString(v.Cast)
	}
}
