package wtcache

import (
	"fmt"
	"strings"
)

// catalogSQL returns a catalog query with every operator it uses named in
// pg_catalog. wtcache reads the catalog on the application's own session,
// whose search_path may list a schema before pg_catalog; an operator is
// resolved along it (an IN list, NOT IN, LIKE and = ANY as much as a bare
// =), so a session with its own = for oid, or || for text, could otherwise
// make a table's description or shape whatever it likes. Relations,
// functions and types in these queries are written qualified by hand;
// operators are qualified here, where nothing can be forgotten:
//
//   - =, <>, !=, <, <=, >, >= and || become OPERATOR(pg_catalog.op);
//   - x IN (a, b) becomes x OPERATOR(pg_catalog.=) ANY (ARRAY[a, b]), and
//     x IN (SELECT ...) x OPERATOR(pg_catalog.=) ANY (SELECT ...); NOT IN
//     becomes OPERATOR(pg_catalog.<>) ALL, which is what NOT IN means;
//   - [NOT] LIKE becomes OPERATOR(pg_catalog.~~) (or !~~).
//
// OPERATOR(...) binds like any operator that is not a comparison: tighter
// than =. So that qualifying cannot regroup an expression, a query may hold
// at most one operator between two boundaries (a parenthesis, a comma, AND,
// OR, NOT, CASE's words, a clause's keyword); anything it cannot qualify
// (another operator, BETWEEN, a simple CASE, NULLIF, IS DISTINCT FROM, a
// join's USING, all of which compare by an operator's name) is refused. The
// queries are constants: catalogSQL panics, at start-up and in the tests,
// rather than return a query it cannot vouch for.
func catalogSQL(q string) string {
	out, err := qualifyOperators(q)
	if err != nil {
		panic("wtcache: catalog query: " + err.Error())
	}
	return out
}

// The catalog queries, qualified.
var (
	resolveSQL     = catalogSQL(resolveQuery)
	sessionSQL     = catalogSQL(sessionQuery)
	tableSQL       = catalogSQL(tableQuery)
	columnsSQL     = catalogSQL(columnsQuery)
	cascadesSQL    = catalogSQL(cascadesQuery)
	descendantsSQL = catalogSQL(descendantsQuery)
	readHazardsSQL = catalogSQL(readHazardsQuery)
	funcsSQL       = catalogSQL(funcsQuery)
	feedFactsSQL   = catalogSQL(feedFactsQuery)
	heartbeatSQL   = catalogSQL(`SELECT pg_catalog.pg_logical_emit_message(false, 'wtcache.tick', $1::pg_catalog.text)::pg_catalog.text, ` +
		roleFingerprint + `, ` + feedSetupOK)
)

// catalogOps are the operators catalogSQL qualifies, as qualified.
var catalogOps = map[string]string{
	"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "||": "||",
}

// catalogBoundaries end the operand of a comparison: after one of them the
// next operator starts a comparison of its own.
var catalogBoundaries = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "CASE": true, "WHEN": true, "THEN": true, "ELSE": true, "END": true,
	"SELECT": true, "FROM": true, "WHERE": true, "JOIN": true, "ON": true, "UNION": true, "ALL": true,
	"AS": true, "GROUP": true, "ORDER": true, "BY": true, "EXISTS": true, "LATERAL": true, "CROSS": true,
	"LEFT": true, "INNER": true, "WITH": true, "RECURSIVE": true, "LIMIT": true, "HAVING": true,
}

// catalogRefused compare by an operator's name without naming it.
var catalogRefused = map[string]bool{
	"BETWEEN": true, "NULLIF": true, "DISTINCT": true, "USING": true, "ILIKE": true, "SIMILAR": true,
	"OVERLAPS": true, "SOME": true,
}

type sqlTok struct {
	kind byte // 'w' word, 'o' operator, 'p' punctuation, 's' literal or quoted name, ' ' space
	text string
}

func sqlTokens(q string) ([]sqlTok, error) {
	var toks []sqlTok
	for i := 0; i < len(q); {
		c := q[i]
		j := i + 1
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			for j < len(q) && strings.IndexByte(" \t\n\r", q[j]) >= 0 {
				j++
			}
			toks = append(toks, sqlTok{' ', q[i:j]})
		case c == '\'' || c == '"':
			for {
				k := strings.IndexByte(q[j:], c)
				if k < 0 {
					return nil, fmt.Errorf("unterminated %c at %d", c, i)
				}
				j += k + 1
				if j < len(q) && q[j] == c {
					j++
					continue
				}
				break
			}
			toks = append(toks, sqlTok{'s', q[i:j]})
		case c == '$':
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("dollar quoting at %d is not read", i)
			}
			toks = append(toks, sqlTok{'w', q[i:j]})
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			for j < len(q) && (q[j] == '_' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			toks = append(toks, sqlTok{'w', q[i:j]})
		case c == ':' && j < len(q) && q[j] == ':':
			toks = append(toks, sqlTok{'p', "::"})
			j++
		case strings.IndexByte("(),.[];", c) >= 0:
			toks = append(toks, sqlTok{'p', q[i:j]})
		case c == '*':
			// SELECT *, count(*): never a multiplication in these queries
			// (a multiplication would need qualifying, and regrouping).
			toks = append(toks, sqlTok{'p', "*"})
		case c == '-' && j < len(q) && q[j] >= '0' && q[j] <= '9' && afterOperator(toks):
			// A negative number (typlen = -1), not a subtraction.
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			toks = append(toks, sqlTok{'w', q[i:j]})
		case strings.IndexByte("+-/<>=~!@#%^&|`?", c) >= 0:
			for j < len(q) && strings.IndexByte("+-*/<>=~!@#%^&|`?", q[j]) >= 0 {
				j++
			}
			if strings.Contains(q[i:j], "--") || strings.Contains(q[i:j], "/*") {
				return nil, fmt.Errorf("a comment at %d", i)
			}
			toks = append(toks, sqlTok{'o', q[i:j]})
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
		i = j
	}
	return toks, nil
}

func qualifyOperators(q string) (string, error) {
	toks, err := sqlTokens(q)
	if err != nil {
		return "", err
	}
	// next returns the index of the next token that is not space.
	next := func(i int) int {
		for i++; i < len(toks) && toks[i].kind == ' '; i++ {
		}
		return i
	}
	var b strings.Builder
	// ops counts the operators of the comparison being read, per
	// parenthesis level; closers says how each open parenthesis closes.
	ops := []int{0}
	closers := []string{""}
	operator := func(op string) error {
		if ops[len(ops)-1]++; ops[len(ops)-1] > 1 {
			return fmt.Errorf("two operators in one comparison near %q: parenthesise, or write pg_catalog.concat", b.String()[max(0, b.Len()-60):])
		}
		b.WriteString("OPERATOR(pg_catalog." + op + ")")
		return nil
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		up := strings.ToUpper(t.text)
		switch {
		case t.kind == 'o':
			op, ok := catalogOps[t.text]
			if !ok {
				return "", fmt.Errorf("operator %s is not one catalogSQL qualifies", t.text)
			}
			if err := operator(op); err != nil {
				return "", err
			}
		case t.kind == 'w' && up == "OPERATOR":
			// Qualified already: copied as written, and counted.
			var text strings.Builder
			for ; i < len(toks) && toks[i].text != ")"; i++ {
				text.WriteString(toks[i].text)
			}
			if i == len(toks) {
				return "", fmt.Errorf("OPERATOR without its parenthesis")
			}
			text.WriteString(")")
			if !strings.HasPrefix(strings.ReplaceAll(text.String(), " ", ""), "OPERATOR(pg_catalog.") {
				return "", fmt.Errorf("%s is not in pg_catalog", text.String())
			}
			if ops[len(ops)-1]++; ops[len(ops)-1] > 1 {
				return "", fmt.Errorf("two operators in one comparison near %s", text.String())
			}
			b.WriteString(text.String())
		case t.kind == 'w' && (up == "IN" || up == "LIKE" || up == "NOT" && next(i) < len(toks) && (strings.EqualFold(toks[next(i)].text, "IN") || strings.EqualFold(toks[next(i)].text, "LIKE"))):
			not := up == "NOT"
			if not {
				i = next(i)
				up = strings.ToUpper(toks[i].text)
			}
			if up == "LIKE" {
				if err := operator(map[bool]string{false: "~~", true: "!~~"}[not]); err != nil {
					return "", err
				}
				break
			}
			p := next(i)
			if p >= len(toks) || toks[p].text != "(" {
				return "", fmt.Errorf("IN without a parenthesis")
			}
			if err := operator(map[bool]string{false: "=", true: "<>"}[not]); err != nil {
				return "", err
			}
			b.WriteString(map[bool]string{false: " ANY (", true: " ALL ("}[not])
			first := next(p)
			sub := first < len(toks) && (strings.EqualFold(toks[first].text, "SELECT") || strings.EqualFold(toks[first].text, "WITH") || strings.EqualFold(toks[first].text, "VALUES"))
			if sub {
				closers = append(closers, ")")
			} else {
				b.WriteString("ARRAY[")
				closers = append(closers, "])")
			}
			ops = append(ops, 0)
			i = p
		case t.kind == 'w' && catalogRefused[up]:
			if up == "DISTINCT" && i > 0 && strings.EqualFold(toks[prev(toks, i)].text, "SELECT") {
				b.WriteString(t.text) // SELECT DISTINCT sorts by the type's default class
				break
			}
			return "", fmt.Errorf("%s compares by an operator's name; write it otherwise", t.text)
		case t.kind == 'w' && up == "CASE":
			if n := next(i); n >= len(toks) || !strings.EqualFold(toks[n].text, "WHEN") {
				return "", fmt.Errorf("a simple CASE compares by an operator's name; write CASE WHEN x = ...")
			}
			ops[len(ops)-1] = 0
			b.WriteString(t.text)
		case t.kind == 'w' && catalogBoundaries[up]:
			ops[len(ops)-1] = 0
			b.WriteString(t.text)
		case t.text == "(":
			ops = append(ops, 0)
			closers = append(closers, ")")
			b.WriteString("(")
		case t.text == ")":
			if len(ops) == 1 {
				return "", fmt.Errorf("unbalanced parenthesis")
			}
			b.WriteString(closers[len(closers)-1])
			ops, closers = ops[:len(ops)-1], closers[:len(closers)-1]
		case t.text == ",":
			ops[len(ops)-1] = 0
			b.WriteString(",")
		default:
			b.WriteString(t.text)
		}
	}
	if len(ops) != 1 {
		return "", fmt.Errorf("unbalanced parenthesis")
	}
	return b.String(), nil
}

func prev(toks []sqlTok, i int) int {
	for i--; i > 0 && toks[i].kind == ' '; i-- {
	}
	return i
}

// afterOperator says whether what follows toks starts an operand: after an
// operator (as written or OPERATOR(...)), an opening parenthesis or a comma.
func afterOperator(toks []sqlTok) bool {
	i := len(toks) - 1
	for i >= 0 && toks[i].kind == ' ' {
		i--
	}
	switch {
	case i < 0:
		return true
	case toks[i].kind == 'o', toks[i].text == "(", toks[i].text == ",":
		return true
	case toks[i].text == ")":
		for i--; i >= 0 && toks[i].text != "("; i-- {
		}
		for i--; i >= 0 && toks[i].kind == ' '; i-- {
		}
		return i >= 0 && strings.EqualFold(toks[i].text, "OPERATOR")
	}
	return false
}
