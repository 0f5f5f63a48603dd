package recognizetest

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/wtcache/wtcache/internal/recognize"
)

// This file builds the corpus of the differential test: the hand-written
// cases of testdata/corpus.sql, the shapes real ORMs send, every PostgreSQL
// keyword in every name position, a seeded random generator over the SELECT
// grammar and the write statements, and token-level mutations of all of
// these. Everything is deterministic: the same corpus on every run.

// entry is one statement text of the corpus and where it came from.
type entry struct {
	origin string // "file:LINE", "orm", "keyword", "random", "write", "mutation"
	sql    string
}

// Corpus sizes of the generated parts.
const (
	nRandomSelects = 24000
	nRandomWrites  = 4000
	nRoutines      = 3000
	nMutations     = 45000
	corpusSeed     = 20240611
)

var corpus struct {
	once    sync.Once
	entries []entry
}

// buildCorpus returns the whole corpus, duplicates removed, in a fixed order;
// it is built once per test binary.
func buildCorpus(tb testing.TB) []entry {
	tb.Helper()
	file := fileCorpus(tb) // fails tb on a bad file, every time
	corpus.once.Do(func() { corpus.entries = generateCorpus(file) })
	return corpus.entries
}

func generateCorpus(file []entry) []entry {
	var all []entry
	all = append(all, file...)
	all = append(all, ormCorpus(rand.New(rand.NewPCG(corpusSeed, 1)))...)
	all = append(all, keywordCorpus()...)
	g := newGen(rand.New(rand.NewPCG(corpusSeed, 2)))
	for range nRandomSelects {
		all = append(all, entry{"random", g.selectStmt()})
	}
	for range nRandomWrites {
		all = append(all, entry{"write", g.writeStmt()})
	}
	for range nRoutines {
		all = append(all, entry{"routine", g.routine()})
	}
	// Mutate mostly texts the recognizer accepts as Lookups: their mutants
	// are the texts most likely to be accepted wrongly.
	var accepted []entry
	for _, e := range all {
		if cl := recognize.Classify(e.sql); len(cl.Statements) == 1 && cl.Statements[0].Lookup != nil {
			accepted = append(accepted, e)
		}
	}
	mr := rand.New(rand.NewPCG(corpusSeed, 3))
	all = append(all, mutations(mr, accepted, nMutations*2/3)...)
	all = append(all, mutations(mr, all, nMutations/3)...)
	seen := make(map[string]bool, len(all))
	out := all[:0]
	for _, e := range all {
		if !seen[e.sql] {
			seen[e.sql] = true
			out = append(out, e)
		}
	}
	return out
}

// fileCorpus reads testdata/corpus.sql: each case starts with a line
// "-- case: description"; the lines up to the next such line (or the end of
// the file) are the statement text, without the final newline. Lines before
// the first case are the file's own commentary.
func fileCorpus(tb testing.TB) []entry {
	tb.Helper()
	f, err := os.Open("testdata/corpus.sql")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []entry
	var cur []string
	start := 0
	flush := func() {
		if start > 0 {
			sql := strings.Join(cur, "\n")
			if strings.TrimSpace(sql) != "" {
				out = append(out, entry{fmt.Sprintf("file:%d", start), sql})
			}
		}
		cur = cur[:0]
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if strings.HasPrefix(sc.Text(), "-- case:") {
			flush()
			start = line + 1
			continue
		}
		if start > 0 {
			cur = append(cur, sc.Text())
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(out) < 100 {
		tb.Fatalf("testdata/corpus.sql: only %d cases", len(out))
	}
	return out
}

// ---------------------------------------------------------------------------
// ORM shapes (shared/design/landscape.md) and their variations.

type ormTable struct {
	name, schema string
	cols         []string
	alias        string // bun/go-pg model alias
}

var ormTables = []ormTable{
	{name: "users", cols: []string{"id", "name", "email", "age", "deleted_at"}, alias: "u"},
	{name: "accounts", cols: []string{"id", "owner", "balance", "deleted_at"}, alias: "a"},
	{name: "order_items", cols: []string{"id", "order_id", "sku", "qty", "deleted_at"}, alias: "order_item"},
	{name: "Users", schema: "public", cols: []string{"ID", "Name", "deleted_at"}, alias: "U"},
	{name: "user", cols: []string{"id", "tenant_id", "name", "deleted_at"}, alias: "user"},
	{name: "authors", schema: "app", cols: []string{"id", "name", "bio", "deleted_at"}, alias: "author"},
}

func q(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// ormCorpus returns GORM, bun, go-pg, sqlx/sqlc, ent, sqlboiler, Rails,
// Django and Hibernate shapes for every table, with parameters and inlined
// literals, and random comments and white space.
func ormCorpus(r *rand.Rand) []entry {
	var out []entry
	add := func(format string, args ...any) {
		out = append(out, entry{"orm", fmt.Sprintf(format, args...)})
	}
	lits := []string{"1", "42", "-7", "'abc'", "'O''Brien'", "'2024-01-01 00:00:00+00:00'", "2147483648", "TRUE", "NULL", "'1'", "E'x\\ty'", "0"}
	for _, t := range ormTables {
		qt := q(t.name)
		from := qt
		if t.schema != "" {
			from = q(t.schema) + "." + qt
		}
		id := t.cols[0]
		qid := qt + "." + q(id)
		del := qt + "." + q("deleted_at")
		var qcols []string
		for _, c := range t.cols {
			qcols = append(qcols, qt+"."+q(c))
		}
		cols := strings.Join(qcols, ", ")
		colsTight := strings.Join(qcols, ",")

		// GORM: First, Take, Last, Find, Where, Select, Unscoped, locking, count.
		add(`SELECT * FROM %s WHERE %s = $1 AND %s IS NULL ORDER BY %s LIMIT $2`, from, qid, del, qid)
		add(`SELECT * FROM %s WHERE %s = $1 AND %s IS NULL ORDER BY %s LIMIT 1`, from, qid, del, qid)
		add(`SELECT * FROM %s WHERE %s = $1 ORDER BY %s LIMIT $2`, from, qid, qid)
		add(`SELECT * FROM %s WHERE %s = $1 AND %s IS NULL LIMIT $2`, from, qid, del)
		add(`SELECT * FROM %s WHERE %s = $1 AND %s IS NULL ORDER BY %s DESC LIMIT $2`, from, qid, del, qid)
		add(`SELECT * FROM %s WHERE %s IN ($1,$2) AND %s IS NULL`, from, qid, del)
		add(`SELECT * FROM %s WHERE %s IN ($1,$2,$3,$4,$5) AND %s IS NULL`, from, qid, del)
		add(`SELECT * FROM %s WHERE %s = $1 AND %s IS NULL`, from, qid, del)
		add(`SELECT * FROM %s WHERE %s = $1 AND %s IS NULL ORDER BY %s LIMIT $2`, from, q(id), del, qid)
		add(`SELECT * FROM %s WHERE %s IS NULL AND %s = $1 ORDER BY %s LIMIT $2`, from, del, id, qid)
		add(`SELECT %s FROM %s WHERE %s = $1 AND %s IS NULL ORDER BY %s LIMIT $2`, colsTight, from, qid, del, qid)
		add(`SELECT %s FROM %s WHERE %s.%s = $1 AND %s.%s = $2 AND %s IS NULL LIMIT $3`, cols, from, qt, q(t.cols[1]), qt, q(t.cols[2]), del)
		add(`SELECT * FROM %s WHERE %s = $1 ORDER BY %s LIMIT $2 FOR UPDATE`, from, qid, qid)
		add(`SELECT count(*) FROM %s WHERE %s = $1 AND %s IS NULL`, from, qid, del)
		add(`SELECT * FROM %s WHERE %s = $1 AND %s IS NULL ORDER BY %s LIMIT $2 OFFSET $3`, from, qid, del, qid)
		add(`SELECT * FROM %s WHERE (%s = $1 OR %s = $2) AND %s IS NULL`, from, qid, qid, del)
		add(`SELECT * FROM %s WHERE %s <> $1 AND %s IS NULL`, from, qid, del)
		add(`SELECT %s.* FROM %s LEFT JOIN "companies" "Company" ON %s = "Company"."id" WHERE %s = $1`, qt, from, qid, qid)
		// GORM writes.
		add(`INSERT INTO %s (%s) VALUES ($1,$2) RETURNING %s`, from, q(t.cols[1])+","+q(t.cols[2]), q(id))
		add(`UPDATE %s SET %s=$1,%s=$2 WHERE %s IS NULL AND %s = $3`, from, q(t.cols[1]), q("updated_at"), del, q(id))
		add(`UPDATE %s SET %s=$1 WHERE %s = $2 AND %s IS NULL`, from, q("deleted_at"), qid, del)
		add(`DELETE FROM %s WHERE %s = $1`, from, qid)

		// bun and go-pg: inlined literals, parentheses, model aliases.
		qa := q(t.alias)
		for _, lit := range lits {
			add(`SELECT %s.%s, %s.%s FROM %s AS %s WHERE (%s.%s = %s)`, qa, q(id), qa, q(t.cols[1]), from, qa, qa, q(id), lit)
			add(`SELECT %s.%s FROM %s AS %s WHERE (%s.%s = %s) AND (%s.%s IS NULL) LIMIT 1`, qa, q(id), from, qa, qa, q(id), lit, qa, q("deleted_at"))
			add(`SELECT %s.%s FROM %s AS %s WHERE (%s.%s IN (%s, %s))`, qa, q(id), from, qa, qa, q(id), lit, lits[r.IntN(len(lits))])
			add(`UPDATE %s AS %s SET %s = %s WHERE (%s.%s = %s)`, from, qa, q(t.cols[1]), lit, qa, q(id), lit)
			add(`DELETE FROM %s AS %s WHERE (%s.%s = %s)`, from, qa, qa, q(id), lit)
		}
		add(`SELECT %s.* FROM %s AS %s WHERE (%s.%s = 5)`, qa, from, qa, qa, q(id))
		add(`INSERT INTO %s AS %s (%s, %s) VALUES (DEFAULT, 'x') RETURNING %s`, from, qa, q(id), q(t.cols[1]), q(id))
		add(`UPDATE %s AS %s SET %s = '2024-01-01 00:00:00+00:00' WHERE (%s.%s = 5) AND %s.%s IS NULL`, from, qa, q("deleted_at"), qa, q(id), qa, q("deleted_at"))

		// sqlx, sqlc, pgx: SQL as written.
		plain := strings.ToLower(t.name)
		if t.schema != "" {
			plain = t.schema + "." + plain
		}
		add(`SELECT %s FROM %s WHERE %s = $1`, strings.Join(t.cols, ", "), plain, id)
		add(`select * from %s where %s=$1`, plain, id)
		add("-- name: Get%s :one\nSELECT %s FROM %s\nWHERE %s = $1 LIMIT 1", strings.ToUpper(t.name[:1])+t.name[1:], strings.Join(t.cols, ", "), plain, id)
		add("-- name: List%s :many\nSELECT %s FROM %s\nWHERE %s = ANY($1::bigint[])\nORDER BY %s", t.name, strings.Join(t.cols, ", "), plain, id, t.cols[1])
		add(`SELECT %s FROM %s WHERE %s = ANY($1)`, id, plain, id)
		add(`SELECT %s FROM %s WHERE %s = $1 AND %s = $2`, strings.Join(t.cols, ", "), plain, id, t.cols[1])
		add(`SELECT * FROM %s WHERE %s = $1 FOR UPDATE`, plain, id)
		add(`SELECT %s.* FROM %s WHERE %s.%s = $1`, strings.ToLower(t.name), plain, strings.ToLower(t.name), id)
		add("SELECT %s\nFROM %s\nWHERE %s = $1\n  AND %s IS NULL\n", strings.Join(t.cols, ",\n       "), plain, id, "deleted_at")

		// ent: Only/First/IDs/eager loading/Exist.
		add(`SELECT %s FROM %s WHERE %s = $1 LIMIT 2`, cols, from, qid)
		add(`SELECT %s FROM %s WHERE %s = $1 LIMIT 1`, cols, from, qid)
		add(`SELECT %s FROM %s WHERE %s IN ($1, $2, $3)`, cols, from, qid)
		add(`SELECT %s FROM %s WHERE %s = $1 ORDER BY %s LIMIT 1`, cols, from, qid, qid)
		add(`SELECT DISTINCT %s FROM %s WHERE %s = $1`, qid, from, qid)
		add(`SELECT 1 FROM %s WHERE %s = $1 LIMIT 1`, from, qid)
		add(`SELECT COUNT(DISTINCT %s) FROM %s WHERE %s = $1`, qid, from, qid)

		// sqlboiler, Rails, Django, Hibernate.
		add(`select %s.* from %s where %s=$1`, qt, from, q(id))
		add(`SELECT %s.* FROM %s WHERE (%s = $1) LIMIT 1;`, qt, from, qid)
		add(`SELECT %s.* FROM %s WHERE %s = $1 LIMIT $2`, qt, from, qid)
		add(`SELECT %s FROM %s WHERE %s = 5 LIMIT 21`, cols, from, qid)
		add(`select %s1_0.%s,%s1_0.%s from %s %s1_0 where %s1_0.%s=$1`, t.alias, id, t.alias, t.cols[1], plain, t.alias, t.alias, id)
	}
	// Variations: comments and white space around the tokens of each shape,
	// and keywords in other cases.
	n := len(out)
	for i := range n {
		out = append(out, entry{"orm", respace(r, out[i].sql)})
	}
	return out
}

// respace re-renders sql token by token (pg_query's scanner) with random
// separators and keyword cases; it returns sql unchanged if it does not scan.
func respace(r *rand.Rand, sql string) string {
	toks, ok := scanTokens(sql)
	if !ok || len(toks) == 0 {
		return sql
	}
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteString(pickSep(r))
		}
		if t.keyword {
			b.WriteString(randCase(r, t.text))
		} else {
			b.WriteString(t.text)
		}
	}
	return b.String()
}

type scanTok struct {
	text    string
	keyword bool
	comment bool
}

// scanTokens splits sql with PostgreSQL's scanner, comments included.
func scanTokens(sql string) ([]scanTok, bool) {
	res, err := pg.Scan(sql)
	if err != nil {
		return nil, false
	}
	out := make([]scanTok, 0, len(res.Tokens))
	for _, t := range res.Tokens {
		if t.Start < 0 || t.End > int32(len(sql)) || t.Start > t.End {
			return nil, false
		}
		text := sql[t.Start:t.End]
		if t.Token == pg.Token_SQL_COMMENT {
			text += "\n" // a line comment ends at the line's end
		}
		out = append(out, scanTok{
			text:    text,
			keyword: t.KeywordKind != pg.KeywordKind_NO_KEYWORD,
			comment: t.Token == pg.Token_SQL_COMMENT || t.Token == pg.Token_C_COMMENT,
		})
	}
	return out, true
}

var separators = []string{
	" ", " ", " ", " ", " ", " ", "\n", "\t", "  ", "\r\n",
	" /* OR 1=1 */ ", "/**/", " -- OR 1=1\n", "\n-- ; DELETE FROM t\n", " /* nested /* c */ */ ",
	" --\n", "\f", "\v", " /* ' */ ", ` /* " */ `, " -- x\r",
}

func pickSep(r *rand.Rand) string { return separators[r.IntN(len(separators))] }

func randCase(r *rand.Rand, s string) string {
	switch r.IntN(4) {
	case 0:
		return strings.ToLower(s)
	case 1:
		return strings.ToUpper(s)
	case 2:
		b := []byte(s)
		for i := range b {
			if r.IntN(2) == 0 {
				b[i] = byte(strings.ToUpper(string(b[i]))[0])
			} else {
				b[i] = byte(strings.ToLower(string(b[i]))[0])
			}
		}
		return string(b)
	}
	return s
}

// ---------------------------------------------------------------------------
// Every keyword in every position of a name.

var keywordTemplates = []string{
	`SELECT K FROM t WHERE id = $1`,
	`SELECT id FROM K WHERE id = $1`,
	`SELECT id FROM t K WHERE id = $1`,
	`SELECT id FROM t AS K WHERE K.id = $1`,
	`SELECT id K FROM t WHERE id = $1`,
	`SELECT id AS K FROM t WHERE id = $1 ORDER BY K`,
	`SELECT id FROM t WHERE K = $1`,
	`SELECT id FROM t WHERE K IS NULL`,
	`SELECT id FROM t WHERE K IN ($1, 2)`,
	`SELECT id FROM t WHERE $1 = K`,
	`SELECT id FROM t WHERE id = $1 ORDER BY K DESC`,
	`SELECT K.id FROM K.t WHERE K.t.id = 1`,
	`SELECT * FROM t WHERE id = 1 K`,
	`SELECT t.K FROM t WHERE t.K = 1 LIMIT 1`,
	`SELECT * FROM t WHERE id = K`,
	`SELECT K.* FROM t K WHERE id = 1`,
}

func keywordCorpus() []entry {
	var out []entry
	for _, kw := range pgKeywords {
		for i, tpl := range keywordTemplates {
			k := kw
			if i%3 == 1 {
				k = strings.ToUpper(kw)
			}
			out = append(out, entry{"keyword", strings.ReplaceAll(tpl, "K", k)})
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// The random generator.

// gen generates statements; "clean" parts keep the Lookup grammar, "dirty"
// parts leave it in one of many ways.
type gen struct {
	r     *rand.Rand
	dirty bool
	kwcat map[string]pg.KeywordKind
}

func newGen(r *rand.Rand) *gen {
	g := &gen{r: r, kwcat: map[string]pg.KeywordKind{}}
	for _, k := range pgKeywords {
		res, err := pg.Scan(k)
		if err == nil && len(res.Tokens) == 1 {
			g.kwcat[k] = res.Tokens[0].KeywordKind
		}
	}
	return g
}

func (g *gen) p(x float64) bool { return g.r.Float64() < x }

// d reports true with probability x in a dirty statement, never in a clean
// one.
func (g *gen) d(x float64) bool { return g.dirty && g.p(x) }

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) kw(s string) string { return randCase(g.r, s) }

// ident is a name as the server folds it, with extra spellings that fold to
// it (over-long names are truncated to 63 bytes).
type ident struct {
	folded string
	extra  []string
}

func id(s string, extra ...string) ident { return ident{s, extra} }

var (
	long63   = strings.Repeat("a", 63)
	long63c  = "c" + strings.Repeat("x", 62)
	tables   = []ident{id("users"), id("accounts"), id("orders"), id("t"), id("Users"), id("user accounts"), id(`we"ird`), id("from"), id("action"), id(long63, strings.Repeat("a", 70), strings.Repeat("A", 64)), id("tëst", "tëst"), id("user"), id("key")}
	schemas  = []ident{id("public"), id("app"), id("My Schema"), id("pg_catalog")}
	columns  = []ident{id("id"), id("user_id"), id("tenant_id"), id("deleted_at"), id("email"), id("name"), id("ID"), id("Email"), id("weird col"), id(`quo"te`), id("key"), id("value"), id("select"), id("order"), id("position"), id(long63c, long63c+"yyyy"), id("id$"), id("ünï", "ünï"), id("type"), id("at")}
	aliases  = []ident{id("u"), id("a"), id("A"), id("x1"), id("user"), id("action"), id("t"), id("users"), id("order_item")}
	labels   = []ident{id("x"), id("X"), id("from"), id("id"), id("name"), id("as"), id("select"), id("key"), id("Out Col"), id("user_id")}
	badQuals = []string{"other", "x", `"Users"`, "public", "pg_catalog.users", "a.b.c"}
)

// spell returns a spelling of n that the server folds to n.
func (g *gen) spell(n ident) string {
	if len(n.extra) > 0 && g.p(0.3) {
		return g.pick(n.extra...)
	}
	if g.plain(n.folded) && g.p(0.7) {
		return g.kw(n.folded)
	}
	return q(n.folded)
}

// plain reports whether s can be written unquoted as a column or table
// name: lower-case ASCII, not a keyword other than an unreserved one.
func (g *gen) plain(s string) bool {
	if s == "" || len(s) > 63 || !(s[0] == '_' || 'a' <= s[0] && s[0] <= 'z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '$' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	k, isKw := g.kwcat[s]
	return !isKw || k == pg.KeywordKind_UNRESERVED_KEYWORD
}

// join renders tokens with random separators; a token may be "" (skipped).
func (g *gen) join(toks ...string) string {
	var b strings.Builder
	first := true
	for _, t := range toks {
		if t == "" {
			continue
		}
		if !first {
			b.WriteString(g.sep(b.String(), t))
		}
		first = false
		b.WriteString(t)
	}
	return b.String()
}

// sep returns a separator between a and b: mostly a space, sometimes a
// comment or other white space, sometimes nothing next to punctuation.
func (g *gen) sep(a, b string) string {
	if a != "" && b != "" && g.p(0.15) {
		last, first := a[len(a)-1], b[0]
		punct := func(c byte) bool { return strings.IndexByte("(),;", c) >= 0 }
		if punct(last) || punct(first) {
			return ""
		}
	}
	if g.p(0.85) {
		return " "
	}
	return pickSep(g.r)
}

// scope of one generated SELECT.
type genScope struct {
	table, schema ident
	hasSchema     bool
	alias         ident
	hasAlias      bool
}

// qual returns the tokens of a qualifier (with its trailing dot) for a
// column of the scope: none, or one that names the table; in a dirty
// statement sometimes a wrong one.
func (g *gen) qual(s *genScope) string {
	if g.d(0.08) {
		switch g.r.IntN(4) {
		case 0:
			return g.pick(badQuals...) + "."
		case 1:
			if s.hasAlias { // the table name is hidden by the alias
				return g.spell(s.table) + "."
			}
			return g.spell(id("zz")) + "."
		case 2:
			return g.spell(s.schema) + "." + g.spell(s.table) + "."
		default:
			return g.spell(s.table) + " . "
		}
	}
	switch g.r.IntN(3) {
	case 0:
		return ""
	case 1:
		if s.hasAlias {
			return g.spell(s.alias) + g.pick(".", " .", ". ", "/**/.")
		}
		return g.spell(s.table) + "."
	default:
		if s.hasAlias {
			return g.spell(s.alias) + "."
		}
		if s.hasSchema {
			return g.spell(s.schema) + "." + g.spell(s.table) + "."
		}
		return g.spell(s.table) + "."
	}
}

func (g *gen) colRef(s *genScope) string {
	c := columns[g.r.IntN(len(columns))]
	return g.qual(s) + g.spell(c)
}

// value returns a constant or parameter: clean ones that a Lookup may hold,
// dirty ones of every other kind.
func (g *gen) value() string {
	if g.d(0.25) {
		return g.pick(
			"TRUE", "false", "NULL", "'5'::int", "$1::int", "CAST($1 AS int)", "int '5'", "lower($1)", "now()",
			"(SELECT 1)", "ARRAY[1]", "(5)", "($1)", "+5", "other_col", "DEFAULT", "$0", "$65536", "$99999999999", "$00000000001",
			"0x1F", "0o17", "0b101", "1_000", "5abc", "$1abc", "1e", "1..2", "'a\\b'", "'a'\n'b'", "'a' 'b'", "$$x$$", "$a$x$a$",
			"U&'\\0041'", "N'x'", "B'101'", "X'1F'", "E'\\0'", "E'\\xff'", "E'\\uD800'", "E'\\U0001F600'", "E'\\u00'",
			"interval '1 day'", "- -5", "-$1", "5 COLLATE \"C\"", "1 AT TIME ZONE 'UTC'", "?", ":1", "@id", "$1[1]", "($1).x",
			"-'5'", "- '5'", "'5' || ''", "1 + 1", "E'\\uD83D\\uDE00'", "e'\\x41\\x'", "'\u00e9'", "E'\\400'", "0.0e0", "00", "-0",
			"'\x00'", "'\xff'", "$1 $2", "$", "$ 1", "9223372036854775808", "- 2147483648",
		)
	}
	switch g.r.IntN(6) {
	case 0, 1:
		return "$" + g.pick("1", "2", "3", "4", "5", "10", "01", "65535")
	case 2:
		return g.pick("0", "1", "5", "42", "007", "2147483647", "2147483648", "-2147483648", "99999999999999999999", "-5", "- 5", "-/**/5", "1.5", ".5", "5.", "1e3", "1E-2", "-2.5E+3")
	case 3:
		return g.pick("'abc'", "''", "'it''s'", "'OR 1=1'", "'-- x'", "'/* x */'", "'select'", `'"q"'`, "' 5'", "'ü'", "'a;b'", "'$1'", "'5'")
	default:
		return g.pick("E'a\\nb'", "E'\\x41'", "E'\\101'", "E'\\u00e9'", "E'it\\'s'", "E'\\\\'", "e'x'", "E'\\q'", "E'a''b'", "E'\\U0001F600'", "E''", "E'\\b\\f\\r\\t'", "E'\\xZ'")
	}
}

func (g *gen) pred(s *genScope) string {
	col := g.colRef(s)
	eq := g.pick("=", "=", "=", " = ")
	if g.d(0.3) {
		v := g.value()
		switch g.r.IntN(42) {
		case 0:
			return g.join(col, g.pick("<>", "!=", "<", "<=", ">", ">=", "==", "=>", "=*", "~", "LIKE", "ILIKE"), v)
		case 1:
			return g.join(col, g.kw("NOT"), g.kw("IN"), "(", v, ")")
		case 2:
			return g.join(col, g.kw("BETWEEN"), v, g.kw("AND"), g.value())
		case 3:
			return g.join(col, g.kw("IS"), g.kw("NOT"), g.kw("NULL"))
		case 4:
			return g.join(col, g.kw(g.pick("ISNULL", "NOTNULL")))
		case 5:
			return g.join(col, g.kw("IS"), g.kw(g.pick("TRUE", "FALSE", "UNKNOWN", "NOT TRUE")))
		case 6:
			return g.join(col, g.kw("IS"), g.kw(g.pick("DISTINCT", "NOT DISTINCT")), g.kw("FROM"), v)
		case 7:
			return g.join(col, eq, g.kw(g.pick("ANY", "SOME", "ALL")), "(", g.pick("ARRAY[1,2]", "'{1,2}'", "$1::int[]", "$1", "SELECT 1", "", "$1, $2"), ")")
		case 8:
			return g.join(col, g.pick("<>", "<", "!="), g.kw("ANY"), "($1)")
		case 9:
			return g.join(col, g.kw("IN"), "(", g.kw("SELECT"), "1", ")")
		case 10:
			return g.join(g.kw("EXISTS"), "(", g.kw("SELECT"), "1", ")")
		case 11:
			return g.join(col, eq, "(", g.kw("SELECT"), "1", ")")
		case 12:
			return g.join(col, eq, g.colRef(s))
		case 13:
			return g.join(g.pick("lower(", "upper(", "coalesce(", "abs("), col, ")", eq, v)
		case 14:
			return g.join(col, "::", g.pick("text", "int", "bigint"), eq, v)
		case 15:
			return g.join("(", col, ")", eq, v)
		case 16:
			return g.join(col, g.kw("COLLATE"), `"C"`, eq, v)
		case 17:
			return g.join(col, g.kw("OPERATOR"), "(", g.pick("pg_catalog.=", "=", "public.="), ")", v)
		case 18:
			return g.join(col, eq, v, g.kw("IS"), g.kw("NULL"))
		case 19:
			return g.join(g.kw("NOT"), col, eq, v)
		case 20:
			return g.join(col, eq, v, g.kw("OR"), col, eq, g.value())
		case 21:
			return g.join("(", col, ",", g.colRef(s), ")", eq, "(", v, ",", g.value(), ")")
		case 22:
			return g.join(g.kw("ROW"), "(", col, ")", eq, g.kw("ROW"), "(", v, ")")
		case 23:
			return col
		case 24:
			return g.kw(g.pick("TRUE", "1 = 1", "NULL", "'t'"))
		case 25:
			return g.join(col, eq, v, eq, g.value())
		case 26:
			return g.join(col, g.kw("IN"), "(", ")")
		case 27:
			return g.join(col, g.kw("IN"), "(", v, ",", ")")
		case 28:
			return g.join(col, g.kw("IS"), g.kw("NULL"), g.kw("IS"), g.kw("NULL"))
		case 29:
			return g.join(col, eq, v, "::", g.pick("int", "text", "int[]"))
		case 30:
			return g.join(col, eq, g.kw("ANY"), "(", v, ")")
		case 31:
			return g.join(col, g.kw("IN"), v)
		case 32:
			return g.join(col, eq, v, g.kw(g.pick("AT TIME ZONE 'UTC'", "COLLATE \"C\"", "IS TRUE", "BETWEEN 1 AND 2", "LIKE 'x'", "IN (1)")))
		case 33:
			return g.join(v, eq, v)
		case 34:
			return g.join(col, g.kw("NOT"), g.kw("LIKE"), v)
		case 35:
			return g.join(col, g.kw("SIMILAR"), g.kw("TO"), v)
		case 36:
			return g.join(col, eq, "-", col)
		case 37:
			return g.join(col, g.kw("IS"), g.kw("NULL"), g.kw("OR"), col, eq, v)
		case 38:
			return g.join(col, g.kw("IN"), "(", v, ",", "(", g.kw("SELECT"), "1", ")", ")")
		case 39:
			return g.join(col, eq, v, g.kw("AND"))
		case 40:
			return g.join(g.kw("AND"), col, eq, v)
		default:
			return g.join(col, eq, "$1", g.kw("IS NOT DISTINCT FROM"), v)
		}
	}
	switch g.r.IntN(7) {
	case 0, 1, 2:
		return g.join(col, eq, g.value())
	case 3:
		return g.join(g.value(), eq, col)
	case 4:
		n := 1 + g.r.IntN(4)
		items := []string{col, g.kw("IN"), "("}
		for i := range n {
			if i > 0 {
				items = append(items, ",")
			}
			items = append(items, g.value())
		}
		return g.join(append(items, ")")...)
	case 5:
		return g.join(col, eq, g.kw("ANY"), "(", "$"+g.pick("1", "2", "7"), ")")
	default:
		return g.join(col, g.kw("IS"), g.kw("NULL"))
	}
}

// where returns a conjunction of preds with random parentheses.
func (g *gen) where(s *genScope) string {
	n := 1 + g.r.IntN(4)
	preds := make([]string, n)
	for i := range preds {
		preds[i] = g.pred(s)
	}
	return g.group(preds, 0)
}

func (g *gen) group(preds []string, depth int) string {
	if len(preds) == 1 {
		if g.p(0.2) && depth < 4 {
			return g.join("(", preds[0], ")")
		}
		return preds[0]
	}
	cut := 1 + g.r.IntN(len(preds)-1)
	conn := g.kw("AND")
	if g.d(0.15) {
		conn = g.pick(g.kw("OR"), g.kw("AND NOT"), "&&", ",", g.kw("AND AND"), "")
	}
	out := g.join(g.group(preds[:cut], depth+1), conn, g.group(preds[cut:], depth+1))
	if g.p(0.2) && depth < 4 {
		out = g.join("(", out, ")")
	}
	return out
}

// label returns an output name: AS any label, or a bare label.
func (g *gen) label() string {
	l := labels[g.r.IntN(len(labels))]
	if g.p(0.5) {
		if g.p(0.5) {
			return g.join(g.kw("AS"), q(l.folded))
		}
		if g.d(0.3) || g.plain(l.folded) || g.kwcat[l.folded] != 0 {
			return g.join(g.kw("AS"), g.kw(l.folded))
		}
		return g.join(g.kw("AS"), q(l.folded))
	}
	if g.d(0.3) || g.plain(l.folded) && g.kwcat[l.folded] == 0 {
		return g.kw(l.folded)
	}
	return q(l.folded)
}

func (g *gen) selectList(s *genScope) string {
	if g.d(0.2) {
		return g.pick(
			g.kw("DISTINCT")+" *", g.kw("ALL")+" *", "*, id", "id, *", "id + 1", "lower(name)", "count(*)", "1", "'x'", g.kw("NULL"), "$1",
			"id::text", "(id)", "id[1]", "t.id.x", "ROW(id)", "CASE WHEN true THEN 1 END", "id AS", "id AS x y", "coalesce(id, 0)",
			g.kw("current_user"), g.kw("DISTINCT ON (id)")+" id", "", "id,", ", id", "*.*", "* *", "t.*.id", "id x y", "-id", "id 'x'",
			g.kw("user"), g.kw("current_schema"), g.kw("system_user"), "id.*", "* AS x", "(t).*", "t.* AS x", "*, *", "t.*, t.*", "id AS 1",
		)
	}
	switch {
	case g.p(0.25):
		return "*"
	case g.p(0.1):
		qual := g.qual(s)
		if qual == "" {
			return "*"
		}
		return qual + "*"
	}
	n := 1 + g.r.IntN(4)
	items := make([]string, 0, 2*n)
	for i := range n {
		if i > 0 {
			items = append(items, ",")
		}
		item := g.colRef(s)
		if g.p(0.35) {
			item = g.join(item, g.label())
		}
		items = append(items, item)
	}
	return g.join(items...)
}

func (g *gen) fromItem(s *genScope) string {
	name := g.spell(s.table)
	if s.hasSchema {
		name = g.spell(s.schema) + g.pick(".", " . ") + name
	}
	alias := ""
	if s.hasAlias {
		a := g.spell(s.alias)
		if !g.plain(s.alias.folded) {
			a = q(s.alias.folded)
		}
		if g.p(0.5) {
			alias = g.join(g.kw("AS"), a)
		} else {
			alias = a
		}
	}
	if g.d(0.2) {
		switch g.r.IntN(16) {
		case 0:
			return g.join(g.kw("ONLY"), name, alias)
		case 1:
			return g.join(name, "*", alias)
		case 2:
			return g.join(g.kw("ONLY"), "(", name, ")", alias)
		case 3:
			return g.join(name, alias, g.kw("TABLESAMPLE"), g.kw("SYSTEM"), "(10)")
		case 4:
			return g.join(name, g.kw("AS"), "a(x, y)")
		case 5:
			return g.join(name, alias, ",", "other")
		case 6:
			return g.join(name, alias, g.kw(g.pick("JOIN", "LEFT JOIN", "INNER JOIN", "FULL OUTER JOIN")), "other", g.kw("ON"), g.kw("true"))
		case 7:
			return g.join(name, alias, g.kw(g.pick("CROSS JOIN", "NATURAL JOIN")), "other")
		case 8:
			return g.join(g.kw("LATERAL"), "(", g.kw("SELECT"), "1", g.kw("AS"), "id", ")", "s")
		case 9:
			return g.join("(", g.kw("SELECT"), "*", g.kw("FROM"), name, ")", g.pick("s", "AS s", ""))
		case 10:
			return g.join(g.pick("generate_series(1, 3)", "unnest($1)", "f()", "ROWS FROM (f())", "json_to_record($1) AS x(id int)"), g.pick("g", "AS id", ""))
		case 11:
			return g.join("db."+g.spell(s.schema)+"."+g.spell(s.table), alias)
		case 12:
			return g.join(name, g.kw("AS"))
		case 13:
			return g.join("(", name, ")")
		case 14:
			return g.join(name, "u1", "u2")
		default:
			return g.join(name, alias, g.kw("WITH ORDINALITY"))
		}
	}
	return g.join(name, alias)
}

func (g *gen) orderBy(s *genScope, outNames []string) string {
	n := 1 + g.r.IntN(2)
	items := []string{g.kw("ORDER"), g.kw("BY")}
	for i := range n {
		if i > 0 {
			items = append(items, ",")
		}
		var ref string
		if len(outNames) > 0 && g.p(0.3) {
			ref = outNames[g.r.IntN(len(outNames))]
		} else {
			ref = g.colRef(s)
		}
		if g.d(0.25) {
			ref = g.pick("1", ref+" + 1", "lower("+ref+")", "random()", ref+" COLLATE \"C\"", "-"+ref, "("+ref+")", "$1", "'x'")
		}
		items = append(items, ref)
		switch g.r.IntN(4) {
		case 0:
			items = append(items, g.kw("ASC"))
		case 1:
			items = append(items, g.kw("DESC"))
		}
		if g.d(0.2) {
			items = append(items, g.kw(g.pick("NULLS FIRST", "NULLS LAST", "USING <", "USING >", "ASC DESC")))
		}
	}
	return g.join(items...)
}

func (g *gen) count() string {
	if g.d(0.2) {
		return g.pick("ALL", "NULL", "-1", "1.5", "(1)", "1+1", "0x10", "1, 2", "'1'", "$0", "1e2", "- 1", "$1::int", "$1 + 1")
	}
	return g.pick("0", "1", "2", "10", "007", "2147483648", "$1", "$2", "$3")
}

func (g *gen) limits() string {
	var parts []string
	if g.p(0.6) {
		if g.p(0.7) {
			parts = append(parts, g.join(g.kw("LIMIT"), g.count()))
		} else {
			n := g.pick("", g.count())
			ro := g.kw(g.pick("ROW", "ROWS"))
			tail := g.kw("ONLY")
			if g.d(0.2) {
				tail = g.kw(g.pick("WITH TIES", "", "ONLY ONLY"))
			}
			parts = append(parts, g.join(g.kw("FETCH"), g.kw(g.pick("FIRST", "NEXT")), n, ro, tail))
		}
	}
	if g.p(0.3) {
		parts = append(parts, g.join(g.kw("OFFSET"), g.count(), g.kw(g.pick("", "", "ROW", "ROWS"))))
	}
	if g.d(0.1) {
		parts = append(parts, g.join(g.kw(g.pick("LIMIT", "OFFSET")), g.count()))
	}
	g.r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return g.join(parts...)
}

// selectStmt generates one SELECT text, near the Lookup shape.
func (g *gen) selectStmt() string {
	g.dirty = g.p(0.6)
	s := &genScope{table: tables[g.r.IntN(len(tables))]}
	if g.p(0.25) {
		s.hasSchema = true
		s.schema = schemas[g.r.IntN(len(schemas))]
	}
	if g.p(0.45) {
		s.hasAlias = true
		s.alias = aliases[g.r.IntN(len(aliases))]
	}
	list := g.selectList(s)
	// Output names usable in ORDER BY: the labels given.
	var outNames []string
	for _, l := range labels {
		if strings.Contains(list, l.folded) {
			outNames = append(outNames, g.spell(l))
		}
	}
	var parts []string
	if g.d(0.12) {
		parts = append(parts, g.pick(
			"WITH c AS (SELECT 1)", "WITH c AS (DELETE FROM t WHERE id = 1 RETURNING *)", "WITH RECURSIVE c(n) AS (SELECT 1)",
			"EXPLAIN", "EXPLAIN ANALYZE", "EXPLAIN (ANALYZE)", "EXPLAIN (\"analyze\")", "/* leading */", "-- leading\n",
			"WITH c AS (UPDATE t SET a = 1 RETURNING *)", "WITH c AS MATERIALIZED (INSERT INTO t VALUES (1) RETURNING *)",
		))
	}
	parts = append(parts, g.kw("SELECT"))
	if g.d(0.05) {
		parts = append(parts, g.kw(g.pick("DISTINCT", "ALL", "DISTINCT ON (id)")))
	}
	parts = append(parts, list)
	if g.d(0.04) {
		parts = append(parts, g.kw("INTO"), g.pick("x", "TEMP x", "TABLE x"))
	}
	if !g.d(0.03) {
		parts = append(parts, g.kw("FROM"), g.fromItem(s))
	}
	if !g.d(0.05) {
		parts = append(parts, g.kw("WHERE"), g.where(s))
	}
	if g.d(0.06) {
		parts = append(parts, g.kw("GROUP BY"), g.colRef(s))
		if g.p(0.5) {
			parts = append(parts, g.kw("HAVING"), "count(*) > 1")
		}
	}
	if g.d(0.03) {
		parts = append(parts, g.kw("WINDOW"), "w", g.kw("AS"), "()")
	}
	if g.d(0.05) {
		parts = append(parts, g.kw(g.pick("UNION", "UNION ALL", "INTERSECT", "EXCEPT")), g.kw("SELECT"), "*", g.kw("FROM"), "other")
	}
	if g.p(0.35) {
		parts = append(parts, g.orderBy(s, outNames))
	}
	lim := g.limits()
	lock := ""
	if g.d(0.08) {
		lock = g.join(g.kw(g.pick("FOR UPDATE", "FOR NO KEY UPDATE", "FOR SHARE", "FOR KEY SHARE", "FOR READ ONLY", "FOR UPDATE OF t", "FOR SHARE NOWAIT", "FOR UPDATE SKIP LOCKED")))
	}
	if lock != "" && g.p(0.5) {
		parts = append(parts, lock, lim)
	} else {
		parts = append(parts, lim, lock)
	}
	if g.p(0.1) {
		parts = append(parts, g.pick(";", " ;", ";;", "; -- bye", ";\n"))
	}
	if g.d(0.06) {
		parts = append(parts, g.pick("; SELECT 1", "; DELETE FROM t", ";; COMMIT", "; BEGIN", "\\g", "\\;", "; SELECT * FROM t WHERE id = 1"))
	}
	sql := g.join(parts...)
	if g.d(0.03) {
		sql = "(" + sql + ")"
	}
	return sql
}

// writeStmt generates a data-modifying statement in many disguises, and
// statements that only look like one.
func (g *gen) writeStmt() string {
	g.dirty = true
	s := &genScope{table: tables[g.r.IntN(len(tables))]}
	tbl := g.spell(s.table)
	if g.p(0.2) {
		tbl = g.spell(schemas[g.r.IntN(len(schemas))]) + "." + tbl
	}
	col := g.spell(columns[g.r.IntN(len(columns))])
	v := g.value()
	w := g.pick("", g.join(g.kw("WHERE"), g.where(s)))
	ret := g.pick("", "", g.kw("RETURNING")+" *", g.kw("RETURNING")+" "+col)
	dml := []string{
		g.join(g.kw("INSERT"), g.kw("INTO"), tbl, "(", col, ")", g.kw("VALUES"), "(", v, ")", ret),
		g.join(g.kw("INSERT"), g.kw("INTO"), tbl, g.kw("VALUES"), "(", v, ")", g.kw("ON CONFLICT"), "(", col, ")", g.kw("DO UPDATE SET"), col, "=", g.kw("excluded"), ".", col, ret),
		g.join(g.kw("INSERT"), g.kw("INTO"), tbl, g.kw("SELECT"), "*", g.kw("FROM"), "other", ret),
		g.join(g.kw("UPDATE"), g.pick("", g.kw("ONLY")), tbl, g.pick("", "u", g.kw("AS")+" u"), g.kw("SET"), col, "=", v, w, ret),
		g.join(g.kw("DELETE"), g.kw("FROM"), g.pick("", g.kw("ONLY")), tbl, w, ret),
		g.join(g.kw("MERGE"), g.kw("INTO"), tbl, g.kw("USING"), "other", "o", g.kw("ON"), "o.id", "=", "1", g.kw("WHEN MATCHED THEN UPDATE SET"), col, "=", v, g.kw("WHEN NOT MATCHED THEN INSERT VALUES"), "(", v, ")"),
		g.join(g.kw("MERGE"), g.kw("INTO"), tbl, g.kw("USING"), "other", g.kw("ON"), "true", g.kw("WHEN MATCHED THEN DELETE")),
	}
	stmt := dml[g.r.IntN(len(dml))]
	switch g.r.IntN(16) {
	case 0:
		return g.join(g.kw("WITH"), "d", g.kw("AS"), g.pick("", g.kw("MATERIALIZED"), g.kw("NOT MATERIALIZED")), "(", stmt, ")", g.kw("SELECT"), "*", g.kw("FROM"), "d", g.pick("", g.kw("WHERE"), g.kw("FOR UPDATE")))
	case 1:
		return g.join(g.kw("EXPLAIN"), g.pick(g.kw("ANALYZE"), g.kw("ANALYSE"), g.kw("ANALYZE VERBOSE"), "(ANALYZE)", "(analyze true)", "(ANALYZE 1)", "(ANALYZE on)", "(FORMAT JSON, ANALYZE)", "(\"analyze\")", "(analyze 'on')", "(ANALYZE false)", "(ANALYZE off)", "", "VERBOSE", "(ANALYZE 0)", "(BUFFERS, ANALYZE)", "(ANALYZE, ANALYZE off)", "(\"ANALYZE\")", "(analyse)", "( /* x */ analyze )"), stmt)
	case 2:
		return g.join(g.kw("COPY"), "(", stmt, ")", g.kw("TO STDOUT"))
	case 3:
		return g.join(g.kw("COPY"), tbl, g.pick("", "(a, b)"), g.kw(g.pick("FROM STDIN", "TO STDOUT", "FROM '/tmp/x'")))
	case 4:
		return g.join(g.kw("TRUNCATE"), g.pick("", g.kw("TABLE")), g.pick("", g.kw("ONLY")), tbl, g.pick("", ", other", "*", g.kw("CASCADE"), g.kw("RESTART IDENTITY")))
	case 5:
		return g.join(g.kw("PREPARE"), "p", g.kw("AS"), stmt)
	case 6:
		return g.join(g.kw("SELECT"), "1", ";", stmt)
	case 7:
		return g.join(stmt, ";", g.kw("SELECT"), "*", g.kw("FROM"), "t", g.kw("WHERE"), "id", "=", "1")
	case 8:
		return g.join(g.kw("WITH"), "a", g.kw("AS"), "(", g.kw("WITH"), "b", g.kw("AS"), "(", stmt, ")", g.kw("SELECT"), "1", ")", g.kw("SELECT"), "*", g.kw("FROM"), "a")
	case 9:
		return g.join(g.kw("EXPLAIN"), g.pick(g.kw("ANALYZE"), "(ANALYZE)", ""), g.kw("WITH"), "d", g.kw("AS"), "(", stmt, ")", g.kw("SELECT"), "1")
	case 10:
		return g.join(g.kw("CREATE RULE"), "r", g.kw("AS ON INSERT TO"), tbl, g.kw("DO ALSO"), stmt)
	case 11:
		return g.join(g.kw("CREATE TABLE"), "x", g.kw("AS"), g.kw("WITH"), "d", g.kw("AS"), "(", stmt, ")", g.kw("SELECT"), "1")
	case 12:
		return g.join(g.kw("WITH"), "x", g.kw("AS"), "(", g.kw("SELECT"), "*", g.kw("FROM"), "t", g.kw(g.pick("FOR UPDATE", "FOR NO KEY UPDATE", "FOR SHARE")), ")", ",", "d", g.kw("AS"), "(", stmt, ")", g.kw("SELECT"), "1")
	case 13:
		return g.join(g.kw("DECLARE"), "c", g.kw("CURSOR FOR"), g.kw("WITH"), "d", g.kw("AS"), "(", stmt, ")", g.kw("SELECT"), "1")
	}
	return stmt
}

// routineBodyStmts are statements of a BEGIN ATOMIC body in which CASE and
// END are names, expressions, or only look like either.
var routineBodyStmts = []string{
	"SELECT 1 AS end", "SELECT 1 end", "SELECT t.end FROM t", "SELECT t.case FROM t", "SELECT 1 AS case", "SELECT 1 case",
	"SELECT CASE WHEN true THEN 1 END", "SELECT CASE WHEN true THEN 1 END end", "SELECT CASE WHEN true THEN 1 END case",
	"SELECT CASE WHEN CASE WHEN true THEN true END THEN 1 END", "SELECT (CASE WHEN true THEN 1 END)",
	"SELECT a FROM t WHERE a = CASE WHEN b THEN 1 ELSE 2 END", "SELECT true case", "SELECT null end", "SELECT t.* case FROM t",
	"INSERT INTO t VALUES (CASE WHEN true THEN 1 END)", "UPDATE t SET a = CASE WHEN a THEN 1 END",
	"SELECT 1 BETWEEN SYMMETRIC CASE WHEN true THEN 1 END AND 2", "SELECT now() AT TIME ZONE CASE WHEN true THEN 'UTC' END",
	"SELECT a FROM t ORDER BY CASE WHEN a THEN 1 END", "SELECT 1 FROM t LIMIT CASE WHEN true THEN 1 END",
	"SELECT 1 FROM t FETCH FIRST CASE WHEN true THEN 1 END ROWS ONLY", `SELECT "end" FROM t`, "SELECT 'end'", "SELECT 1 -- end;\n",
	"SELECT 1 /* end; */", "SELECT $$;end;$$", "DELETE FROM t WHERE a = CASE WHEN true THEN 1 ELSE 2 END", `SELECT 1 "case"`,
	"RETURN CASE WHEN true THEN 1 END", "RETURN 1", "SELECT x.end.y FROM t x", "SELECT CASE 1 WHEN 1 THEN 2 END AS end",
	"SELECT current_date case", "SELECT 1 WHERE true AND CASE WHEN true THEN true END", "SELECT ARRAY[CASE WHEN true THEN 1 END]",
	"SELECT 1 ::int case", "SELECT - CASE WHEN true THEN 1 END", "SELECT NOT CASE WHEN true THEN true END",
	"SELECT a FROM t GROUP BY CASE WHEN a THEN 1 END", "SELECT $1 case", "SELECT 'x' end", "SELECT e'x' case",
}

// routine generates CREATE FUNCTION or PROCEDURE with a BEGIN ATOMIC body,
// followed by statements whose boundaries matter: transaction control,
// writes, a lookup.
func (g *gen) routine() string {
	g.dirty = true
	parts := []string{g.pick(
		g.kw("CREATE FUNCTION")+" f() "+g.kw("RETURNS int LANGUAGE sql"),
		g.kw("CREATE OR REPLACE FUNCTION")+" f(a int) "+g.kw("RETURNS int LANGUAGE sql"),
		g.kw("CREATE PROCEDURE")+" p() "+g.kw("LANGUAGE sql"),
	), g.kw("BEGIN"), g.kw("ATOMIC")}
	for n := g.r.IntN(4); n > 0; n-- {
		st := routineBodyStmts[g.r.IntN(len(routineBodyStmts))]
		if g.p(0.5) {
			st = respace(g.r, st)
		}
		parts = append(parts, st, ";")
	}
	if !g.d(0.05) {
		parts = append(parts, g.kw("END"))
	}
	for n := g.r.IntN(3); n > 0; n-- {
		parts = append(parts, ";", g.kw(g.pick("BEGIN", "COMMIT", "END", "ROLLBACK", "DELETE FROM t", "SELECT * FROM t WHERE id = 1", "SAVEPOINT s", "START TRANSACTION")))
	}
	return g.join(parts...)
}

// ---------------------------------------------------------------------------
// Mutations.

var insertPool = []string{
	"OR", "AND", "NOT", "(", ")", ",", ";", "=", "*", ".", "NULL", "1", "$1", "'x'", "ONLY", "LATERAL", "FROM", "WHERE", "u",
	"--\n", "/*", "*/", "'", `"`, "::int", "UNION SELECT 1", "FOR UPDATE", "DISTINCT", "INTO x", "LIMIT 1", "OFFSET 1", "-",
	"ANY", "IN", "IS", "ORDER BY", "id", "t", "AS", "E'", "$$", "\\", "[", "]", "ALL", "x.y", "DELETE", "WITH", "ANALYZE",
	"ROWS", "ONLY", "FETCH FIRST", "TABLESAMPLE", "COLLATE", "DESC", "NULLS", "5", "-5", ".5", "$2", "OR 1=1", "/* */", "\n",
}

// mutationToken returns a token to insert: from insertPool, or any
// PostgreSQL keyword in a random case.
func mutationToken(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return randCase(r, pgKeywords[r.IntN(len(pgKeywords))])
	}
	return insertPool[r.IntN(len(insertPool))]
}

// mutations returns n texts made by deleting, duplicating, swapping,
// inserting and replacing tokens of texts of base.
func mutations(r *rand.Rand, base []entry, n int) []entry {
	out := make([]entry, 0, n)
	for len(out) < n {
		src := base[r.IntN(len(base))].sql
		toks, ok := scanTokens(src)
		if !ok || len(toks) == 0 {
			toks = nil
			for _, f := range strings.Fields(src) {
				toks = append(toks, scanTok{text: f})
			}
			if len(toks) == 0 {
				continue
			}
		}
		texts := make([]string, len(toks))
		for i, t := range toks {
			texts[i] = t.text
		}
		for k := 1 + r.IntN(3); k > 0; k-- {
			i := r.IntN(len(texts))
			switch r.IntN(5) {
			case 0:
				if len(texts) > 1 {
					texts = append(texts[:i], texts[i+1:]...)
				}
			case 1:
				texts = append(texts[:i+1], texts[i:]...)
			case 2:
				if i+1 < len(texts) {
					texts[i], texts[i+1] = texts[i+1], texts[i]
				}
			case 3:
				texts = append(texts[:i], append([]string{mutationToken(r)}, texts[i:]...)...)
			default:
				texts[i] = mutationToken(r)
			}
		}
		var b strings.Builder
		for i, t := range texts {
			if i > 0 && r.IntN(8) != 0 {
				b.WriteByte(' ')
			}
			b.WriteString(t)
		}
		out = append(out, entry{"mutation", b.String()})
	}
	return out
}

// originKind returns the corpus part of an origin ("file:12" gives "file").
func originKind(o string) string {
	if i := strings.IndexByte(o, ':'); i >= 0 {
		return o[:i]
	}
	return o
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
