package recognize

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// brief is the part of a Statement that TestClassify compares.
type brief struct {
	Kind      Kind
	Tables    []Table
	AllTables bool
	Tx        TxOp
	Savepoint string
	Locking   bool
}

func (b brief) String() string {
	s := b.Kind.String()
	if len(b.Tables) > 0 {
		s += fmt.Sprintf(" %v", b.Tables)
	}
	if b.AllTables {
		s += " AllTables"
	}
	if b.Tx != TxNone {
		s += " " + b.Tx.String()
	}
	if b.Savepoint != "" {
		s += " savepoint=" + b.Savepoint
	}
	if b.Locking {
		s += " Locking"
	}
	return s
}

func briefs(c Classification) []brief {
	out := make([]brief, len(c.Statements))
	for i, st := range c.Statements {
		out[i] = brief{st.Kind, st.Tables, st.AllTables, st.Tx, st.SavepointName, st.Locking}
	}
	return out
}

func read() brief                    { return brief{Kind: KindRead} }
func locking() brief                 { return brief{Kind: KindRead, Locking: true} }
func write(ts ...Table) brief        { return brief{Kind: KindWrite, Tables: ts} }
func writeAll(ts ...Table) brief     { return brief{Kind: KindWrite, Tables: ts, AllTables: true} }
func ddl(ts ...Table) brief          { return brief{Kind: KindDDL, Tables: ts} }
func ddlAll(ts ...Table) brief       { return brief{Kind: KindDDL, Tables: ts, AllTables: true} }
func unknown() brief                 { return brief{Kind: KindUnknown, AllTables: true} }
func session() brief                 { return brief{Kind: KindSession} }
func tx(op TxOp) brief               { return brief{Kind: KindTx, Tx: op} }
func txName(op TxOp, n string) brief { return brief{Kind: KindTx, Tx: op, Savepoint: n} }
func stmts(bs ...brief) []brief      { return bs }

func TestClassify(t *testing.T) {
	a, b, tt := tbl("a"), tbl("b"), tbl("t")
	tests := []struct {
		name string
		sql  string
		want []brief
	}{
		// Reads.
		{"select", `SELECT 1`, stmts(read())},
		{"select with join", `SELECT * FROM a JOIN b USING (id)`, stmts(read())},
		{"values", `VALUES (1), (2)`, stmts(read())},
		{"table", `TABLE t`, stmts(read())},
		{"show", `SHOW search_path`, stmts(read())},
		{"parenthesised select", `(SELECT 1) UNION (SELECT 2)`, stmts(read())},
		{"read-only with", `WITH x AS (SELECT * FROM a) SELECT * FROM x`, stmts(read())},
		{"recursive with", `WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r) SELECT * FROM r`, stmts(read())},
		{"explain", `EXPLAIN SELECT * FROM t`, stmts(read())},
		{"explain update without analyze", `EXPLAIN UPDATE t SET a = 1`, stmts(read())},
		{"explain options without analyze", `EXPLAIN (COSTS OFF, VERBOSE) DELETE FROM t`, stmts(read())},
		{"explain verbose", `EXPLAIN VERBOSE DELETE FROM t`, stmts(read())},
		{"copy to", `COPY t TO STDOUT`, stmts(read())},
		{"copy columns to", `COPY t (a, b) TO STDOUT WITH (FORMAT csv)`, stmts(read())},
		{"copy query to", `COPY (SELECT * FROM t) TO STDOUT`, stmts(read())},
		{"declare cursor", `DECLARE c CURSOR FOR SELECT * FROM t`, stmts(read())},
		{"fetch", `FETCH 10 FROM c`, stmts(read())},
		{"close", `CLOSE c`, stmts(read())},
		{"keyword in string is not a write", `SELECT 'DELETE FROM t; UPDATE t SET a=1'`, stmts(read())},
		{"keyword in quoted identifier is not a write", `SELECT "update" FROM "delete"`, stmts(read())},
		{"keyword in comment is not a write", `SELECT 1 /* ; DELETE FROM t */ -- ; UPDATE t SET a = 1`, stmts(read())},
		{"keyword in dollar quote is not a write", `SELECT $f$ ; DELETE FROM t; $f$`, stmts(read())},
		{"is distinct from", `SELECT * FROM t WHERE a IS DISTINCT FROM b`, stmts(read())},

		// Locking reads.
		{"for update", `SELECT * FROM t WHERE id = 1 FOR UPDATE`, stmts(locking())},
		{"for no key update", `SELECT * FROM t WHERE id = $1 FOR NO KEY UPDATE NOWAIT`, stmts(locking())},
		{"for share", `SELECT * FROM t FOR SHARE OF t SKIP LOCKED`, stmts(locking())},
		{"for key share", `select * from t for key share`, stmts(locking())},
		{"locking in subquery", `SELECT * FROM (SELECT * FROM t FOR UPDATE) s`, stmts(locking())},
		{"declare cursor for update", `DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE`, stmts(locking())},

		// Writes.
		{"insert", `INSERT INTO t (a) VALUES (1)`, stmts(write(tt))},
		{"insert schema", `INSERT INTO public.t VALUES (1) RETURNING id`, stmts(write(stbl("public", "t")))},
		{"insert quoted", `INSERT INTO "Public"."T" DEFAULT VALUES`, stmts(write(stbl("Public", "T")))},
		{"insert select", `INSERT INTO a SELECT * FROM b`, stmts(write(a))},
		{"upsert", `INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET a = excluded.a`, stmts(write(tt))},
		{"upsert do nothing", `INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING`, stmts(write(tt))},
		{"update", `UPDATE t SET a = 1 WHERE id = 2`, stmts(write(tt))},
		{"update only", `UPDATE ONLY t SET a = 1`, stmts(write(tt))},
		{"update from", `UPDATE a SET x = b.x FROM b WHERE a.id = b.id`, stmts(write(a))},
		{"delete", `DELETE FROM t WHERE id = 1`, stmts(write(tt))},
		{"delete using", `DELETE FROM ONLY a USING b WHERE a.id = b.id`, stmts(write(a))},
		{"merge", `MERGE INTO a USING b ON a.id = b.id WHEN MATCHED THEN UPDATE SET x = b.x WHEN NOT MATCHED THEN INSERT VALUES (b.id) WHEN MATCHED AND b.gone THEN DELETE`, stmts(write(a))},
		{"truncate", `TRUNCATE a, ONLY b`, stmts(write(a, b))},
		{"truncate table restart identity", `TRUNCATE TABLE a RESTART IDENTITY`, stmts(write(a))},
		{"truncate cascade", `TRUNCATE a CASCADE`, stmts(writeAll(a))},
		{"copy from", `COPY t FROM STDIN`, stmts(write(tt))},
		{"copy columns from", `COPY public.t (a, b) FROM '/tmp/x' WITH (FORMAT csv)`, stmts(write(stbl("public", "t")))},
		{"copy binary old syntax", `COPY BINARY t FROM STDIN`, stmts(write(tt))},
		{"copy delete to", `COPY (DELETE FROM t RETURNING *) TO STDOUT`, stmts(write(tt))},
		{"data-modifying with", `WITH x AS (DELETE FROM a RETURNING *) SELECT * FROM x`, stmts(write(a))},
		{"with materialized delete", `WITH x AS MATERIALIZED (DELETE FROM a RETURNING *) SELECT * FROM x`, stmts(write(a))},
		{"with update and insert", `WITH u AS (UPDATE a SET x = 1 RETURNING *), i AS (INSERT INTO b SELECT * FROM u RETURNING *) SELECT 1`, stmts(write(a, b))},
		{"with then insert", `WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x`, stmts(write(tt))},
		{"with then delete", `WITH x AS (SELECT 1 AS id) DELETE FROM t USING x WHERE t.id = x.id`, stmts(write(tt))},
		{"nested with insert", `WITH x AS (WITH y AS (SELECT 1) INSERT INTO a SELECT * FROM y RETURNING *) SELECT * FROM x`, stmts(write(a))},
		{"duplicate tables", `WITH x AS (DELETE FROM a RETURNING *) DELETE FROM a`, stmts(write(a))},
		{"explain analyze update", `EXPLAIN ANALYZE UPDATE t SET a = 1`, stmts(write(tt))},
		{"explain analyse verbose delete", `EXPLAIN ANALYSE VERBOSE DELETE FROM t`, stmts(write(tt))},
		{"explain options analyze insert", `EXPLAIN (ANALYZE, BUFFERS) INSERT INTO t VALUES (1)`, stmts(write(tt))},
		{"explain quoted analyze option", `EXPLAIN ("analyze") DELETE FROM t`, stmts(write(tt))},
		{"explain quoted analyze option with value", `EXPLAIN ("ANALYZE" on, format text) UPDATE t SET a = 1`, stmts(write(tt))},
		{"explain unicode-escaped option", `EXPLAIN (U&"\0061nalyze" true) DELETE FROM t`, stmts(write(tt))},
		{"explain analyze select", `EXPLAIN ANALYZE SELECT * FROM t WHERE id = 1`, stmts(read())},
		{"explain analyze execute", `EXPLAIN ANALYZE EXECUTE p(1)`, stmts(unknown())},
		{"update of a table named like a keyword", `UPDATE "select" SET a = 1`, stmts(write(tbl("select")))},
		{"column named update is cautious", `SELECT update FROM t`, stmts(writeAll())},
		{"insert without a readable target", `INSERT INTO U&"t" VALUES (1)`, stmts(writeAll())},

		// SELECT INTO creates a table.
		{"select into", `SELECT * INTO newt FROM t`, stmts(ddl(tbl("newt")))},
		{"select into temp table", `SELECT a INTO TEMP TABLE newt FROM t`, stmts(ddl(tbl("newt")))},
		{"select into unlogged", `SELECT a INTO UNLOGGED s.newt FROM t`, stmts(ddl(stbl("s", "newt")))},

		// DDL.
		{"create table", `CREATE TABLE t (id int primary key)`, stmts(ddl(tt))},
		{"create temp table if not exists", `CREATE TEMP TABLE IF NOT EXISTS s.t (id int)`, stmts(ddl(stbl("s", "t")))},
		{"create table as with delete", `CREATE TABLE a AS WITH d AS (DELETE FROM b RETURNING *) SELECT * FROM d`, stmts(ddl(a, b))},
		{"create table as execute", `CREATE TABLE a AS EXECUTE p`, stmts(ddlAll(a))},
		{"create table with generated column", `CREATE TABLE a (x int GENERATED ALWAYS AS (1) STORED)`, stmts(ddl(a))},
		{"create unlogged table", `CREATE UNLOGGED TABLE a (x int)`, stmts(ddl(a))},
		{"create index", `CREATE INDEX ON t (a)`, stmts(ddl(tt))},
		{"create unique index concurrently", `CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY s.t USING btree (a)`, stmts(ddl(stbl("s", "t")))},
		{"create view", `CREATE OR REPLACE VIEW v AS SELECT * FROM t`, stmts(ddl(tbl("v")))},
		{"create materialized view", `CREATE MATERIALIZED VIEW mv AS SELECT * FROM t`, stmts(ddl(tbl("mv")))},
		{"create sequence", `CREATE SEQUENCE seq`, stmts(ddl(tbl("seq")))},
		{"create trigger", `CREATE TRIGGER tr BEFORE UPDATE OF a ON t FOR EACH ROW EXECUTE FUNCTION f()`, stmts(ddl(tt))},
		{"create constraint trigger", `CREATE CONSTRAINT TRIGGER tr AFTER INSERT ON a DEFERRABLE FOR EACH ROW EXECUTE FUNCTION f()`, stmts(ddl(a))},
		{"create rule", `CREATE RULE r AS ON INSERT TO a DO ALSO (INSERT INTO b VALUES (1); DELETE FROM b)`, stmts(ddl(a))},
		{"create policy", `CREATE POLICY p ON t USING (true)`, stmts(ddl(tt))},
		{"create function", `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ DELETE FROM t; SELECT 1 $$`, stmts(ddlAll())},
		{"create schema", `CREATE SCHEMA s`, stmts(ddlAll())},
		{"create extension", `CREATE EXTENSION pgcrypto`, stmts(ddlAll())},
		{"alter table", `ALTER TABLE t ADD COLUMN c int`, stmts(ddl(tt))},
		{"alter table if exists only", `ALTER TABLE IF EXISTS ONLY s.t ALTER COLUMN c TYPE bigint USING c::bigint`, stmts(ddl(stbl("s", "t")))},
		{"alter table rename", `ALTER TABLE s.t RENAME TO u`, stmts(ddl(stbl("s", "t"), stbl("s", "u")))},
		{"alter table rename column", `ALTER TABLE t RENAME COLUMN a TO b`, stmts(ddl(tt))},
		{"alter table set schema", `ALTER TABLE t SET SCHEMA archive`, stmts(ddl(tt, stbl("archive", "t")))},
		{"alter table attach partition", `ALTER TABLE a ATTACH PARTITION b FOR VALUES IN (1)`, stmts(ddl(a, b))},
		{"alter table detach partition", `ALTER TABLE a DETACH PARTITION b CONCURRENTLY`, stmts(ddl(a, b))},
		{"alter table inherit", `ALTER TABLE a INHERIT b`, stmts(ddl(a, b))},
		{"alter table no inherit", `ALTER TABLE a NO INHERIT b`, stmts(ddl(a, b))},
		{"alter table add constraint no inherit", `ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NO INHERIT`, stmts(ddl(tt))},
		{"alter table enable rls", `ALTER TABLE t ENABLE ROW LEVEL SECURITY`, stmts(ddl(tt))},
		{"alter materialized view", `ALTER MATERIALIZED VIEW mv RENAME TO mv2`, stmts(ddl(tbl("mv"), tbl("mv2")))},
		{"alter table all in tablespace", `ALTER TABLE ALL IN TABLESPACE a SET TABLESPACE b`, stmts(ddlAll())},
		{"alter type", `ALTER TYPE e ADD VALUE 'x'`, stmts(ddlAll())},
		{"alter role", `ALTER ROLE r BYPASSRLS`, stmts(ddlAll())},
		{"drop table", `DROP TABLE a, s.b`, stmts(ddl(a, stbl("s", "b")))},
		{"drop table if exists cascade", `DROP TABLE IF EXISTS a CASCADE`, stmts(ddl(a))},
		{"drop index concurrently", `DROP INDEX CONCURRENTLY i`, stmts(ddl(tbl("i")))},
		{"drop view", `DROP MATERIALIZED VIEW mv`, stmts(ddl(tbl("mv")))},
		{"drop schema", `DROP SCHEMA s CASCADE`, stmts(ddlAll())},
		{"drop type", `DROP TYPE e CASCADE`, stmts(ddlAll())},
		{"drop owned", `DROP OWNED BY r`, stmts(ddlAll())},
		{"comment on table", `COMMENT ON TABLE t IS 'x'`, stmts(ddl(tt))},
		{"comment on column", `COMMENT ON COLUMN s.t.c IS 'x'`, stmts(ddl(stbl("s", "t")))},
		{"comment on function", `COMMENT ON FUNCTION f() IS 'x'`, stmts(ddl())},
		{"grant on table", `GRANT SELECT, UPDATE (a) ON TABLE a, b TO r`, stmts(ddl(a, b))},
		{"grant on bare name", `GRANT ALL ON t TO PUBLIC`, stmts(ddl(tt))},
		{"revoke", `REVOKE SELECT ON t FROM r`, stmts(ddl(tt))},
		{"grant all tables in schema", `GRANT SELECT ON ALL TABLES IN SCHEMA public TO r`, stmts(ddlAll())},
		{"grant role", `GRANT admin TO r`, stmts(ddlAll())},
		{"grant on schema", `GRANT USAGE ON SCHEMA s TO r`, stmts(ddlAll())},
		{"security label", `SECURITY LABEL FOR selinux ON TABLE t IS 'x'`, stmts(ddl(tt))},
		{"security label on role", `SECURITY LABEL ON ROLE r IS 'x'`, stmts(ddlAll())},
		{"refresh materialized view", `REFRESH MATERIALIZED VIEW CONCURRENTLY mv WITH DATA`, stmts(ddl(tbl("mv")))},
		{"reindex table", `REINDEX TABLE CONCURRENTLY t`, stmts(ddl(tt))},
		{"reindex database", `REINDEX DATABASE d`, stmts(ddl())},
		{"cluster", `CLUSTER t USING i`, stmts(ddl(tt))},
		{"vacuum", `VACUUM (VERBOSE, ANALYZE) a, b (x)`, stmts(ddl(a, b))},
		{"vacuum all", `VACUUM FULL`, stmts(ddl())},
		{"analyze", `ANALYZE t`, stmts(ddl(tt))},
		{"checkpoint", `CHECKPOINT`, stmts(ddl())},
		{"import foreign schema", `IMPORT FOREIGN SCHEMA s FROM SERVER x INTO public`, stmts(ddlAll())},

		// Transaction control.
		{"begin", `BEGIN`, stmts(tx(TxBegin))},
		{"begin isolation", `BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY`, stmts(tx(TxBegin))},
		{"begin work", `begin work`, stmts(tx(TxBegin))},
		{"start transaction", `START TRANSACTION`, stmts(tx(TxBegin))},
		{"commit", `COMMIT`, stmts(tx(TxCommit))},
		{"commit and no chain", `COMMIT WORK AND NO CHAIN`, stmts(tx(TxCommit))},
		{"commit and chain", `COMMIT AND CHAIN`, stmts(tx(TxOther))},
		{"end", `END TRANSACTION`, stmts(tx(TxCommit))},
		{"rollback", `ROLLBACK`, stmts(tx(TxRollback))},
		{"abort", `ABORT`, stmts(tx(TxRollback))},
		{"rollback and chain", `ROLLBACK AND CHAIN`, stmts(tx(TxOther))},
		{"savepoint", `SAVEPOINT sp1`, stmts(txName(TxSavepoint, "sp1"))},
		{"savepoint quoted", `SAVEPOINT "Sp"`, stmts(txName(TxSavepoint, "Sp"))},
		{"release", `RELEASE SAVEPOINT SP1`, stmts(txName(TxRelease, "sp1"))},
		{"release short", `RELEASE sp1`, stmts(txName(TxRelease, "sp1"))},
		{"rollback to savepoint", `ROLLBACK TO SAVEPOINT sp1`, stmts(txName(TxRollbackTo, "sp1"))},
		{"rollback work to", `ROLLBACK WORK TO sp1`, stmts(txName(TxRollbackTo, "sp1"))},
		{"savepoint with unicode name", `SAVEPOINT U&"a"`, stmts(tx(TxOther))},
		{"rollback to unreadable savepoint", `ROLLBACK TO SAVEPOINT U&"\0061"`, stmts(tx(TxOther))},
		{"savepoint name cut to 63 bytes", `SAVEPOINT ` + strings.Repeat("s", 70), stmts(txName(TxSavepoint, strings.Repeat("s", 63)))},
		{"prepare transaction", `PREPARE TRANSACTION 'g'`, stmts(tx(TxOther))},
		{"commit prepared", `COMMIT PREPARED 'g'`, stmts(brief{Kind: KindTx, Tx: TxOther, AllTables: true})},
		{"rollback prepared", `ROLLBACK PREPARED 'g'`, stmts(tx(TxOther))},

		// Session.
		{"set", `SET search_path TO s, public`, stmts(session())},
		{"set local", `SET LOCAL statement_timeout = 0`, stmts(session())},
		{"set transaction", `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`, stmts(session())},
		{"reset", `RESET ALL`, stmts(session())},
		{"discard", `DISCARD ALL`, stmts(session())},
		{"listen", `LISTEN ch`, stmts(session())},
		{"notify", `NOTIFY ch, 'x'`, stmts(session())},
		{"unlisten", `UNLISTEN *`, stmts(session())},
		{"deallocate", `DEALLOCATE ALL`, stmts(session())},
		{"prepare", `PREPARE p (int) AS DELETE FROM t WHERE id = $1`, stmts(session())},

		// Unknown.
		{"do", `DO $$ BEGIN DELETE FROM t; END $$`, stmts(unknown())},
		{"do with language", `DO LANGUAGE plpgsql 'BEGIN NULL; END'`, stmts(unknown())},
		{"call", `CALL p()`, stmts(unknown())},
		{"execute", `EXECUTE p(1)`, stmts(unknown())},
		{"lock", `LOCK TABLE t IN ACCESS EXCLUSIVE MODE`, stmts(unknown())},
		{"load", `LOAD 'auto_explain'`, stmts(unknown())},
		{"garbage", `FOO BAR`, stmts(unknown())},
		{"operator first", `+ 1`, stmts(unknown())},
		{"start without transaction", `START x`, stmts(unknown())},
		{"copy without table", `COPY FROM STDIN`, stmts(unknown())},
		{"copy of execute", `COPY (EXECUTE p) TO STDOUT`, stmts(unknown())},
		{"unterminated string", `SELECT 'abc; DELETE FROM t`, stmts(unknown())},
		{"unterminated dollar quote", `DO $x$ BEGIN END $y$`, stmts(unknown())},
		{"unterminated comment", `SELECT 1 /* /* */`, stmts(unknown())},
		{"unbalanced parentheses", `SELECT (1; DELETE FROM t`, stmts(unknown())},

		// Several statements.
		{"tx script", `begin; update t set a = 1; commit`, stmts(tx(TxBegin), write(tt), tx(TxCommit))},
		{"two writes", `INSERT INTO a VALUES (1); DELETE FROM b;`, stmts(write(a), write(b))},
		{"empty statements skipped", `;; SELECT 1 ;;; SELECT 2;`, stmts(read(), read())},
		{"only semicolons", `;;;`, nil},
		{"empty", ``, nil},
		{"only a comment", `-- nothing`, nil},
		{"semicolon in string", `SELECT ';'; SELECT 2`, stmts(read(), read())},
		{"semicolon in quoted identifier", `SELECT 1 AS ";"; SELECT 2`, stmts(read(), read())},
		{"semicolon in dollar quote", `DO $$ BEGIN; END; $$; SELECT 1`, stmts(unknown(), read())},
		{"semicolon in E string", `SELECT E'\';'; DELETE FROM t`, stmts(read(), write(tt))},
		{"semicolon after E string continuation", "SELECT E'x'\n'\\'; DELETE FROM t; --'", stmts(read())},
		{"semicolon in comment", "SELECT 1 -- ; DELETE FROM t\n; SELECT 2", stmts(read(), read())},
		{"semicolon in rule actions", `CREATE RULE r AS ON DELETE TO a DO INSTEAD (UPDATE a SET x = 1; DELETE FROM b); SELECT 1`, stmts(ddl(a), read())},
		{"begin atomic body", `CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; COMMIT`, stmts(ddlAll(), tx(TxCommit))},
		{"create or replace procedure begin atomic", `CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC INSERT INTO a VALUES (1); END; ROLLBACK`, stmts(ddlAll(), tx(TxRollback))},
		{"begin atomic with AS case", `CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS case; END; BEGIN`, stmts(ddlAll(), tx(TxBegin))},
		{"begin atomic with AS end", `CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS end; END`, stmts(ddlAll())},
		{"begin atomic with t.end", `CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT t.end FROM t; END; DELETE FROM t`, stmts(ddlAll(), write(tt))},
		{"begin atomic with bare end label", `CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 end; END; COMMIT`, stmts(ddlAll(), tx(TxCommit))},
		{"begin atomic with bare case label", `CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT x case FROM t; END; COMMIT`, stmts(ddlAll(), tx(TxCommit))},
		{"begin atomic with nested case", `CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a THEN CASE b WHEN 1 THEN 2 END ELSE 3 END FROM t ORDER BY CASE WHEN a THEN 1 END; (SELECT CASE WHEN true THEN 1 END); END; COMMIT`, stmts(ddlAll(), tx(TxCommit))},
		{"begin atomic with an undecidable case", `CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT x AT TIME ZONE CASE WHEN a THEN 'UTC' END FROM t; END; COMMIT`, stmts(unknown())},
		{"begin atomic without end", `CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; COMMIT`, stmts(unknown())},
		{"begin then end", `BEGIN; SELECT 1; END`, stmts(tx(TxBegin), read(), tx(TxCommit))},
		{"one bad statement spoils the text", `SELECT 1; SELECT 'x`, stmts(unknown())},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := briefs(Classify(tc.sql))
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Classify(%q) =\n %v\nwant\n %v", tc.sql, got, tc.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	users := tbl("users")
	tests := []struct {
		name string
		sql  string
		want *Write
	}{
		{
			"gorm insert",
			`INSERT INTO "users" ("name","age") VALUES ($1,$2) RETURNING "id"`,
			&Write{Op: "INSERT", Table: users, Returning: true},
		},
		{
			"insert with alias and upsert",
			`INSERT INTO s.t AS x (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET a = x.a + 1`,
			&Write{Op: "INSERT", Table: stbl("s", "t"), Alias: "x", OnConflict: true},
		},
		{
			"upsert after a join",
			`INSERT INTO t SELECT a.* FROM a JOIN b ON a.id = b.id ON CONFLICT DO NOTHING`,
			&Write{Op: "INSERT", Table: tbl("t"), OnConflict: true},
		},
		{
			"gorm update",
			`UPDATE "users" SET "name"=$1,"updated_at"=$2 WHERE "users"."deleted_at" IS NULL AND "id" = $3`,
			&Write{Op: "UPDATE", Table: users, SetCols: []string{"name", "updated_at"},
				Preds: []Pred{isNull("deleted_at"), eq("id", par(3))}},
		},
		{
			"gorm soft delete",
			`UPDATE "users" SET "deleted_at"=$1 WHERE "users"."id" = $2 AND "users"."deleted_at" IS NULL`,
			&Write{Op: "UPDATE", Table: users, SetCols: []string{"deleted_at"},
				Preds: []Pred{eq("id", par(2)), isNull("deleted_at")}},
		},
		{
			"update with alias, tuple, indirection, returning",
			`UPDATE users AS u SET (a, b) = (1, 2), c[1] = 3, d.f = 4, e = CASE WHEN x THEN 1 ELSE 2 END, g = f(1, 2) WHERE u.id IN ($1, $2) RETURNING *`,
			&Write{Op: "UPDATE", Table: users, Alias: "u", Returning: true, SetCols: []string{"a", "b", "c", "d", "e", "g"},
				Preds: []Pred{in("id", par(1), par(2))}},
		},
		{
			"update with is distinct from in set",
			`UPDATE t SET a = b IS DISTINCT FROM c WHERE id = 1`,
			&Write{Op: "UPDATE", Table: tbl("t"), SetCols: []string{"a"}, Preds: []Pred{eq("id", num("1"))}},
		},
		{
			"update from has no predicates",
			`UPDATE t SET a = u.a FROM u WHERE id = 1`,
			&Write{Op: "UPDATE", Table: tbl("t"), SetCols: []string{"a"}},
		},
		{
			"update with range predicate",
			`UPDATE t SET a = 1 WHERE id > 1`,
			&Write{Op: "UPDATE", Table: tbl("t"), SetCols: []string{"a"}},
		},
		{
			"update without where",
			`UPDATE t SET a = 1`,
			&Write{Op: "UPDATE", Table: tbl("t"), SetCols: []string{"a"}},
		},
		{
			"update where current of",
			`UPDATE t SET a = 1 WHERE CURRENT OF c`,
			&Write{Op: "UPDATE", Table: tbl("t"), SetCols: []string{"a"}},
		},
		{
			"update qualifier must match alias",
			`UPDATE t x SET a = 1 WHERE t.id = 1`,
			&Write{Op: "UPDATE", Table: tbl("t"), Alias: "x", SetCols: []string{"a"}},
		},
		{
			"delete",
			`DELETE FROM "users" WHERE "users"."id" = $1`,
			&Write{Op: "DELETE", Table: users, Preds: []Pred{eq("id", par(1))}},
		},
		{
			"delete with alias and returning",
			`DELETE FROM ONLY users u WHERE u.id = ANY($1) RETURNING u.id`,
			&Write{Op: "DELETE", Table: users, Alias: "u", Returning: true, Preds: []Pred{anyOf("id", 1)}},
		},
		{
			"delete using",
			`DELETE FROM users USING x WHERE users.id = 1`,
			&Write{Op: "DELETE", Table: users},
		},
		{"with is not a simple write", `WITH x AS (SELECT 1) DELETE FROM t`, nil},
		{"writing two tables", `INSERT INTO a SELECT * FROM b WHERE update = 1`, nil},
		{"explain analyze has no write detail", `EXPLAIN ANALYZE DELETE FROM t WHERE id = 1`, nil},
		{"merge has no write detail", `MERGE INTO a USING b ON true WHEN MATCHED THEN DELETE`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Classify(tc.sql)
			if len(c.Statements) != 1 {
				t.Fatalf("%d statements", len(c.Statements))
			}
			got := c.Statements[0].Write
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Classify(%q).Write =\n %+v\nwant\n %+v", tc.sql, got, tc.want)
			}
		})
	}
}

func TestLex(t *testing.T) {
	tests := []struct {
		sql  string
		want string // kinds and texts
	}{
		{`1 1.5 1e10 .5 0x1F 1_000 1.e3 2.`, `num(1) num(1.5) num(1e10) num(.5) num(0x1F) num(1_000) num(1.e3) num(2.)`},
		{`$1 $65535 $1abc`, `param($1) param($65535) param($1) ident(abc)`},
		{`1..5`, `num(1) dot(.) num(.5)`},
		{`a=-5`, `ident(a) op(=) op(-) num(5)`},
		{`a<>-5`, `ident(a) op(<>) op(-) num(5)`},
		{`a@-5`, `ident(a) op(@-) num(5)`},
		{`a*/*c*/b`, `ident(a) op(*) ident(b)`},
		{`a+--c` + "\n" + `b`, `ident(a) op(+) ident(b)`},
		{`x::int`, `ident(x) cast(::) ident(int)`},
		{`'a''b' E'c\'d' e'\\' $$x$$ $t$y$t$`, `str('a''b') estr(E'c\'d') estr(e'\\') dollar($$x$$) dollar($t$y$t$)`},
		{`B'101' X'1F' N'n' U&'u' U&"i"`, `ostr(B'101') ostr(X'1F') ostr(N'n') ostr(U&'u') uident(U&"i")`},
		{`"a""b" a$b$ _x`, `qident("a""b") ident(a$b$) ident(_x)`},
		{"'a'\n'b' 'c' 'd'", "str('a'\n'b') str('c') str('d')"},
		{"'a' -- c\n 'b'", "str('a' -- c\n 'b')"},
		{`( ) [ ] , ; : ?`, `( ) [ ] , ; : op(?)`},
		{"a\x00b", `ident(a) other(` + "\x00" + `) ident(b)`},
	}
	name := map[tokKind]string{
		tkIdent: "ident", tkQIdent: "qident", tkUIdent: "uident", tkString: "str", tkEString: "estr",
		tkOtherString: "ostr", tkDollar: "dollar", tkNumber: "num", tkParam: "param", tkOp: "op",
		tkDot: "dot", tkCast: "cast", tkOther: "other",
	}
	for _, tc := range tests {
		toks, ok := lex(tc.sql, nil)
		if !ok {
			t.Errorf("lex(%q) failed", tc.sql)
			continue
		}
		var parts []string
		for _, tk := range toks {
			text := tc.sql[tk.pos:tk.end]
			if n, ok := name[tk.kind]; ok {
				parts = append(parts, n+"("+text+")")
			} else {
				parts = append(parts, text)
			}
		}
		if got := strings.Join(parts, " "); got != tc.want {
			t.Errorf("lex(%q) =\n %s\nwant\n %s", tc.sql, got, tc.want)
		}
	}
	flags := []struct {
		sql  string
		want uint8
	}{
		{`1`, 0}, {`1.5`, fFraction}, {`1e5`, fFraction}, {`0x1F`, fNotDecimal}, {`1_000`, fNotDecimal},
		{`1abc`, fJunk}, {`1e`, fJunk}, {`0x`, fNotDecimal | fJunk}, {`1_`, fNotDecimal | fJunk},
		{`'a\b'`, fBackslash}, {`'a''b'`, fEscape}, {"'a'\n'b'", fContinued}, {`Abc`, fUpper}, {`"a""b"`, fEscape},
	}
	for _, tc := range flags {
		toks, ok := lex(tc.sql, nil)
		if !ok || len(toks) == 0 {
			t.Errorf("lex(%q) failed", tc.sql)
			continue
		}
		if toks[0].flags != tc.want {
			t.Errorf("lex(%q) flags = %b, want %b", tc.sql, toks[0].flags, tc.want)
		}
	}
	for _, bad := range []string{`'abc`, `"abc`, `""`, `/* x`, `$$ x`, `$a$ x $b$`, `E'\'`, `U&"x`} {
		if _, ok := lex(bad, nil); ok {
			t.Errorf("lex(%q) succeeded", bad)
		}
	}
}

// TestStatementCount checks that huge and odd inputs are handled without
// trouble.
func TestOddInputs(t *testing.T) {
	long := strings.Repeat("SELECT 1; ", 10000)
	if n := len(Classify(long).Statements); n != 10000 {
		t.Errorf("%d statements, want 10000", n)
	}
	deep := "SELECT " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000)
	if got := briefs(Classify(deep)); !reflect.DeepEqual(got, stmts(read())) {
		t.Errorf("deep parentheses: %v", got)
	}
	deepWhere := "SELECT * FROM t WHERE " + strings.Repeat("(", 100000) + "id = 1" + strings.Repeat(")", 100000)
	if l := lookupOf(t, deepWhere); l != nil {
		t.Errorf("deep WHERE gave a Lookup")
	}
	explains := strings.Repeat("EXPLAIN ANALYZE ", 10000) + "DELETE FROM t"
	if got := briefs(Classify(explains)); !reflect.DeepEqual(got, stmts(write(tbl("t")))) {
		t.Errorf("nested EXPLAIN: %v", got)
	}
}

// TestImpliedOperatorsAndAttributes: every SQL form the server turns into
// an operator looked up by name lists that operator, and every name read
// after a "." (attribute notation may call a function) is in Attrs.
func TestImpliedOperatorsAndAttributes(t *testing.T) {
	for _, c := range []struct {
		sql   string
		ops   []string
		attrs []string
	}{
		{"SELECT 1 FROM t WHERE a IN (1, 2)", []string{"="}, nil},
		{"SELECT 1 FROM t WHERE a NOT IN (SELECT b FROM u)", []string{"<>"}, nil},
		{"SELECT 1 FROM t WHERE a IS DISTINCT FROM b", []string{"="}, nil},
		{"SELECT 1 FROM t WHERE a IS NOT DISTINCT FROM b", []string{"="}, nil},
		{"SELECT NULLIF(a, b) FROM t", []string{"="}, nil},
		{"SELECT CASE a WHEN 1 THEN 2 END FROM t", []string{"="}, nil},
		{"SELECT 1 FROM t WHERE a BETWEEN 1 AND 3", []string{"<=", ">="}, nil},
		{"SELECT 1 FROM t WHERE a NOT BETWEEN SYMMETRIC 1 AND 3", []string{"<", ">"}, nil},
		{"SELECT 1 FROM t WHERE a LIKE 'x%'", []string{"~~"}, nil},
		{"SELECT 1 FROM t WHERE a NOT LIKE 'x%'", []string{"!~~"}, nil},
		{"SELECT 1 FROM t WHERE a ILIKE 'x%'", []string{"~~*"}, nil},
		{"SELECT 1 FROM t WHERE a SIMILAR TO 'x%'", []string{"~"}, nil},
		{"SELECT 1 FROM t JOIN u USING (id)", []string{"="}, nil},
		{"SELECT 1 FROM t NATURAL JOIN u", []string{"="}, nil},
		{"SELECT t.f FROM t", nil, []string{"f"}},
		{"SELECT (t).f FROM t", nil, []string{"f"}},
		{`SELECT "T"."Col" FROM s.t AS "T"`, nil, []string{"Col", "t"}},
		{"UPDATE t SET n = t.touch WHERE id = 1", []string{"="}, []string{"touch"}},
		{"SELECT s.f(1), x.* FROM x", nil, nil},
	} {
		cl := Classify(c.sql)
		for _, op := range c.ops {
			if !slices.Contains(cl.Operators, op) {
				t.Errorf("%s: operators %v lack %s", c.sql, cl.Operators, op)
			}
		}
		for _, a := range c.attrs {
			if !slices.Contains(cl.Attrs, a) {
				t.Errorf("%s: attrs %v lack %s", c.sql, cl.Attrs, a)
			}
		}
		if c.attrs == nil && len(cl.Attrs) > 0 && !strings.Contains(c.sql, "(t).") {
			t.Errorf("%s: attrs %v", c.sql, cl.Attrs)
		}
	}
	// Where no such form is, none is implied.
	for _, sql := range []string{"SELECT DISTINCT a FROM t", "SELECT a FROM t ORDER BY a", "SELECT CASE WHEN a THEN 1 END FROM t"} {
		if cl := Classify(sql); len(cl.Operators) > 0 {
			t.Errorf("%s: operators %v", sql, cl.Operators)
		}
	}
}
