-- Hand-written cases of the recognizer's differential test (differential_test.go).
-- Each case starts with a line "-- case: description"; the lines up to the next
-- such line are the statement text (newline-separated, final newline removed).
-- Cases may be valid or invalid SQL, lookups or not: the test compares the
-- recognizer with PostgreSQL's grammar on every one of them.

-- case: GORM First with soft delete
SELECT * FROM "users" WHERE "users"."id" = $1 AND "users"."deleted_at" IS NULL ORDER BY "users"."id" LIMIT $2
-- case: GORM Find by IN
SELECT * FROM "users" WHERE "users"."id" IN ($1,$2) AND "users"."deleted_at" IS NULL
-- case: GORM Take
SELECT * FROM "users" WHERE "users"."id" = $1 AND "users"."deleted_at" IS NULL LIMIT $2
-- case: GORM insert
INSERT INTO "users" ("name","email") VALUES ($1,$2) RETURNING "id"
-- case: GORM update
UPDATE "users" SET "name"=$1,"updated_at"=$2 WHERE "users"."deleted_at" IS NULL AND "id" = $3
-- case: GORM soft delete
UPDATE "users" SET "deleted_at"=$1 WHERE "users"."id" = $2 AND "users"."deleted_at" IS NULL
-- case: bun inlined literal
SELECT "a"."id", "a"."owner" FROM "accounts" AS "a" WHERE ("a"."id" = 5)
-- case: bun string literal
SELECT "a"."id", "a"."owner" FROM "accounts" AS "a" WHERE ("a"."owner" = 'O''Brien')
-- case: ent Only
SELECT "users"."id", "users"."name", "users"."age" FROM "users" WHERE "users"."id" = $1 LIMIT 2
-- case: sqlc with name comment
-- name: GetAuthor :one
SELECT id, name, bio FROM authors
WHERE id = $1 LIMIT 1
-- case: sqlx
SELECT id, name, email FROM users WHERE id = $1
-- case: sqlboiler
select "users".* from "users" where "id"=$1
-- case: plain
SELECT * FROM users WHERE id = $1
-- case: lower case, no spaces
select * from users where id=$1
-- case: alias star
SELECT u.* FROM users u WHERE u.id = $1
-- case: AS alias star
SELECT u.* FROM users AS u WHERE u.id = $1
-- case: schema-qualified everything
SELECT public.users.id FROM public.users WHERE public.users.id = $1
-- case: schema-qualified table, table qualifier
SELECT users.id FROM public.users WHERE users.id = $1
-- case: schema-qualified qualifier, unqualified FROM (needs search_path)
SELECT public.users.id FROM users WHERE id = $1
-- case: output aliases and ORDER BY output name
SELECT id AS "ID", name n FROM users WHERE id IN ($1, $2, 3, '4') ORDER BY "ID" DESC LIMIT 10 OFFSET $3
-- case: reversed equality
SELECT * FROM users WHERE 5 = id
-- case: reversed param
SELECT * FROM users WHERE $1 = users.id
-- case: negative
SELECT * FROM users WHERE id = -5
-- case: negative with space
SELECT * FROM users WHERE id = - 5
-- case: glued =-
SELECT * FROM users WHERE id=-5
-- case: negative with comment
SELECT * FROM users WHERE id = -/* x */5
-- case: negative reversed
SELECT * FROM users WHERE -5 = id
-- case: double minus is a comment
SELECT * FROM users WHERE id = --5
 7
-- case: unary minus of parameter
SELECT * FROM users WHERE id = -$1
-- case: FETCH FIRST ROW ONLY
SELECT * FROM t WHERE id = $1 FETCH FIRST ROW ONLY
-- case: FETCH NEXT n ROWS ONLY then OFFSET
SELECT * FROM t WHERE id = $1 FETCH NEXT 5 ROWS ONLY OFFSET 2 ROWS
-- case: OFFSET then FETCH
SELECT * FROM t WHERE id = $1 OFFSET 2 ROWS FETCH FIRST 5 ROWS ONLY
-- case: OFFSET then LIMIT
SELECT * FROM t WHERE id = $1 OFFSET 1 LIMIT 2
-- case: FETCH FIRST $n
SELECT * FROM t WHERE id = 1 FETCH FIRST $1 ROWS ONLY
-- case: OFFSET $n ROWS
SELECT * FROM t WHERE id = 1 OFFSET $1 ROWS
-- case: FETCH without count, ROWS
SELECT * FROM t WHERE id = 1 FETCH FIRST ROWS ONLY
-- case: FETCH FIRST 0
SELECT * FROM t WHERE id = 1 FETCH FIRST 0 ROWS ONLY
-- case: LIMIT 0
SELECT * FROM t WHERE id = 1 LIMIT 0
-- case: LIMIT 007
SELECT * FROM t WHERE id = 1 LIMIT 007
-- case: LIMIT big
SELECT * FROM t WHERE id = 1 LIMIT 99999999999
-- case: nested parentheses
SELECT * FROM t WHERE ((id = 1) AND (x = 2))
-- case: deep parentheses
SELECT * FROM t WHERE ((((((id = 1))))))
-- case: parentheses right
SELECT * FROM t WHERE a = 1 AND (b = 2 AND (c = 3 AND d = 4))
-- case: trailing semicolon
SELECT * FROM t WHERE id = 1;
-- case: trailing semicolons and comment
SELECT * FROM t WHERE id = 1 ;; ; -- done
-- case: trailing line comment
SELECT * FROM t WHERE id = 1 -- trailing
-- case: leading block comment
/* leading */ SELECT * FROM t WHERE id = 1
-- case: leading line comment
-- leading
SELECT * FROM t WHERE id = 1
-- case: comment between every token
SELECT/**/*/**/FROM/**/t/**/WHERE/**/id/**/=/**/1
-- case: line comments between tokens
SELECT --a
 * --b
 FROM --c
 t --d
 WHERE --e
 id --f
 = --g
 1 --h
-- case: label FROM after AS
SELECT id AS from FROM t WHERE id = 1
-- case: label AS after AS
SELECT id AS as FROM t WHERE id = 1
-- case: label select after AS
SELECT id AS select, name AS where FROM t WHERE id = 1
-- case: swapped aliases, ORDER BY resolves to output
SELECT a AS b, b AS a FROM t WHERE a = 1 ORDER BY a
-- case: swapped aliases, qualified ORDER BY is the table column
SELECT a AS b, b AS a FROM t WHERE a = 1 ORDER BY t.a
-- case: ambiguous ORDER BY
SELECT a AS x, b AS x FROM t WHERE a = 1 ORDER BY x
-- case: same column twice, ORDER BY not ambiguous
SELECT a AS x, a AS x FROM t WHERE a = 1 ORDER BY x
-- case: ORDER BY output name with star
SELECT * FROM t WHERE a = 1 ORDER BY b DESC, a ASC
-- case: bare label
SELECT a x FROM t WHERE a = 1
-- case: bare quoted label
SELECT a "X y" FROM t WHERE a = 1
-- case: bare keyword label (PostgreSQL 14+)
SELECT a action FROM t WHERE a = 1
-- case: bare reserved keyword label
SELECT a from FROM t WHERE a = 1
-- case: long unquoted table name truncated
SELECT * FROM aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa WHERE id = 1
-- case: long quoted table name truncated
SELECT * FROM "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" WHERE id = 1
-- case: long name with multibyte char at the cut
SELECT * FROM "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccé" WHERE id = 1
-- case: long column and alias
SELECT dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd AS eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee FROM t WHERE dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd = 1
-- case: quoted table case kept
SELECT * FROM "Users" WHERE "ID" = 1
-- case: unquoted table case folded
SELECT * FROM Users WHERE ID = 1
-- case: quoted with escaped quote
SELECT "a""b" FROM "x""y" WHERE "a""b" = 1
-- case: zero-length quoted identifier
SELECT * FROM "" WHERE id = 1
-- case: param with leading zeros
SELECT * FROM t WHERE "id" = $01
-- case: param $0
SELECT * FROM t WHERE id = $0
-- case: param 65535
SELECT * FROM t WHERE id = $65535
-- case: param 65536
SELECT * FROM t WHERE id = $65536
-- case: param huge
SELECT * FROM t WHERE id = $99999999999999999999
-- case: param trailing junk
SELECT * FROM t WHERE id = $1abc
-- case: exponent
SELECT * FROM t WHERE id = 1e3
-- case: fraction
SELECT * FROM t WHERE id = 1.5
-- case: leading dot
SELECT * FROM t WHERE id = .5
-- case: trailing dot
SELECT * FROM t WHERE id = 5.
-- case: beyond int4
SELECT * FROM t WHERE id = 2147483648
-- case: beyond int8
SELECT * FROM t WHERE id = 99999999999999999999
-- case: minus zero
SELECT * FROM t WHERE id = -0
-- case: numeric with trailing junk
SELECT * FROM t WHERE id = 5abc
-- case: hex
SELECT * FROM t WHERE id = 0x1F
-- case: octal
SELECT * FROM t WHERE id = 0o17
-- case: binary
SELECT * FROM t WHERE id = 0b101
-- case: underscores
SELECT * FROM t WHERE id = 1_000
-- case: number then dot dot
SELECT * FROM t WHERE id = 1..2
-- case: string with doubled quote
SELECT * FROM t WHERE id = 'it''s'
-- case: empty string
SELECT * FROM t WHERE id = ''
-- case: string with keywords and comment starts
SELECT * FROM t WHERE id = 'x OR 1=1 -- /* ; DELETE FROM t'
-- case: string with double quote
SELECT * FROM t WHERE id = '"q"'
-- case: string with semicolon then statement
SELECT * FROM t WHERE id = 'a;b'; DELETE FROM t
-- case: E string with escaped quote
SELECT * FROM t WHERE id = E'it\'s'
-- case: E string injection-looking
SELECT * FROM t WHERE id = E'a\' OR 1=1 --'
-- case: standard string with backslash quote (standard_conforming_strings)
SELECT * FROM t WHERE id = 'a\' OR 1=1 --'
-- case: E string escapes
SELECT * FROM t WHERE id = E'\n\t\b\f\r\x41\101\u00e9\U0001F600\q'
-- case: E string \x without hex
SELECT * FROM t WHERE id = E'\xZ'
-- case: E string octal 400
SELECT * FROM t WHERE id = E'\400'
-- case: E string zero byte
SELECT * FROM t WHERE id = E'\0'
-- case: E string invalid UTF-8
SELECT * FROM t WHERE id = E'\xff'
-- case: E string surrogate pair
SELECT * FROM t WHERE id = E'\uD83D\uDE00'
-- case: E string lone surrogate
SELECT * FROM t WHERE id = E'\uD800'
-- case: E string short unicode
SELECT * FROM t WHERE id = E'\u00'
-- case: lower-case e string
SELECT * FROM t WHERE id = e'x'
-- case: E string doubled quote
SELECT * FROM t WHERE id = E'a''b'
-- case: string continuation over newline
SELECT * FROM t WHERE id = 'a'
'b'
-- case: string continuation with comment
SELECT * FROM t WHERE id = 'a' -- c
'b'
-- case: adjacent strings on one line
SELECT * FROM t WHERE id = 'a' 'b'
-- case: dollar quoted
SELECT * FROM t WHERE id = $$5$$
-- case: tagged dollar quote
SELECT * FROM t WHERE id = $a$5$a$
-- case: U& string
SELECT * FROM t WHERE id = U&'\0041'
-- case: national string
SELECT * FROM t WHERE id = N'5'
-- case: bit string
SELECT * FROM t WHERE id = B'101'
-- case: hex string
SELECT * FROM t WHERE id = X'1F'
-- case: IS NULL
SELECT * FROM t WHERE id IS NULL
-- case: ISNULL
SELECT * FROM t WHERE id ISNULL
-- case: IS NOT NULL
SELECT * FROM t WHERE id IS NOT NULL
-- case: NOTNULL
SELECT * FROM t WHERE id NOTNULL
-- case: = ANY($1)
SELECT * FROM t WHERE id = ANY($1)
-- case: = any ( $1 )
SELECT * FROM t WHERE id = any ( $1 )
-- case: = SOME($1)
SELECT * FROM t WHERE id = SOME($1)
-- case: = ANY(array)
SELECT * FROM t WHERE id = ANY(ARRAY[1,2])
-- case: = ANY($1::int[])
SELECT * FROM t WHERE id = ANY($1::int[])
-- case: = ALL($1)
SELECT * FROM t WHERE id = ALL($1)
-- case: <> ANY($1)
SELECT * FROM t WHERE id <> ANY($1)
-- case: = ANY(subquery)
SELECT * FROM t WHERE id = ANY(SELECT 1)
-- case: IN one param
SELECT * FROM t WHERE id IN ($1)
-- case: IN empty
SELECT * FROM t WHERE id IN ()
-- case: IN trailing comma
SELECT * FROM t WHERE id IN (1,)
-- case: IN nested parens
SELECT * FROM t WHERE id IN ((1))
-- case: IN subquery
SELECT * FROM t WHERE id IN (SELECT 1)
-- case: NOT IN
SELECT * FROM t WHERE id NOT IN (1, 2)
-- case: two preds
SELECT * FROM t WHERE id = 1 AND id = 2
-- case: parenthesised value
SELECT * FROM t WHERE id = (5)
-- case: parenthesised column
SELECT * FROM t WHERE (id) = 5
-- case: unary plus
SELECT * FROM t WHERE id = +5
-- case: cast
SELECT * FROM t WHERE id = $1::int
-- case: CAST
SELECT * FROM t WHERE id = CAST($1 AS int)
-- case: typed literal
SELECT * FROM t WHERE id = int '5'
-- case: COLLATE
SELECT * FROM t WHERE id = 5 COLLATE "C"
-- case: OPERATOR()
SELECT * FROM t WHERE id OPERATOR(pg_catalog.=) 5
-- case: AT TIME ZONE
SELECT * FROM t WHERE id = 5 AT TIME ZONE 'UTC'
-- case: IS NULL after equality
SELECT * FROM t WHERE id = 1 IS NULL
-- case: NOT
SELECT * FROM t WHERE NOT id = 1
-- case: AND NOT
SELECT * FROM t WHERE id = 1 AND NOT x = 2
-- case: OR
SELECT * FROM t WHERE id = 1 OR 1=1
-- case: OR string
SELECT * FROM t WHERE id = '1' OR '1'='1'
-- case: OR after line comment
SELECT * FROM t WHERE id = 1 -- c
 OR 1=1
-- case: OR after line comment ending in CR
SELECT * FROM t WHERE id = 1 -- c OR 1=1
-- case: OR inside block comment
SELECT * FROM t WHERE id = 1 /* OR 1=1 */
-- case: OR inside nested block comment
SELECT * FROM t WHERE id = 1 /* a /* b */ OR 1=1 */
-- case: unterminated nested comment
SELECT * FROM t WHERE id = 1 /* a /* b */ OR 1=1
-- case: OR in parentheses
SELECT * FROM t WHERE id = 1 AND (x = 2 OR y = 3)
-- case: OR outside parentheses
SELECT * FROM t WHERE (id = 1 AND x = 2) OR y = 3
-- case: AND AND
SELECT * FROM t WHERE id = 1 AND AND x = 2
-- case: dangling AND
SELECT * FROM t WHERE id = 1 AND
-- case: boolean column
SELECT * FROM t WHERE active
-- case: equals TRUE
SELECT * FROM t WHERE active = TRUE
-- case: equals NULL
SELECT * FROM t WHERE id = NULL
-- case: column = column
SELECT * FROM t WHERE id = other
-- case: function of column
SELECT * FROM t WHERE lower(email) = 'a'
-- case: column cast
SELECT * FROM t WHERE id::text = '5'
-- case: row comparison
SELECT * FROM t WHERE (a, b) = (1, 2)
-- case: ROW comparison
SELECT * FROM t WHERE ROW(a) = ROW(1)
-- case: EXISTS
SELECT * FROM t WHERE EXISTS (SELECT 1)
-- case: scalar subquery
SELECT * FROM t WHERE id = (SELECT 1)
-- case: BETWEEN
SELECT * FROM t WHERE id BETWEEN 1 AND 2
-- case: LIKE
SELECT * FROM t WHERE id LIKE 'a'
-- case: less than
SELECT * FROM t WHERE id < 5
-- case: == operator
SELECT * FROM t WHERE id == 5
-- case: => token
SELECT * FROM t WHERE id => 5
-- case: no WHERE
SELECT * FROM t
-- case: WHERE TRUE
SELECT * FROM t WHERE TRUE
-- case: ONLY
SELECT * FROM ONLY t WHERE id = 1
-- case: ONLY in parentheses
SELECT * FROM ONLY (t) WHERE id = 1
-- case: inheritance star
SELECT * FROM t * WHERE id = 1
-- case: TABLESAMPLE
SELECT * FROM t TABLESAMPLE SYSTEM (1) WHERE id = 1
-- case: column aliases
SELECT * FROM t AS u(a, b) WHERE a = 1
-- case: comma join
SELECT t.* FROM t, u WHERE t.id = 1
-- case: join
SELECT t.* FROM t JOIN u ON true WHERE t.id = 1
-- case: LATERAL
SELECT * FROM LATERAL (SELECT 1 AS id) s WHERE id = 1
-- case: subquery
SELECT * FROM (SELECT * FROM t) s WHERE id = 1
-- case: function in FROM
SELECT * FROM generate_series(1, 3) id WHERE id = 1
-- case: parenthesised table
SELECT * FROM (t) WHERE id = 1
-- case: catalog-qualified
SELECT * FROM db.public.t WHERE id = 1
-- case: four-part name
SELECT * FROM a.b.c.d WHERE id = 1
-- case: unquoted non-ASCII table
SELECT * FROM tëst WHERE id = 1
-- case: quoted non-ASCII table
SELECT * FROM "tëst" WHERE "ïd" = 1
-- case: unreserved keyword alias
SELECT * FROM t action WHERE action.id = 1
-- case: unreserved keyword table
SELECT * FROM action WHERE id = 1
-- case: col_name keyword column
SELECT * FROM t WHERE position = 1
-- case: reserved keyword column
SELECT * FROM t WHERE user = 1
-- case: wrong qualifier with alias
SELECT * FROM t AS u WHERE t.id = 1
-- case: wrong star qualifier
SELECT u.* FROM t WHERE id = 1
-- case: wrong ORDER BY qualifier
SELECT * FROM t u WHERE id = 1 ORDER BY t.id
-- case: schema qualifier with alias
SELECT t.id FROM public.t AS t WHERE public.t.id = 1
-- case: schema qualifier for other schema
SELECT * FROM public.t WHERE other.t.id = 1
-- case: three-part column with alias
SELECT * FROM public.t u WHERE public.u.id = 1
-- case: field of composite
SELECT t.id.x FROM t WHERE id = 1
-- case: ORDER BY NULLS FIRST
SELECT * FROM t WHERE id = 1 ORDER BY id NULLS FIRST
-- case: ORDER BY DESC NULLS LAST
SELECT * FROM t WHERE id = 1 ORDER BY id DESC NULLS LAST
-- case: ORDER BY USING
SELECT * FROM t WHERE id = 1 ORDER BY id USING <
-- case: ORDER BY position
SELECT * FROM t WHERE id = 1 ORDER BY 1
-- case: ORDER BY expression
SELECT * FROM t WHERE id = 1 ORDER BY -id
-- case: ORDER BY COLLATE
SELECT * FROM t WHERE id = 1 ORDER BY id COLLATE "C"
-- case: ORDER BY two columns
SELECT id FROM t WHERE id = 1 ORDER BY id DESC, x ASC
-- case: ORDER BY after LIMIT
SELECT * FROM t WHERE id = 1 LIMIT 1 ORDER BY id
-- case: LIMIT ALL
SELECT * FROM t WHERE id = 1 LIMIT ALL
-- case: LIMIT NULL
SELECT * FROM t WHERE id = 1 LIMIT NULL
-- case: LIMIT negative
SELECT * FROM t WHERE id = 1 LIMIT -1
-- case: LIMIT fraction
SELECT * FROM t WHERE id = 1 LIMIT 1.5
-- case: LIMIT parenthesised
SELECT * FROM t WHERE id = 1 LIMIT (1)
-- case: LIMIT a, b
SELECT * FROM t WHERE id = 1 LIMIT 1, 2
-- case: LIMIT twice
SELECT * FROM t WHERE id = 1 LIMIT 1 LIMIT 2
-- case: LIMIT OFFSET LIMIT
SELECT * FROM t WHERE id = 1 LIMIT 1 OFFSET 2 LIMIT 3
-- case: FETCH and LIMIT
SELECT * FROM t WHERE id = 1 FETCH FIRST 1 ROW ONLY LIMIT 2
-- case: OFFSET twice
SELECT * FROM t WHERE id = 1 OFFSET 1 OFFSET 2
-- case: LIMIT ROWS
SELECT * FROM t WHERE id = 1 LIMIT $1 ROWS
-- case: WITH TIES
SELECT * FROM t WHERE id = 1 ORDER BY id FETCH FIRST 1 ROWS WITH TIES
-- case: WITH TIES without ORDER BY
SELECT * FROM t WHERE id = 1 FETCH FIRST 1 ROWS WITH TIES
-- case: FETCH without FIRST
SELECT * FROM t WHERE id = 1 FETCH 1 ROWS ONLY
-- case: FETCH negative
SELECT * FROM t WHERE id = 1 FETCH FIRST -1 ROWS ONLY
-- case: OFFSET ROW then FETCH ROW
SELECT * FROM t WHERE id = 1 OFFSET 1 ROW FETCH FIRST ROW ONLY
-- case: OFFSET string
SELECT * FROM t WHERE id = 1 OFFSET '1'
-- case: FOR UPDATE
SELECT * FROM t WHERE id = 1 FOR UPDATE
-- case: FOR UPDATE then LIMIT
SELECT * FROM t WHERE id = 1 FOR UPDATE LIMIT 1
-- case: FOR NO KEY UPDATE
SELECT * FROM t WHERE id = 1 FOR NO KEY UPDATE
-- case: FOR SHARE
SELECT * FROM t WHERE id = 1 FOR SHARE
-- case: FOR KEY SHARE
SELECT * FROM t WHERE id = 1 FOR KEY SHARE
-- case: FOR UPDATE with comment
SELECT * FROM t WHERE id = 1 FOR /* x */ UPDATE
-- case: FOR READ ONLY (no lock)
SELECT * FROM t WHERE id = 1 FOR READ ONLY
-- case: UNION
SELECT * FROM t WHERE id = 1 UNION SELECT * FROM t
-- case: DISTINCT
SELECT DISTINCT * FROM t WHERE id = 1
-- case: ALL
SELECT ALL * FROM t WHERE id = 1
-- case: DISTINCT ON
SELECT DISTINCT ON (id) id FROM t WHERE id = 1
-- case: INTO
SELECT * INTO x FROM t WHERE id = 1
-- case: WITH
WITH x AS (SELECT 1) SELECT * FROM t WHERE id = 1
-- case: GROUP BY
SELECT id FROM t WHERE id = 1 GROUP BY id
-- case: HAVING
SELECT id FROM t WHERE id = 1 HAVING true
-- case: WINDOW
SELECT id FROM t WHERE id = 1 WINDOW w AS ()
-- case: two statements
SELECT * FROM t WHERE id = 1; SELECT 2
-- case: parenthesised select
(SELECT * FROM t WHERE id = 1)
-- case: star and column
SELECT *, id FROM t WHERE id = 1
-- case: two stars
SELECT t.*, t.* FROM t WHERE id = 1
-- case: empty select list
SELECT FROM t WHERE id = 1
-- case: constant output
SELECT 1 FROM t WHERE id = 1
-- case: expression output
SELECT id + 1 FROM t WHERE id = 1
-- case: subscript output
SELECT id[1] FROM t WHERE id = 1
-- case: current_user output
SELECT current_user FROM t WHERE id = 1
-- case: system_user output
SELECT system_user FROM t WHERE id = 1
-- case: backslash meta-command
SELECT * FROM t WHERE id = 1 \g
-- case: unterminated string
SELECT * FROM t WHERE id = 'abc
-- case: unterminated quoted identifier
SELECT * FROM "t WHERE id = 1
-- case: unbalanced parenthesis
SELECT * FROM t WHERE (id = 1
-- case: question mark placeholder
SELECT * FROM t WHERE id = ?
-- case: colon placeholder
SELECT * FROM t WHERE id = :id
-- case: same param twice
SELECT * FROM t WHERE id = $1 AND tenant_id = $1
-- case: param in IN and ANY
SELECT * FROM t WHERE id IN ($2, $1) AND x = ANY($3)
-- case: dollar-identifier column
SELECT id$ FROM t WHERE id$ = 1
-- case: vertical tab and form feed as white space
SELECT *FROMt WHERE id = 1
-- case: non-breaking space is not white space
SELECT * FROM t WHERE id = 1 OR 1=1
-- case: CTE delete
WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d
-- case: CTE update with locking outside
WITH d AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM d FOR UPDATE
-- case: locking CTE then update CTE
WITH x AS (SELECT * FROM t FOR UPDATE), d AS (UPDATE t SET a = 1) SELECT 1
-- case: CTE insert materialized
WITH d AS MATERIALIZED (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM d
-- case: CTE with column list
WITH d (x) AS (DELETE FROM t RETURNING 1) SELECT 1
-- case: CTE with comments
WITH d AS (/* c */ DELETE /* c */ FROM t) SELECT 1
-- case: nested CTE delete
WITH a AS (WITH b AS (DELETE FROM t RETURNING *) SELECT * FROM b) SELECT * FROM a
-- case: delete CTE, output named insert
WITH d AS (DELETE FROM t) SELECT 1 AS insert
-- case: recursive CTE and delete
WITH RECURSIVE r AS (SELECT 1), d AS (DELETE FROM t) SELECT 1
-- case: EXPLAIN ANALYZE DELETE
EXPLAIN ANALYZE DELETE FROM t
-- case: EXPLAIN ANALYSE VERBOSE UPDATE
EXPLAIN ANALYSE VERBOSE UPDATE t SET a = 1
-- case: EXPLAIN (ANALYZE) INSERT
EXPLAIN (ANALYZE) INSERT INTO t VALUES (1)
-- case: EXPLAIN (ANALYZE TRUE)
EXPLAIN (ANALYZE TRUE) INSERT INTO t VALUES (1)
-- case: EXPLAIN (ANALYZE 1)
EXPLAIN (ANALYZE 1) UPDATE t SET a = 1
-- case: EXPLAIN (analyze 'on')
EXPLAIN (analyze 'on') DELETE FROM t
-- case: EXPLAIN (FORMAT JSON, ANALYZE) MERGE
EXPLAIN (FORMAT JSON, ANALYZE) MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE
-- case: EXPLAIN quoted analyze option
EXPLAIN ("analyze") DELETE FROM t
-- case: EXPLAIN quoted analyze option with value
EXPLAIN ("analyze" on, format text) UPDATE t SET a = 1
-- case: EXPLAIN quoted ANALYZE upper case (unknown option)
EXPLAIN ("ANALYZE") DELETE FROM t
-- case: EXPLAIN (ANALYZE off) does not run
EXPLAIN (ANALYZE off) DELETE FROM t
-- case: EXPLAIN without ANALYZE does not run
EXPLAIN DELETE FROM t
-- case: EXPLAIN ANALYZE CTE delete
EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d
-- case: EXPLAIN (analyze) with comment
EXPLAIN ( /* x */ analyze ) DELETE FROM t
-- case: COPY FROM
COPY t FROM STDIN
-- case: COPY column list FROM
COPY t (a, b) FROM STDIN
-- case: COPY (DELETE) TO
COPY (DELETE FROM t RETURNING *) TO STDOUT
-- case: COPY (CTE delete) TO
COPY (WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d) TO STDOUT
-- case: COPY TO
COPY t TO STDOUT
-- case: TRUNCATE
TRUNCATE t
-- case: TRUNCATE list CASCADE
TRUNCATE TABLE ONLY t, u CASCADE
-- case: MERGE
MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1 WHEN NOT MATCHED THEN INSERT VALUES (1)
-- case: MERGE RETURNING in CTE
WITH m AS (MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING *) SELECT * FROM m
-- case: INSERT SELECT
INSERT INTO t SELECT * FROM u
-- case: INSERT ON CONFLICT DO UPDATE
INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 1
-- case: read then write
SELECT * FROM t; INSERT INTO t VALUES (1)
-- case: write then lookup
DELETE FROM t WHERE id = 1; SELECT * FROM t WHERE id = 1
-- case: PREPARE does not run
PREPARE p AS DELETE FROM t
-- case: EXPLAIN ANALYZE EXECUTE
EXPLAIN ANALYZE EXECUTE p
-- case: CREATE RULE
CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM u
-- case: CREATE TABLE AS with CTE delete
CREATE TABLE x AS WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d
-- case: DECLARE CURSOR with CTE update
DECLARE c CURSOR FOR WITH d AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM d
-- case: update of table named delete
UPDATE "delete" SET "insert" = 1 WHERE "update" = 2
-- case: CTE delete inside a subquery (server rejects at analysis)
SELECT * FROM t WHERE id IN (WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d)
-- case: SQL-standard function body
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; DELETE FROM t
-- case: function body with CASE
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; END; DELETE FROM t
-- case: function body, output named end
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; END
-- case: function body, column named end
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT t.end FROM t; END; DELETE FROM t
-- case: function body, output named case, then BEGIN
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS case; END; BEGIN
-- case: function body, output named case, then COMMIT
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS case; END; COMMIT
-- case: procedure body then delete
CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END; DELETE FROM u
-- case: dollar-quoted function body
CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; DELETE FROM t
-- case: semicolon in parentheses
SELECT (1; 2)
-- case: EXPLAIN U& quoted analyze option
EXPLAIN (U&"analyze") DELETE FROM t
-- case: EXPLAIN U& escaped analyze option
EXPLAIN (U&"\0061nalyze" true) DELETE FROM t
-- case: EXPLAIN quoted analyse spelling (unknown option)
EXPLAIN ("analyse") DELETE FROM t
-- case: function body, column named case
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT t.case FROM t; END; DELETE FROM t
-- case: function body, quoted end
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS "end"; END; SELECT * FROM t WHERE id = 1
-- case: procedure body, output named end, then BEGIN
CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; END; BEGIN
-- case: E string one hex digit
SELECT * FROM t WHERE id = E'\x4'
-- case: E string octal then digit
SELECT * FROM t WHERE id = E'\1010'
-- case: E string octal zero then 8
SELECT * FROM t WHERE id = E'\08'
-- case: E string UTF-8 from hex bytes
SELECT * FROM t WHERE id = E'\xc3\xa9'
-- case: E string backslash before multibyte
SELECT * FROM t WHERE id = E'\é'
-- case: E string backslash newline
SELECT * FROM t WHERE id = E'a\
b'
-- case: E string incomplete unicode then letter
SELECT * FROM t WHERE id = E'\u004x'
-- case: E string long unicode
SELECT * FROM t WHERE id = E'\U00000041'
-- case: E string unicode out of range
SELECT * FROM t WHERE id = E'\U00110000'
-- case: string with literal newline
SELECT * FROM t WHERE id = 'a
b'
-- case: vertical tab before continuation newline
SELECT * FROM t WHERE id = 'a'
'b'
-- case: block comment before continuation
SELECT * FROM t WHERE id = 'a' /* c */
'b'
-- case: alias is col_name keyword after AS
SELECT * FROM t AS between WHERE id = 1
-- case: quoted empty-looking alias
SELECT * FROM t AS " " WHERE " ".id = 1
-- case: ORDER BY ASC DESC
SELECT * FROM t WHERE id = 1 ORDER BY id ASC DESC
-- case: three AS
SELECT a AS AS AS FROM t WHERE a = 1
-- case: label then second FROM
SELECT a FROM b FROM t WHERE a = 1
-- case: star qualified by schema.table
SELECT s.t.* FROM s.t WHERE id = 1
-- case: star qualified by schema.table with alias
SELECT s.t.* FROM s.t x WHERE id = 1
-- case: table named like its alias
SELECT t.* FROM t t WHERE t.id = 1
-- case: column named like the table (whole-row if no such column)
SELECT t FROM t WHERE id = 1
-- case: comment in qualified name
SELECT t/**/./**/id FROM s/**/./**/t WHERE s . t . id = 1
-- case: param immediately followed by dollar quote
SELECT * FROM t WHERE id = $1$$; DELETE FROM t; $$
-- case: identifier with dollar then semicolon
SELECT a$$ FROM t WHERE a$$ = 1; DELETE FROM t
-- case: number followed by dollar quote
SELECT * FROM t WHERE id = 1$a$; DELETE FROM t $a$
-- case: string closing inside comment-looking text
SELECT * FROM t WHERE id = '/*'; DELETE FROM t; --'
-- case: comment containing quote
SELECT * FROM t WHERE id = 1 /* ' */ ; DELETE FROM t
-- case: block comment with string end inside
SELECT * FROM t WHERE id = 1 /* '*/' */
-- case: trailing whitespace only statement
SELECT * FROM t WHERE id = 1;   
	 
-- case: FOR READ ONLY then LIMIT
SELECT * FROM t WHERE id = 1 FOR READ ONLY LIMIT 1
-- case: LIMIT with comment
SELECT * FROM t WHERE id = 1 LIMIT /* 5 */ 1
-- case: FETCH with comments
SELECT * FROM t WHERE id = 1 FETCH /*a*/ FIRST /*b*/ 3 /*c*/ ROWS /*d*/ ONLY
-- case: OFFSET ROWS then LIMIT
SELECT * FROM t WHERE id = 1 OFFSET 5 ROWS LIMIT 1
-- case: function body, qualified star labelled case, then BEGIN and COMMIT
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT t.* case FROM t; END; BEGIN; DELETE FROM u; END
-- case: procedure body, (t).* labelled case, then COMMIT
CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT (t).* case FROM t; END; SELECT 'after'; END
-- case: function body, CASE expression labelled case
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END case; END; COMMIT
-- case: function body, bare label end
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 end; END; COMMIT
-- case: function body, RETURN CASE
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC RETURN CASE WHEN true THEN 1 END; END; BEGIN
