package recognize

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func par(n int) Value           { return Value{Param: n} }
func num(s string) Value        { return Value{Literal: s} }
func str(s string) Value        { return Value{Literal: s, String: true} }
func vp(v Value) *Value         { return &v }
func eq(c string, v Value) Pred { return Pred{Column: c, Kind: PredEq, Value: v} }
func in(c string, vs ...Value) Pred {
	return Pred{Column: c, Kind: PredIn, List: vs}
}
func anyOf(c string, n int) Pred { return Pred{Column: c, Kind: PredAny, Value: par(n)} }
func isNull(c string) Pred       { return Pred{Column: c, Kind: PredIsNull} }
func cols(names ...string) []OutCol {
	out := make([]OutCol, len(names))
	for i, n := range names {
		out[i] = OutCol{Column: n, As: n}
	}
	return out
}
func tbl(name string) Table          { return Table{Name: name} }
func stbl(schema, name string) Table { return Table{Schema: schema, Name: name} }
func asc(c string) OrderCol          { return OrderCol{Column: c} }
func desc(c string) OrderCol         { return OrderCol{Column: c, Desc: true} }

// lookupOf classifies sql and returns its only statement's Lookup.
func lookupOf(t testing.TB, sql string) *Lookup {
	t.Helper()
	c := Classify(sql)
	if len(c.Statements) != 1 {
		return nil
	}
	return c.Statements[0].Lookup
}

func TestLookupAccepted(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want Lookup
	}{
		{
			"gorm First",
			`SELECT * FROM "users" WHERE "users"."id" = $1 AND "users"."deleted_at" IS NULL ORDER BY "users"."id" LIMIT $2`,
			Lookup{Table: tbl("users"), Star: true, Preds: []Pred{eq("id", par(1)), isNull("deleted_at")},
				OrderBy: []OrderCol{asc("id")}, Limit: vp(par(2))},
		},
		{
			"gorm Find by keys",
			`SELECT * FROM "users" WHERE "users"."id" IN ($1,$2) AND "users"."deleted_at" IS NULL`,
			Lookup{Table: tbl("users"), Star: true, Preds: []Pred{in("id", par(1), par(2)), isNull("deleted_at")}},
		},
		{
			"cast on parameter",
			`SELECT * FROM t WHERE id = $1::int`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("id", Value{Param: 1, Cast: "int"})}},
		},
		{
			"cast on literals, two words and pg_catalog",
			`SELECT * FROM t WHERE id = 5::pg_catalog.int8 AND u = 'x'::character varying`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("id", Value{Literal: "5", Cast: "int8"}), eq("u", Value{Literal: "x", String: true, Cast: "character varying"})}},
		},
		{
			"cast in list",
			`SELECT id::text, v::double precision AS w, n FROM t WHERE id = 1`,
			Lookup{Table: tbl("t"), Columns: []OutCol{{Column: "id", As: "id", Cast: "text"}, {Column: "v", As: "w", Cast: "double precision"}, {Column: "n", As: "n"}},
				Preds: []Pred{eq("id", num("1"))}},
		},
		{
			"any with cast",
			`SELECT * FROM t WHERE id = ANY($1::int[])`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{{Column: "id", Kind: PredAny, Value: Value{Param: 1, Cast: "int[]"}}}},
		},
		{
			"gorm Take",
			`SELECT * FROM "users" WHERE id = $1 LIMIT $2`,
			Lookup{Table: tbl("users"), Star: true, Preds: []Pred{eq("id", par(1))}, Limit: vp(par(2))},
		},
		{
			"bun literal in parentheses",
			`SELECT "a"."id", "a"."owner" FROM "accounts" AS "a" WHERE ("a"."id" = 5)`,
			Lookup{Table: tbl("accounts"), Alias: "a", Columns: cols("id", "owner"), Preds: []Pred{eq("id", num("5"))}},
		},
		{
			"sqlc",
			`SELECT id, name, bio FROM authors WHERE id = $1 LIMIT 1`,
			Lookup{Table: tbl("authors"), Columns: cols("id", "name", "bio"), Preds: []Pred{eq("id", par(1))}, Limit: vp(num("1"))},
		},
		{
			"ent",
			`SELECT "users"."id", "users"."age", "users"."name" FROM "users" WHERE "users"."id" = $1 LIMIT 2`,
			Lookup{Table: tbl("users"), Columns: cols("id", "age", "name"), Preds: []Pred{eq("id", par(1))}, Limit: vp(num("2"))},
		},
		{
			"any with schema and alias",
			`select * from public.accounts a where a.id = any($1)`,
			Lookup{Table: stbl("public", "accounts"), Alias: "a", Star: true, Preds: []Pred{anyOf("id", 1)}},
		},
		{
			"composite key",
			`SELECT * FROM t WHERE b = $2 AND a = $1`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("b", par(2)), eq("a", par(1))}},
		},
		{
			"value on the left",
			`SELECT * FROM t WHERE $1 = id`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("id", par(1))}},
		},
		{
			"negative literal on the left",
			`SELECT * FROM t WHERE -7 = id`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("id", num("-7"))}},
		},
		{
			"string literal with doubled quote",
			`SELECT * FROM t WHERE name = 'O''Brien'`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("name", str("O'Brien"))}},
		},
		{
			"E string",
			`SELECT * FROM t WHERE name = E'a\'b\\c\n\x41\101\u00e9'`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("name", str("a'b\\c\nAAé"))}},
		},
		{
			"empty string",
			`SELECT * FROM t WHERE name = ''`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("name", str(""))}},
		},
		{
			"string holding keywords and operators",
			`SELECT * FROM t WHERE name = 'x OR 1=1; DROP TABLE t; --'`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("name", str("x OR 1=1; DROP TABLE t; --"))}},
		},
		{
			"negative numbers, operator glued",
			`SELECT * FROM t WHERE a=-5 AND b = - 6 AND c = -1.5e3`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("a", num("-5")), eq("b", num("-6")), eq("c", num("-1.5e3"))}},
		},
		{
			"numbers",
			`SELECT * FROM t WHERE a IN (1, 1.5, .5, 1e10, 2.)`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{in("a", num("1"), num("1.5"), num(".5"), num("1e10"), num("2."))}},
		},
		{
			"mixed IN list",
			`SELECT * FROM t WHERE a IN ($3, 'x', -2)`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{in("a", par(3), str("x"), num("-2"))}},
		},
		{
			"IN with one value",
			`SELECT * FROM t WHERE a IN ($1)`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{in("a", par(1))}},
		},
		{
			"keywords in any case, comments and whitespace",
			"sElEcT /* c1 /* nested */ c2 */ *\n\tFrOm\r\n\"T\" -- line\nWhErE id=$1 -- end",
			Lookup{Table: tbl("T"), Star: true, Preds: []Pred{eq("id", par(1))}},
		},
		{
			"OR inside comments is a comment",
			"SELECT * FROM t WHERE id = $1 /* OR id = 2 */ -- OR 1 = 1\n",
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("id", par(1))}},
		},
		{
			"a double minus starts a comment",
			"SELECT * FROM t WHERE id = --1\n2",
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("id", num("2"))}},
		},
		{
			"trailing semicolon and empty statements",
			`SELECT * FROM t WHERE id = $1;;`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("id", par(1))}},
		},
		{
			"unquoted upper case is folded",
			`SELECT ID, Name FROM Users WHERE USERS.ID = $1`,
			Lookup{Table: tbl("users"), Columns: cols("id", "name"), Preds: []Pred{eq("id", par(1))}},
		},
		{
			"quoted identifiers keep case and unescape",
			`SELECT "Id", "we""ird" FROM "My Table" WHERE "My Table"."Id" = $1`,
			Lookup{Table: tbl("My Table"), Columns: cols("Id", `we"ird`), Preds: []Pred{eq("Id", par(1))}},
		},
		{
			"table.* without alias",
			`SELECT users.* FROM users WHERE id = $1`,
			Lookup{Table: tbl("users"), Star: true, Preds: []Pred{eq("id", par(1))}},
		},
		{
			"schema.table.* and schema-qualified columns",
			`SELECT public.users.* FROM public.users WHERE public.users.id = $1 AND users.x IS NULL`,
			Lookup{Table: stbl("public", "users"), Star: true, Preds: []Pred{eq("id", par(1)), isNull("x")}},
		},
		{
			"alias.* with AS",
			`SELECT u.* FROM users AS u WHERE u.id = $1`,
			Lookup{Table: tbl("users"), Alias: "u", Star: true, Preds: []Pred{eq("id", par(1))}},
		},
		{
			"output names with AS and bare",
			`SELECT id AS key, name "Label", bio b, x AS "from" FROM t WHERE id = $1`,
			Lookup{Table: tbl("t"), Columns: []OutCol{{Column: "id", As: "key"}, {Column: "name", As: "Label"}, {Column: "bio", As: "b"}, {Column: "x", As: "from"}},
				Preds: []Pred{eq("id", par(1))}},
		},
		{
			"AS reserved word as output name",
			`SELECT id AS select FROM t WHERE id = $1`,
			Lookup{Table: tbl("t"), Columns: []OutCol{{Column: "id", As: "select"}}, Preds: []Pred{eq("id", par(1))}},
		},
		{
			"any keyword after a dot",
			`SELECT t.select, t.end AS e FROM public.user AS t WHERE t.from = $1 ORDER BY t.order`,
			Lookup{Table: stbl("public", "user"), Alias: "t", Columns: []OutCol{{Column: "select", As: "select"}, {Column: "end", As: "e"}},
				Preds: []Pred{eq("from", par(1))}, OrderBy: []OrderCol{asc("order")}},
		},
		{
			"unreserved keywords as names",
			`SELECT name, value FROM data WHERE key = $1`,
			Lookup{Table: tbl("data"), Columns: cols("name", "value"), Preds: []Pred{eq("key", par(1))}},
		},
		{
			"nested parentheses",
			`SELECT * FROM t WHERE ((a = 1) AND ((b = 2))) AND (c IS NULL)`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("a", num("1")), eq("b", num("2")), isNull("c")}},
		},
		{
			"whole WHERE in parentheses",
			`SELECT * FROM t WHERE (a = $1 AND b = $2)`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("a", par(1)), eq("b", par(2))}},
		},
		{
			"order by several, asc and desc",
			`SELECT * FROM t WHERE a = $1 ORDER BY b ASC, t.c DESC, d`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("a", par(1))}, OrderBy: []OrderCol{asc("b"), desc("c"), asc("d")}},
		},
		{
			"order by output name resolves to its column",
			`SELECT a AS b, b AS a FROM t WHERE a = $1 ORDER BY a, t.a`,
			Lookup{Table: tbl("t"), Columns: []OutCol{{Column: "a", As: "b"}, {Column: "b", As: "a"}}, Preds: []Pred{eq("a", par(1))},
				OrderBy: []OrderCol{asc("b"), asc("a")}},
		},
		{
			"limit and offset",
			`SELECT * FROM t WHERE a = $1 LIMIT 10 OFFSET $2`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("a", par(1))}, Limit: vp(num("10")), Offset: vp(par(2))},
		},
		{
			"offset before limit",
			`SELECT * FROM t WHERE a = $1 OFFSET 0 LIMIT 1`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("a", par(1))}, Limit: vp(num("1")), Offset: vp(num("0"))},
		},
		{
			"fetch first n rows only",
			`SELECT * FROM t WHERE a = $1 OFFSET 0 ROWS FETCH FIRST 3 ROWS ONLY`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("a", par(1))}, Limit: vp(num("3")), Offset: vp(num("0"))},
		},
		{
			"fetch next row only",
			`SELECT * FROM t WHERE a = $1 FETCH NEXT ROW ONLY`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("a", par(1))}, Limit: vp(num("1"))},
		},
		{
			"fetch first $n",
			`SELECT * FROM t WHERE a = $1 FETCH FIRST $2 ROW ONLY`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("a", par(1))}, Limit: vp(par(2))},
		},
		{
			"largest parameter",
			`SELECT * FROM t WHERE a = $65535`,
			Lookup{Table: tbl("t"), Star: true, Preds: []Pred{eq("a", par(65535))}},
		},
		{
			"identifier cut to 63 bytes",
			`SELECT * FROM ` + strings.Repeat("x", 70) + ` WHERE id = $1`,
			Lookup{Table: tbl(strings.Repeat("x", 63)), Star: true, Preds: []Pred{eq("id", par(1))}},
		},
		{
			"identifier with dollar and digits",
			`SELECT a$1, _b2 FROM t$x WHERE a$1 = $1`,
			Lookup{Table: tbl("t$x"), Columns: cols("a$1", "_b2"), Preds: []Pred{eq("a$1", par(1))}},
		},
		{
			"quoted non-ASCII identifiers",
			`SELECT "ä" FROM "Über" WHERE "Ä" = $1`,
			Lookup{Table: tbl("Über"), Columns: cols("ä"), Preds: []Pred{eq("Ä", par(1))}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := lookupOf(t, tc.sql)
			if got == nil {
				t.Fatalf("Classify(%q): no Lookup", tc.sql)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("Classify(%q).Lookup =\n %+v\nwant\n %+v", tc.sql, *got, tc.want)
			}
			st := Classify(tc.sql).Statements[0]
			if st.Kind != KindRead || st.Locking || st.AllTables || len(st.Tables) != 0 {
				t.Errorf("statement = %+v, want a plain read", st)
			}
			// The canonical rendering gives the same Lookup back.
			back := lookupOf(t, got.String())
			if back == nil || !reflect.DeepEqual(*back, *got) {
				t.Errorf("round trip of %q through %q gave %+v", tc.sql, got.String(), back)
			}
		})
	}
}

// rejected are texts that look like lookups but are not, or cannot be told
// apart from ones that are not: each must give no Lookup.
var rejected = []struct{ name, sql string }{
	{"or", `SELECT * FROM t WHERE id = 1 OR id = 2`},
	{"or inside parentheses", `SELECT * FROM t WHERE (id = 1 OR id = 2)`},
	{"or after and", `SELECT * FROM t WHERE a = 1 AND b = 2 OR c = 3`},
	{"not", `SELECT * FROM t WHERE NOT id = 1`},
	{"not in", `SELECT * FROM t WHERE id NOT IN (1, 2)`},
	{"not equal", `SELECT * FROM t WHERE id <> 1`},
	{"not equal bang", `SELECT * FROM t WHERE id != 1`},
	{"less than", `SELECT * FROM t WHERE id < 1`},
	{"greater or equal", `SELECT * FROM t WHERE id >= 1`},
	{"double equals", `SELECT * FROM t WHERE id == 1`},
	{"like", `SELECT * FROM t WHERE name LIKE 'a%'`},
	{"ilike", `SELECT * FROM t WHERE name ILIKE $1`},
	{"between", `SELECT * FROM t WHERE id BETWEEN 1 AND 2`},
	{"is not null", `SELECT * FROM t WHERE id = 1 AND deleted_at IS NOT NULL`},
	{"isnull", `SELECT * FROM t WHERE deleted_at ISNULL`},
	{"is true", `SELECT * FROM t WHERE id = 1 AND active IS TRUE`},
	{"is distinct from", `SELECT * FROM t WHERE id IS DISTINCT FROM 1`},
	{"true value", `SELECT * FROM t WHERE active = TRUE`},
	{"false value", `SELECT * FROM t WHERE id = 1 AND active = false`},
	{"null value", `SELECT * FROM t WHERE id = NULL`},
	{"boolean column alone", `SELECT * FROM t WHERE active`},
	{"cast on column", `SELECT * FROM t WHERE id::text = $1`},
	{"cast function", `SELECT * FROM t WHERE id = CAST($1 AS int)`},
	{"typed literal", `SELECT * FROM t WHERE d = date '2020-01-01'`},
	{"collate", `SELECT * FROM t WHERE name = $1 COLLATE "C"`},
	{"function on column", `SELECT * FROM t WHERE lower(name) = $1`},
	{"function as value", `SELECT * FROM t WHERE id = abs($1)`},
	{"arithmetic", `SELECT * FROM t WHERE id = $1 + 1`},
	{"arithmetic on column", `SELECT * FROM t WHERE id + 0 = $1`},
	{"unary plus", `SELECT * FROM t WHERE id = +1`},
	{"double negation", `SELECT * FROM t WHERE id = - -1`},
	{"negated parameter", `SELECT * FROM t WHERE id = -$1`},
	{"column compared to column", `SELECT * FROM t WHERE a = b`},
	{"parenthesised value", `SELECT * FROM t WHERE id = ($1)`},
	{"parenthesised column", `SELECT * FROM t WHERE (id) = $1`},
	{"row constructor", `SELECT * FROM t WHERE (a, b) = ($1, $2)`},
	{"row constructor in", `SELECT * FROM t WHERE (a, b) IN (($1, $2))`},
	{"subselect in where", `SELECT * FROM t WHERE id = (SELECT 1)`},
	{"in subselect", `SELECT * FROM t WHERE id IN (SELECT id FROM u)`},
	{"exists", `SELECT * FROM t WHERE EXISTS (SELECT 1)`},
	{"empty in list", `SELECT * FROM t WHERE id IN ()`},
	{"any of literal array", `SELECT * FROM t WHERE id = ANY('{1,2}')`},
	{"any of array constructor", `SELECT * FROM t WHERE id = ANY(ARRAY[1,2])`},
	{"cast with a type modifier", `SELECT * FROM t WHERE id = $1::varchar(3)`},
	{"any with a cast that is not an array", `SELECT * FROM t WHERE id = ANY($1::int)`},
	{"double cast", `SELECT * FROM t WHERE id = $1::int::text`},
	{"column NOT before IN", `SELECT * FROM t WHERE t.not IN (1, 2)`},
	{"column nulls before FIRST", `SELECT t.nulls first FROM t WHERE id = 1`},
	{"cast of a negated number", `SELECT * FROM t WHERE id = -5::int`},
	{"qualified keyword type", `SELECT * FROM t WHERE id = $1::pg_catalog.bigint`},
	{"qualified two-word type", `SELECT * FROM t WHERE id = $1::pg_catalog.double precision`},
	{"char has an implied length", `SELECT * FROM t WHERE id = $1::char`},
	{"bit has an implied length", `SELECT * FROM t WHERE id = $1::bit`},
	{"cast to a qualified user type", `SELECT * FROM t WHERE id = $1::myschema.mytype`},
	{"some", `SELECT * FROM t WHERE id = SOME($1)`},
	{"all", `SELECT * FROM t WHERE id = ALL($1)`},
	{"array subscript", `SELECT * FROM t WHERE id = $1[1]`},
	{"dollar-quoted string", `SELECT * FROM t WHERE name = $$x$$`},
	{"tagged dollar-quoted string", `SELECT * FROM t WHERE name = $q$x$q$`},
	{"unicode string", `SELECT * FROM t WHERE name = U&'\0041'`},
	{"unicode identifier", `SELECT * FROM t WHERE U&"id" = 1`},
	{"national string", `SELECT * FROM t WHERE name = N'x'`},
	{"bit string", `SELECT * FROM t WHERE bits = B'101'`},
	{"hex string", `SELECT * FROM t WHERE bits = X'1F'`},
	{"backslash in plain string", `SELECT * FROM t WHERE name = 'a\'`},
	{"continued string", "SELECT * FROM t WHERE name = 'a'\n'b'"},
	{"adjacent strings", `SELECT * FROM t WHERE name = 'a' 'b'`},
	{"E string with zero byte", `SELECT * FROM t WHERE name = E'\0'`},
	{"E string with invalid UTF-8", `SELECT * FROM t WHERE name = E'\xff'`},
	{"E string with surrogate", `SELECT * FROM t WHERE name = E'\uD800'`},
	{"hex number", `SELECT * FROM t WHERE id = 0x1F`},
	{"octal number", `SELECT * FROM t WHERE id = 0o17`},
	{"number with separators", `SELECT * FROM t WHERE id = 1_000`},
	{"number with trailing junk", `SELECT * FROM t WHERE id = 1and x = 2`},
	{"parameter with trailing junk", `SELECT * FROM t WHERE id = $1abc`},
	{"parameter zero", `SELECT * FROM t WHERE id = $0`},
	{"parameter too large", `SELECT * FROM t WHERE id = $65536`},
	{"join", `SELECT * FROM t JOIN u ON u.id = t.id WHERE t.id = 1`},
	{"left join", `SELECT t.* FROM t LEFT JOIN u ON true WHERE t.id = 1`},
	{"comma join", `SELECT * FROM t, u WHERE t.id = 1`},
	{"natural join", `SELECT * FROM t NATURAL JOIN u WHERE id = 1`},
	{"lateral", `SELECT * FROM t, LATERAL (SELECT 1) x WHERE id = 1`},
	{"function in from", `SELECT * FROM generate_series(1, 3) g WHERE g = 1`},
	{"subselect in from", `SELECT * FROM (SELECT * FROM t) s WHERE id = 1`},
	{"only", `SELECT * FROM ONLY t WHERE id = 1`},
	{"inheritance star", `SELECT * FROM t * WHERE id = 1`},
	{"tablesample", `SELECT * FROM t TABLESAMPLE SYSTEM (10) WHERE id = 1`},
	{"alias with column names", `SELECT * FROM t AS x(a, b) WHERE a = 1`},
	{"catalog-qualified table", `SELECT * FROM db.public.t WHERE id = 1`},
	{"no where", `SELECT * FROM t`},
	{"no from", `SELECT 1`},
	{"group by", `SELECT id FROM t WHERE id = 1 GROUP BY id`},
	{"having", `SELECT id FROM t WHERE id = 1 HAVING true`},
	{"window", `SELECT id FROM t WHERE id = 1 WINDOW w AS ()`},
	{"union", `SELECT * FROM t WHERE id = 1 UNION SELECT * FROM t WHERE id = 2`},
	{"union all", `SELECT * FROM t WHERE id = 1 UNION ALL SELECT * FROM u WHERE id = 1`},
	{"intersect", `SELECT * FROM t WHERE id = 1 INTERSECT SELECT * FROM t WHERE id = 1`},
	{"except", `SELECT * FROM t WHERE id = 1 EXCEPT SELECT * FROM t WHERE id = 2`},
	{"with", `WITH x AS (SELECT 1) SELECT * FROM t WHERE id = 1`},
	{"parenthesised select", `(SELECT * FROM t WHERE id = 1)`},
	{"for update", `SELECT * FROM t WHERE id = 1 FOR UPDATE`},
	{"for no key update", `SELECT * FROM t WHERE id = 1 FOR NO KEY UPDATE`},
	{"for share", `SELECT * FROM t WHERE id = 1 FOR SHARE`},
	{"for key share", `SELECT * FROM t WHERE id = 1 FOR KEY SHARE`},
	{"for update before limit", `SELECT * FROM t WHERE id = 1 FOR UPDATE LIMIT 1`},
	{"into", `SELECT * INTO u FROM t WHERE id = 1`},
	{"distinct", `SELECT DISTINCT id FROM t WHERE id = 1`},
	{"distinct on", `SELECT DISTINCT ON (id) * FROM t WHERE id = 1`},
	{"all keyword", `SELECT ALL id FROM t WHERE id = 1`},
	{"expression in list", `SELECT id + 1 FROM t WHERE id = 1`},
	{"function in list", `SELECT count(*) FROM t WHERE id = 1`},
	{"literal in list", `SELECT 1 FROM t WHERE id = 1`},
	{"string in list", `SELECT 'x' FROM t WHERE id = 1`},
	{"array cast in list", `SELECT id::text[] FROM t WHERE id = 1`},
	{"cast with a modifier in list", `SELECT id::varchar(3) FROM t WHERE id = 1`},
	{"double cast in list", `SELECT id::text::int FROM t WHERE id = 1`},
	{"order by a cast output column", `SELECT id, v::text FROM t WHERE id IN (1, 2) ORDER BY v`},
	{"subselect in list", `SELECT (SELECT 1) FROM t WHERE id = 1`},
	{"star and column", `SELECT *, id FROM t WHERE id = 1`},
	{"column and star", `SELECT id, * FROM t WHERE id = 1`},
	{"two stars", `SELECT t.*, t.* FROM t WHERE id = 1`},
	{"reserved word as column", `SELECT user FROM t WHERE id = 1`},
	{"current_user as column", `SELECT current_user FROM t WHERE id = 1`},
	{"column-name keyword as column", `SELECT time FROM t WHERE id = 1`},
	{"keyword as bare label", `SELECT id name FROM t WHERE id = 1`},
	{"unquoted non-ASCII table", `SELECT * FROM Über WHERE id = 1`},
	{"unquoted non-ASCII column", `SELECT * FROM t WHERE Ä = 1`},
	{"unquoted non-ASCII label", `SELECT id AS é FROM t WHERE id = 1`},
	{"two bare labels", `SELECT id a b FROM t WHERE id = 1`},
	{"schema.table mismatch in where", `SELECT * FROM public.t WHERE other.t.id = 1`},
	{"schema-qualified column of unqualified table", `SELECT * FROM t WHERE public.t.id = 1`},
	{"other table qualifier", `SELECT * FROM t WHERE u.id = 1`},
	{"table name when aliased", `SELECT * FROM users u WHERE users.id = 1`},
	{"alias.* mismatch", `SELECT x.* FROM t WHERE id = 1`},
	{"table.* when aliased", `SELECT t.* FROM t AS a WHERE id = 1`},
	{"column of other table in list", `SELECT u.id FROM t WHERE id = 1`},
	{"four-part column", `SELECT * FROM s.t WHERE c.s.t.id = 1`},
	{"star in where", `SELECT * FROM t WHERE t.* = 1`},
	{"nulls first", `SELECT * FROM t WHERE id = 1 ORDER BY id NULLS FIRST`},
	{"nulls last", `SELECT * FROM t WHERE id = 1 ORDER BY id DESC NULLS LAST`},
	{"order by position", `SELECT * FROM t WHERE id = 1 ORDER BY 1`},
	{"order by expression", `SELECT * FROM t WHERE id = 1 ORDER BY id + 1`},
	{"order by using", `SELECT * FROM t WHERE id = 1 ORDER BY id USING <`},
	{"order by collate", `SELECT * FROM t WHERE id = 1 ORDER BY name COLLATE "C"`},
	{"order by ambiguous output name", `SELECT a AS x, b AS x FROM t WHERE id = 1 ORDER BY x`},
	{"limit all", `SELECT * FROM t WHERE id = 1 LIMIT ALL`},
	{"limit expression", `SELECT * FROM t WHERE id = 1 LIMIT 1 + 1`},
	{"limit negative", `SELECT * FROM t WHERE id = 1 LIMIT -1`},
	{"limit fraction", `SELECT * FROM t WHERE id = 1 LIMIT 1.5`},
	{"limit string", `SELECT * FROM t WHERE id = 1 LIMIT '1'`},
	{"limit comma", `SELECT * FROM t WHERE id = 1 LIMIT 1, 2`},
	{"two limits", `SELECT * FROM t WHERE id = 1 LIMIT 1 LIMIT 2`},
	{"limit and fetch", `SELECT * FROM t WHERE id = 1 LIMIT 1 FETCH FIRST 1 ROW ONLY`},
	{"fetch with ties", `SELECT * FROM t WHERE id = 1 ORDER BY id FETCH FIRST 1 ROW WITH TIES`},
	{"two statements", `SELECT * FROM t WHERE id = 1; SELECT * FROM t WHERE id = 2`},
	{"lookup then write", `SELECT * FROM t WHERE id = 1; DELETE FROM t`},
	{"comment hides nothing: OR after comment", `SELECT * FROM t WHERE id = 1 /* AND */ OR id = 2`},
	{"line comment then OR", "SELECT * FROM t WHERE id = 1 -- x\nOR id = 2"},
	{"OR in nested comment is a comment but OR after is not", `SELECT * FROM t WHERE id = 1 /* /* */ OR */ OR id = 2`},
	{"string with keywords then OR", `SELECT * FROM t WHERE name = 'a AND b' OR id = 1`},
	{"unterminated string", `SELECT * FROM t WHERE name = 'abc`},
	{"unterminated comment", `SELECT * FROM t WHERE id = 1 /* x`},
	{"unterminated quoted identifier", `SELECT * FROM "t WHERE id = 1`},
	{"zero-length identifier", `SELECT * FROM "" WHERE id = 1`},
	{"unbalanced parenthesis", `SELECT * FROM t WHERE (id = 1`},
	{"extra closing parenthesis", `SELECT * FROM t WHERE id = 1)`},
	{"question mark placeholder", `SELECT * FROM t WHERE id = ?`},
	{"named placeholder", `SELECT * FROM t WHERE id = :id`},
	{"zero byte", "SELECT * FROM t WHERE id = 1\x00"},
	{"zero byte in comment", "SELECT * FROM t WHERE id = 1 -- \x00"},
	{"invalid UTF-8 in comment", "SELECT * FROM t WHERE id = 1 -- \xff"},
	{"trailing junk", `SELECT * FROM t WHERE id = 1 garbage`},
	{"column named update", `SELECT update FROM t WHERE id = 1`},
	{"explain", `EXPLAIN SELECT * FROM t WHERE id = 1`},
	{"explain analyze", `EXPLAIN ANALYZE SELECT * FROM t WHERE id = 1`},
	{"table command", `TABLE t`},
	{"values", `VALUES (1)`},
	{"too deep parentheses", `SELECT * FROM t WHERE ` + strings.Repeat("(", 40) + `id = 1` + strings.Repeat(")", 40)},
	{"where current of", `SELECT * FROM t WHERE CURRENT OF c`},
	{"and without right side", `SELECT * FROM t WHERE id = 1 AND`},
	{"empty parentheses", `SELECT * FROM t WHERE () AND id = 1`},
	{"limit parameter with cast", `SELECT * FROM t WHERE id = 1 LIMIT $1::int`},
	{"offset fraction", `SELECT * FROM t WHERE id = 1 OFFSET 0.5`},
}

func TestLookupRejected(t *testing.T) {
	if len(rejected) < 80 {
		t.Fatalf("only %d rejected cases", len(rejected))
	}
	seen := map[string]bool{}
	for _, tc := range rejected {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			c := Classify(tc.sql)
			for _, st := range c.Statements {
				if st.Lookup != nil {
					t.Fatalf("Classify(%q) gave Lookup %+v (%s)", tc.sql, *st.Lookup, st.Lookup)
				}
			}
		})
	}
}

// TestRenderEveryByteRoundTrips: a lookup whose string constant holds any
// one byte (written with an E” escape, as an application may) renders to
// SQL that classifies back to the same lookup, in every position of the
// constant.
func TestRenderEveryByteRoundTrips(t *testing.T) {
	for c := 1; c < 256; c++ {
		for _, lit := range []string{fmt.Sprintf(`\x%02X`, c), fmt.Sprintf(`a\x%02Xb`, c), fmt.Sprintf(`\x%02X\\`, c)} {
			sql := "SELECT * FROM t WHERE k = E'" + lit + "'"
			l := Classify(sql).Statements[0].Lookup
			if l == nil {
				continue // not a lookup (a byte no text may hold, say)
			}
			back := Classify(l.String()).Statements[0].Lookup
			if !reflect.DeepEqual(l, back) {
				t.Fatalf("byte %#x: %q renders as %q, which gives %+v", c, sql, l.String(), back)
			}
		}
	}
}
