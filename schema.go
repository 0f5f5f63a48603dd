package wtcache

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wtcache/wtcache/internal/recognize"
	"github.com/wtcache/wtcache/internal/rowcodec"
)

// Schema knowledge: for every table a lookup may read, its columns, primary
// key and whether it may be cached at all, loaded from pg_catalog and kept
// per connector. Names are resolved per session through its search_path
// (to_regclass), so an unqualified name means what PostgreSQL takes it to
// mean, temporary tables included.

type columnInfo struct {
	name    string
	typeOID uint32
	typmod  int64 // pg_attribute.atttypmod: varchar(n), numeric(p,s), timestamp(p)...
	// version changes with every change to the column's catalog row: its
	// attnum and the row's xmin (tableShape; its type's own changes are
	// followed by typesQuery).
	version string
	keyKind keyKind
	intBits int // 16, 32 or 64 for integer key columns
}

type tableInfo struct {
	oid uint32
	// shape is what an image records of the catalog beyond its columns'
	// names and types (tableShape): an image of another shape is a miss.
	shape  uint64
	ident  recognize.Table // schema-qualified
	cols   []columnInfo
	colIdx map[string]int
	pk     []int // indexes into cols, in key order
	// cascades lists the tables whose rows change when a row of this
	// table is deleted or its key updated (ON DELETE/UPDATE CASCADE, SET
	// NULL, SET DEFAULT).
	cascades []cascade
	// descendants are the tables whose rows a write through this one may
	// change: inheritance children and partitions, at any depth.
	descendants []uint32

	cacheable bool
	// userEquality: an = not PostgreSQL's may compare the key
	// (userEqualityQuery): lookups go to PostgreSQL whole, and a write's
	// reach is the whole table.
	userEquality bool
	near         bool   // served from the process's near cache too (cache_local_tables)
	reason       string // why not, for spans and tests
	view         bool   // a view: a write through it changes base tables it does not name
	// userCode: the table has triggers (other than PostgreSQL's own for
	// foreign keys) or rules, so a write to it may change anything.
	userCode bool
	// rendered: some column reaches the driver as text the server renders
	// under the session's TimeZone, DateStyle or IntervalStyle; images are
	// kept apart by those settings. unreported: under a setting the server
	// does not report (money and lc_monetary): never cached.
	rendered, unreported bool
	loaded               time.Time

	selectAll string // SELECT of every column by key, for misses
	selectOne string // the same for exactly one key
	// lastCols is the column metadata the inner driver last reported for
	// the table's rows, to answer a lookup that finds no row.
	lastCols atomic.Pointer[[]rowcodec.Column]
	// matched: the first column of the last image header found to match
	// cols (imageMatches); decoded headers are shared and never changed.
	matched atomic.Pointer[rowcodec.Column]
}

// cascade is a foreign key from another table to this one whose action
// changes the other table's rows.
type cascade struct {
	child    uint32
	onDelete bool     // ON DELETE CASCADE / SET NULL / SET DEFAULT
	onUpdate bool     // ON UPDATE CASCADE / SET NULL / SET DEFAULT
	refCols  []string // the referenced columns of this table
}

type schemaCache struct {
	mu     sync.RWMutex
	tables map[uint32]*tableInfo
	funcs  map[string]funcClass // by name called (funcs.go)
}

// funcClass returns what is known of a name called, no older than maxAge
// (a function created or replaced elsewhere is seen within it).
func (s *schemaCache) funcClass(name string, maxAge time.Duration) (funcClass, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fc, ok := s.funcs[name]
	if ok && time.Since(fc.loaded) > maxAge {
		return funcClass{}, false
	}
	return fc, ok
}

func (s *schemaCache) putFuncClass(name string, fc funcClass) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.funcs == nil || len(s.funcs) >= maxSessionNames {
		s.funcs = map[string]funcClass{}
	}
	s.funcs[name] = fc
}

func (s *schemaCache) get(oid uint32, maxAge time.Duration, now time.Time) *tableInfo {
	s.mu.RLock()
	t := s.tables[oid]
	s.mu.RUnlock()
	if t == nil || now.Sub(t.loaded) > maxAge {
		return nil
	}
	return t
}

// maxKnownTables bounds what a connector keeps of the catalog.
const maxKnownTables = 8192

func (s *schemaCache) put(t *tableInfo) {
	s.mu.Lock()
	if s.tables == nil || len(s.tables) >= maxKnownTables {
		// Bounded: tables created and dropped without end (elsewhere)
		// would grow it; what is dropped is loaded again when used.
		s.tables = make(map[uint32]*tableInfo)
	}
	s.tables[t.oid] = t
	s.mu.Unlock()
}

// cacheable returns the cacheable tables known to the connector.
func (s *schemaCache) cacheable() []*tableInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*tableInfo
	for _, t := range s.tables {
		if t.cacheable {
			out = append(out, t)
		}
	}
	return out
}

// forget drops everything; called after DDL through the wrapper.
func (s *schemaCache) forget() {
	s.mu.Lock()
	s.tables, s.funcs = nil, nil
	s.mu.Unlock()
}

// session is what one connection knows about its own session state. It is
// reset whenever a statement may have changed that state (SET, RESET,
// DISCARD, DDL, anything unknown).
type session struct {
	ready bool
	// inTx: loaded inside a transaction, where a SET LOCAL (or a SET that
	// a rollback undoes) may have changed the role (and so canSelect) or
	// the search_path (and so resolved); it is loaded again once the
	// transaction is over.
	inTx     bool
	database string
	// render: the settings that change how the server renders values as
	// text and that it does not report (extra_float_digits, bytea_output),
	// as the session had them when it was loaded; a statement that may
	// change them reloads the session.
	render string
	// builtinTypes: the unqualified type names a served cast may use
	// resolve to pg_catalog's types in this session (sessionQuery).
	builtinTypes bool
	resolved     map[recognize.Table]uint32
	// canSelect: whether the session's role holds SELECT on the whole
	// table, by OID; only then are its lookups served from Redis and its
	// writes mirrored.
	canSelect map[uint32]bool
	tags      map[*tableInfo]tagKeys // key hash tags, by table version
	// catalogs is the connector's count of catalog changes (change feed)
	// when the session was loaded: a change since reloads it.
	catalogs int64
	// loaded: what the session knows (names, privileges) is asked again
	// after cache_schema_refresh, for changes made outside wtcache.
	loaded time.Time
}

func (s *session) reset() { *s = session{} }

// innerQuery runs an internal query on the inner connection and returns all
// rows. It is used only outside transactions.
func (c *conn) innerQuery(ctx context.Context, query string, args ...any) ([][]driver.Value, error) {
	qc, ok := c.inner.(driver.QueryerContext)
	if !ok {
		return nil, errNoQueryer
	}
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	// A round trip to the server: the lookup's clock (conn.now) is read
	// again after it.
	c.clock = time.Time{}
	rows, err := qc.QueryContext(ctx, query, nv)
	if err != nil {
		c.noteLost(err)
		return nil, err
	}
	defer rows.Close()
	var out [][]driver.Value
	for {
		dest := make([]driver.Value, len(rows.Columns()))
		if err := rows.Next(dest); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			c.noteLost(err)
			return nil, err
		}
		out = append(out, dest)
	}
}

var errNoQueryer = errors.New("wtcache: inner connection has no QueryerContext")

// maxSessionNames bounds the table names a connection keeps resolved.
const maxSessionNames = 1024

// ensureSession loads the session's database (keys are namespaced by it).
func (c *conn) ensureSession(ctx context.Context) error {
	inTx := c.inTx()
	catalogs := c.c.catalogs.Load()
	if c.sess.ready && (!c.sess.inTx || inTx) && c.sess.catalogs == catalogs &&
		c.now().Sub(c.sess.loaded) < c.c.cfg.schemaRefresh {
		return nil
	}
	rows, err := c.innerQuery(ctx, sessionSQL)
	if err != nil {
		return err
	}
	if len(rows) != 1 {
		return fmt.Errorf("wtcache: session query returned %d rows", len(rows))
	}
	builtin, _ := rows[0][2].(bool)
	c.sess = session{ready: true, inTx: inTx, catalogs: catalogs, loaded: time.Now(), database: asString(rows[0][0]), render: asString(rows[0][1]),
		builtinTypes: builtin,
		resolved:     make(map[recognize.Table]uint32), tags: make(map[*tableInfo]tagKeys), canSelect: make(map[uint32]bool)}
	if c.c.cfg.redis != nil {
		c.c.startDBFence(c.sess.database)
	}
	return nil
}

// sessionQuery reads what a session's lookups depend on besides names: the
// database, the rendering settings the server does not report, and whether
// the type names a served cast may spell unqualified (castKeeps, sameType)
// name pg_catalog's types here: a search_path or a temporary schema may put
// a type of another meaning (a domain called text) before them.
const resolveQuery = `SELECT coalesce(pg_catalog.to_regclass($1)::pg_catalog.oid, 0)::pg_catalog.int8,
  coalesce(pg_catalog.has_table_privilege(pg_catalog.to_regclass($1), 'SELECT'), false)`

const sessionQuery = `SELECT pg_catalog.current_database()::pg_catalog.text,
  pg_catalog.concat(pg_catalog.current_setting('extra_float_digits'), '/', pg_catalog.current_setting('bytea_output')),
  (SELECT coalesce(pg_catalog.bool_and(pg_catalog.to_regtype(n)::pg_catalog.oid OPERATOR(pg_catalog.=)
     pg_catalog.to_regtype(pg_catalog.concat('pg_catalog.', n))::pg_catalog.oid), false)
   FROM pg_catalog.unnest('{text,varchar,int8,int4,int2,uuid,bool,float4,float8,date,jsonb,bytea}'::pg_catalog.text[]) n)`

// table resolves a table name in this session and returns what the
// connector knows of it, loading it when needed. It returns nil (and no
// error) for a name that is not a table.
func (c *conn) table(ctx context.Context, t recognize.Table) (*tableInfo, error) {
	if err := c.ensureSession(ctx); err != nil {
		return nil, err
	}
	oid, ok := c.sess.resolved[t]
	if !ok {
		if len(c.sess.resolved) >= maxSessionNames {
			// A cache, bounded: an application that names many tables
			// resolves them again.
			clear(c.sess.resolved)
			clear(c.sess.canSelect)
		}
		rows, err := c.innerQuery(ctx, resolveSQL, quoteTable(t))
		if err != nil {
			return nil, err
		}
		oid = uint32(asInt(rows[0][0]))
		c.sess.resolved[t] = oid
		c.sess.canSelect[oid] = asBool(rows[0][1])
	}
	if oid == 0 {
		return nil, nil
	}
	if ti := c.c.schema.get(oid, c.c.cfg.schemaRefresh, c.now()); ti != nil {
		return ti, nil
	}
	ti, err := c.loadTable(ctx, oid)
	if err != nil {
		return nil, err
	}
	c.c.schema.put(ti)
	return ti, nil
}

const tableQuery = `
SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text, c.relkind::pg_catalog.text, c.relpersistence::pg_catalog.text,
       c.relrowsecurity, c.relhassubclass,
       coalesce((SELECT pg_catalog.array_to_string(i.indkey, ' ') FROM pg_catalog.pg_index i
                 WHERE i.indrelid = c.oid AND i.indisprimary), ''),
       (` + userCodeQuery + `),
       c.relfilenode::pg_catalog.int8,
       c.xmin::pg_catalog.text,
       coalesce((SELECT i.indexrelid FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), 0)::pg_catalog.int8,
       (` + typesQuery + `),
       (` + userEqualityQuery + `)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = $1`

// userEqualityQuery (a column of tableQuery) says whether an = that is not
// PostgreSQL's own (an OID from FirstNormalObjectId on, wherever it was
// made: a superuser may make one in pg_catalog) may compare the table's key: one taking, on either
// side, a key column's type, a domain base under it, a type it casts to
// implicitly, or a polymorphic type. A session whose search_path lists its
// schema before pg_catalog, or whose comparison it fits better, reads
// "WHERE id = $1" as that operator: not a key lookup, and not a write of
// the rows the key names.
const userEqualityQuery = `
WITH RECURSIVE kt(oid) AS (
  SELECT a.atttypid FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid
  WHERE i.indrelid = $1 AND i.indisprimary AND a.attnum = ANY (i.indkey)
  UNION
  SELECT ty.typbasetype FROM kt JOIN pg_catalog.pg_type ty ON ty.oid = kt.oid WHERE ty.typbasetype <> 0),
ks(oid) AS (
  SELECT oid FROM kt
  UNION SELECT ca.casttarget FROM pg_catalog.pg_cast ca JOIN kt ON ca.castsource = kt.oid WHERE ca.castcontext = 'i'
  UNION SELECT ty.oid FROM pg_catalog.pg_type ty WHERE ty.typtype = 'p')
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_operator o
  WHERE o.oprname = '=' AND o.oid >= 16384 AND (o.oprleft IN (SELECT oid FROM ks) OR o.oprright IN (SELECT oid FROM ks)))`

// userCodeQuery (a column of tableQuery) says whether a write to table $1
// may run user code that may write (mayWriteProcs), directly or through an
// operator implemented by such a function: its triggers and rules; its
// defaults, constraints, index expressions and policies; the defaults and
// constraints of every domain its columns are made of (typeClosure, at any
// depth: under domains, arrays, composites, ranges); a user cast to or
// from one of those types (an assignment or a comparison applies it
// unseen); the support functions and operators of its indexes' operator
// classes, of its partition key, of those types' default classes and range
// subtypes, of the index a foreign key of its checks, and of the indexes
// of tables whose foreign keys reference it (their checks scan them).
const userCodeQuery = typeClosure + `,
procs(oid) AS ` + mayWriteProcs + `,
ops(oid) AS (SELECT o.oid FROM pg_catalog.pg_operator o WHERE o.oprcode IN (SELECT oid FROM procs)),
fams(oid) AS (
  SELECT oc.opcfamily FROM pg_catalog.pg_index i JOIN pg_catalog.pg_opclass oc ON oc.oid = ANY (i.indclass) WHERE i.indrelid = $1
  UNION SELECT oc.opcfamily FROM pg_catalog.pg_opclass oc WHERE oc.opcdefault AND oc.opcintype IN (SELECT oid FROM types)
  UNION SELECT oc.opcfamily FROM pg_catalog.pg_partitioned_table pt JOIN pg_catalog.pg_opclass oc ON oc.oid = ANY (pt.partclass) WHERE pt.partrelid = $1
  UNION SELECT oc.opcfamily FROM pg_catalog.pg_range r JOIN pg_catalog.pg_opclass oc ON oc.oid = r.rngsubopc WHERE r.rngtypid IN (SELECT oid FROM types)
  UNION SELECT oc.opcfamily FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_index i ON i.indexrelid = con.conindid
    JOIN pg_catalog.pg_opclass oc ON oc.oid = ANY (i.indclass) WHERE con.conrelid = $1 AND con.contype = 'f'
  UNION SELECT oc.opcfamily FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_index i ON i.indrelid = con.conrelid
    JOIN pg_catalog.pg_opclass oc ON oc.oid = ANY (i.indclass) WHERE con.confrelid = $1 AND con.contype = 'f')
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = $1 AND NOT t.tgisinternal)
  OR EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r WHERE r.ev_class = $1 AND r.rulename <> '_RETURN')
  OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
             WHERE (d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.refobjid IN (SELECT oid FROM procs)
                    OR d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass AND d.refobjid IN (SELECT oid FROM ops))
               AND (d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid IN (SELECT oid FROM pg_catalog.pg_attrdef WHERE adrelid = $1)
                    OR d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid IN (
                      SELECT oid FROM pg_catalog.pg_constraint WHERE conrelid = $1 OR contypid IN (SELECT oid FROM types))
                    OR d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.objid IN (SELECT oid FROM types)
                    OR d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid IN (SELECT indexrelid FROM pg_catalog.pg_index WHERE indrelid = $1)
                    OR d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND d.objid IN (SELECT oid FROM pg_catalog.pg_policy WHERE polrelid = $1)))
  OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast ca WHERE ca.castfunc IN (SELECT oid FROM procs)
             AND (ca.castsource IN (SELECT oid FROM types) OR ca.casttarget IN (SELECT oid FROM types)))
  OR EXISTS (SELECT 1 FROM pg_catalog.pg_amproc ap WHERE ap.amprocfamily IN (SELECT oid FROM fams) AND ap.amproc IN (SELECT oid FROM procs))
  OR EXISTS (SELECT 1 FROM pg_catalog.pg_amop ao WHERE ao.amopfamily IN (SELECT oid FROM fams) AND ao.amopopr IN (SELECT oid FROM ops))`

// mayWriteProcs are the user functions that may write (see funcsQuery):
// a table whose defaults, constraints (its own and its columns' domains'),
// index expressions or policies call one runs user code on a write.
const mayWriteProcs = `(SELECT p.oid FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
  WHERE p.oid >= 16384 AND ` + mayWritePred + `)`

// mayWritePred says whether the function p (its pg_proc row; l its
// pg_language row), not PostgreSQL's own, may write: it is VOLATILE; or it
// is written in SQL or a procedural language (a STABLE function that calls
// a VOLATILE one writes too, and PostgreSQL does not forbid it), unless an
// extension installed it (an extension's code is taken at its word, as a C
// function is); or it is an aggregate or window function one of whose
// support functions may write. A C function marked STABLE or IMMUTABLE is
// taken at its word.
const mayWritePred = `(p.provolatile = 'v'
    OR l.lanname NOT IN ('c', 'internal') AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend xd
      WHERE xd.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND xd.objid = p.oid AND xd.deptype = 'e')
    OR p.prokind IN ('a', 'w') AND EXISTS (SELECT 1 FROM pg_catalog.pg_aggregate ag
      JOIN pg_catalog.pg_proc sp ON sp.oid IN (ag.aggtransfn, ag.aggfinalfn, ag.aggcombinefn, ag.aggserialfn, ag.aggdeserialfn,
                                               ag.aggmtransfn, ag.aggminvtransfn, ag.aggmfinalfn)
      JOIN pg_catalog.pg_language sl ON sl.oid = sp.prolang
      WHERE ag.aggfnoid = p.oid AND sp.oid >= 16384 AND (sp.provolatile = 'v' OR sl.lanname NOT IN ('c', 'internal'))))`

// readHazardsQuery lists the names whose mention may run user code that
// may write (mayWriteProcs, directly or through an operator it
// implements): views (and materialized views) whose definition calls such
// code or reads such a relation, nested to any depth; tables whose
// row-level security policies call it, or with an index whose operator
// class does (an index scan calls it), or with a column of a type with a
// user cast or a default operator class that does; domains whose constraints or default
// call it (a cast to the domain checks them); types with a user cast that
// runs it, and types whose default operator class calls it (sorting,
// grouping and comparing do). (A table whose column is of a type made of
// such a type, under a domain, an array or a composite, is not listed:
// README, limitations.) The recursion over views starts from one array
// (seeds): the planner then expects few relations and follows pg_depend by
// index; seeded from the joins themselves, it costs the plan high enough
// for PostgreSQL to compile it with JIT, which takes seconds.
const readHazardsQuery = `
WITH RECURSIVE procs(oid) AS ` + mayWriteProcs + `,
ops(oid) AS (SELECT o.oid FROM pg_catalog.pg_operator o WHERE o.oprcode IN (SELECT oid FROM procs)),
fams(oid) AS (
  SELECT ap.amprocfamily FROM pg_catalog.pg_amproc ap WHERE ap.amproc IN (SELECT oid FROM procs)
  UNION SELECT ao.amopfamily FROM pg_catalog.pg_amop ao WHERE ao.amopopr IN (SELECT oid FROM ops)),
dep(classid, objid) AS (
  SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
  WHERE d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.refobjid IN (SELECT oid FROM procs)
     OR d.refclassid = 'pg_catalog.pg_operator'::pg_catalog.regclass AND d.refobjid IN (SELECT oid FROM ops)),
seeds(a) AS (SELECT pg_catalog.array_agg(x) FROM (
  SELECT r.ev_class FROM pg_catalog.pg_rewrite r JOIN dep d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
  UNION
  SELECT pol.polrelid FROM pg_catalog.pg_policy pol JOIN dep d ON d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND d.objid = pol.oid
  UNION
  SELECT i.indrelid FROM pg_catalog.pg_index i JOIN pg_catalog.pg_opclass oc ON oc.oid = ANY (i.indclass) WHERE oc.opcfamily IN (SELECT oid FROM fams)
  UNION
  SELECT a.attrelid FROM pg_catalog.pg_attribute a WHERE a.attnum > 0 AND (
    a.atttypid IN (SELECT ca.castsource FROM pg_catalog.pg_cast ca WHERE ca.castfunc IN (SELECT oid FROM procs))
    OR a.atttypid IN (SELECT ca.casttarget FROM pg_catalog.pg_cast ca WHERE ca.castfunc IN (SELECT oid FROM procs))
    OR a.atttypid IN (SELECT oc.opcintype FROM pg_catalog.pg_opclass oc WHERE oc.opcdefault AND oc.opcfamily IN (SELECT oid FROM fams)))) s(x)),
hz(rel) AS (
  SELECT pg_catalog.unnest(a) FROM seeds
  UNION
  SELECT r.ev_class FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
  JOIN hz ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = hz.rel)
SELECT c.relname::pg_catalog.text FROM hz JOIN pg_catalog.pg_class c ON c.oid = hz.rel
UNION
SELECT t.typname::pg_catalog.text FROM pg_catalog.pg_type t JOIN pg_catalog.pg_constraint con ON con.contypid = t.oid
  JOIN dep d ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = con.oid
UNION
SELECT t.typname::pg_catalog.text FROM pg_catalog.pg_type t JOIN dep d ON d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.objid = t.oid
UNION
SELECT t.typname::pg_catalog.text FROM pg_catalog.pg_cast ca JOIN pg_catalog.pg_type t ON t.oid IN (ca.castsource, ca.casttarget)
WHERE ca.castfunc IN (SELECT oid FROM procs)
UNION
SELECT t.typname::pg_catalog.text FROM pg_catalog.pg_opclass oc JOIN pg_catalog.pg_type t ON t.oid = oc.opcintype
WHERE oc.opcdefault AND oc.opcfamily IN (SELECT oid FROM fams)`

// columnsQuery reads the columns; render says how a value reaches the
// driver: 's' rendered as text under the session's TimeZone, DateStyle or
// IntervalStyle (an interval, arrays and ranges of dates, timestamps and
// intervals, composites, types of an extension), 'u' rendered under a
// setting the server does not report (money: lc_monetary), ” neither.
const columnsQuery = `
SELECT a.attnum::pg_catalog.int8, a.attname::pg_catalog.text, a.atttypid::pg_catalog.int8, b.oid::pg_catalog.int8,
       coalesce(coll.collisdeterministic, true),
       CASE
         WHEN b.oid = 790 OR e.oid = 790 OR r.rngsubtype = 790 THEN 'u'
         WHEN b.oid = 1186 OR b.typtype = 'c' OR e.typtype = 'c'
           OR (e.oid <> b.oid AND e.oid IN (1082, 1114, 1184, 1186, 700, 701, 17))
           OR e.oid IN (600, 601, 602, 603, 604, 628, 718)
           OR r.rngsubtype IN (1082, 1114, 1184, 1186)
           OR b.oid >= 16384 OR e.oid >= 16384 THEN 's'
         ELSE ''
       END,
       a.atttypmod::pg_catalog.int8,
       a.xmin::pg_catalog.text
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_type b ON b.oid = (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END)
JOIN pg_catalog.pg_type e ON e.oid = (CASE WHEN b.typelem <> 0 AND b.typlen = -1 THEN b.typelem ELSE b.oid END)
LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = e.oid OR r.rngmultitypid = e.oid
LEFT JOIN pg_catalog.pg_collation coll ON coll.oid = a.attcollation
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

// typeClosure is the CTE types(oid): every type the columns of table $1
// are made of (a domain's base, an array's element, a range's subtype, a
// multirange's range, a composite's attributes, at any depth).
const typeClosure = `
WITH RECURSIVE types(oid) AS (
  SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
  UNION
  SELECT n.oid FROM types t JOIN pg_catalog.pg_type ty ON ty.oid = t.oid
  CROSS JOIN LATERAL (
    SELECT ty.typbasetype UNION ALL SELECT ty.typelem
    UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = ty.oid
    UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = ty.oid
    UNION ALL SELECT ca.atttypid FROM pg_catalog.pg_attribute ca WHERE ca.attrelid = ty.typrelid AND ty.typrelid <> 0 AND ca.attnum > 0
  ) n(oid) WHERE n.oid <> 0
)`

// typesQuery (a column of tableQuery) follows every column's type to the
// types it is made of
// (a domain's base, an array's element, a range's subtype, a multirange's
// range, a composite's attributes, at any depth) and returns the versions
// of what of them can change under the same OID: user types' pg_type rows
// and output functions, enums' labels, composites' pg_class and
// pg_attribute rows (tableShape), after "u|" when any of them renders
// catalog names or a setting the server does not report ("|" otherwise:
// money, aclitem, the reg*
// types, or a user type whose output is one of theirs: the session's
// search_path decides how a regclass reads, a role's name how an aclitem
// reads).
const typesQuery = typeClosure + `
SELECT pg_catalog.concat(CASE WHEN EXISTS (SELECT 1 FROM types t JOIN pg_catalog.pg_type ty ON ty.oid = t.oid JOIN pg_catalog.pg_proc p ON p.oid = ty.typoutput
               WHERE t.oid IN (790, 1033, 24, 2202, 2203, 2204, 2205, 2206, 3734, 3769, 4089, 4096, 4191)
                  OR p.prosrc IN ('cash_out', 'aclitemout', 'regprocout', 'regprocedureout', 'regoperout', 'regoperatorout', 'regclassout',
                                  'regtypeout', 'regconfigout', 'regdictionaryout', 'regnamespaceout', 'regroleout', 'regcollationout'))
       THEN 'u|' ELSE '|' END, coalesce((SELECT pg_catalog.string_agg(v, ',' ORDER BY v) FROM (
  SELECT pg_catalog.concat('t', ty.oid, '.', ty.xmin) FROM types t JOIN pg_catalog.pg_type ty ON ty.oid = t.oid WHERE ty.oid >= 16384
  UNION ALL SELECT pg_catalog.concat('e', en.oid, '.', en.xmin) FROM types t JOIN pg_catalog.pg_enum en ON en.enumtypid = t.oid
  UNION ALL SELECT pg_catalog.concat('c', c.oid, '.', c.xmin) FROM types t JOIN pg_catalog.pg_type ty ON ty.oid = t.oid JOIN pg_catalog.pg_class c ON c.oid = ty.typrelid
  UNION ALL SELECT pg_catalog.concat('a', ca.attrelid, '.', ca.attnum, '.', ca.xmin) FROM types t JOIN pg_catalog.pg_type ty ON ty.oid = t.oid JOIN pg_catalog.pg_attribute ca ON ca.attrelid = ty.typrelid AND ty.typrelid <> 0
  UNION ALL SELECT pg_catalog.concat('p', p.oid, '.', p.xmin) FROM types t JOIN pg_catalog.pg_type ty ON ty.oid = t.oid JOIN pg_catalog.pg_proc p ON p.oid = ty.typoutput WHERE ty.oid >= 16384
) s(v)), ''))`

const cascadesQuery = `
SELECT con.conrelid::pg_catalog.int8, con.confdeltype IN ('c', 'n', 'd'), con.confupdtype IN ('c', 'n', 'd'),
       (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ' ') FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = con.confrelid AND a.attnum = ANY(con.confkey))
FROM pg_catalog.pg_constraint con
WHERE con.confrelid = $1 AND con.contype = 'f'
  AND (con.confdeltype IN ('c', 'n', 'd') OR con.confupdtype IN ('c', 'n', 'd'))`

const descendantsQuery = `
WITH RECURSIVE d(oid) AS (
  SELECT inhrelid FROM pg_catalog.pg_inherits WHERE inhparent = $1
  UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.oid)
SELECT oid::pg_catalog.int8 FROM d`

func (c *conn) loadTable(ctx context.Context, oid uint32) (*tableInfo, error) {
	rows, err := c.catalogRead(ctx, tableSQL, int64(oid))
	if err != nil {
		return nil, err
	}
	ti := &tableInfo{oid: oid, loaded: time.Now(), colIdx: map[string]int{}}
	if len(rows) != 1 {
		ti.reason = "table vanished"
		return ti, nil
	}
	r := rows[0]
	ti.ident = recognize.Table{Schema: asString(r[0]), Name: asString(r[1])}
	relkind, persistence := asString(r[2]), asString(r[3])
	rls, hasChildren := asBool(r[4]), asBool(r[5])
	pkAttnums := strings.Fields(asString(r[6]))
	ti.userCode = asBool(r[7]) && !c.c.cfg.triggersTrusted(ti.ident)

	cols, err := c.catalogRead(ctx, columnsSQL, int64(oid))
	if err != nil {
		return nil, err
	}
	attIdx := map[string]int{}
	for _, cr := range cols {
		ci := columnInfo{name: asString(cr[1]), typeOID: uint32(asInt(cr[2])), typmod: asInt(cr[6]),
			version: asString(cr[0]) + "/" + asString(cr[7])}
		base := uint32(asInt(cr[3]))
		ci.keyKind = keyKindOf(base, asBool(cr[4]))
		ci.intBits = map[uint32]int{21: 16, 23: 32, 20: 64}[base]
		switch asString(cr[5]) {
		case "s":
			ti.rendered = true
		case "u":
			ti.unreported = true
		}
		attIdx[fmt.Sprint(asInt(cr[0]))] = len(ti.cols)
		ti.colIdx[ci.name] = len(ti.cols)
		ti.cols = append(ti.cols, ci)
	}
	ti.userEquality = asBool(r[12])
	flag, types, _ := strings.Cut(asString(r[11]), "|")
	ti.unreported = ti.unreported || flag == "u"
	ti.shape = tableShape(asInt(r[8]), asString(r[9])+"|"+types, asInt(r[10]), ti.cols)
	for _, a := range pkAttnums {
		i, ok := attIdx[a]
		if !ok {
			ti.pk = nil
			break
		}
		ti.pk = append(ti.pk, i)
	}

	deps, err := c.catalogRead(ctx, cascadesSQL, int64(oid))
	if err != nil {
		return nil, err
	}
	for _, d := range deps {
		ti.cascades = append(ti.cascades, cascade{
			child:    uint32(asInt(d[0])),
			onDelete: asBool(d[1]),
			onUpdate: asBool(d[2]),
			refCols:  strings.Fields(asString(d[3])),
		})
	}

	ti.view = relkind == "v"
	if hasChildren || relkind == "p" {
		kids, err := c.catalogRead(ctx, descendantsSQL, int64(oid))
		if err != nil {
			return nil, err
		}
		for _, k := range kids {
			ti.descendants = append(ti.descendants, uint32(asInt(k[0])))
		}
	}

	switch {
	case relkind != "r":
		ti.reason = "not an ordinary table (view, partitioned table, foreign table...)"
	case persistence == "t":
		ti.reason = "temporary table"
	case persistence == "u" && c.c.cfg.feed:
		// Writes to an unlogged table never reach the log: the change
		// feed cannot keep its bound for it.
		ti.reason = "unlogged table (the change feed cannot see its writes)"
	case ti.unreported:
		ti.reason = "a column renders under a setting the server does not report (money: lc_monetary; catalog names: search_path)"
	case rls:
		ti.reason = "row-level security enabled"
	case hasChildren:
		ti.reason = "has inheritance children"
	case len(ti.pk) == 0:
		ti.reason = "no primary key"
	case !c.c.cfg.tableSelected(ti.ident):
		ti.reason = "excluded by configuration"
	default:
		ti.cacheable = true
		for _, i := range ti.pk {
			if ti.cols[i].keyKind == keyUnsupported {
				ti.cacheable = false
				ti.reason = "primary-key type not supported"
			}
		}
	}
	if ti.cacheable {
		ti.near = c.c.near != nil && c.c.cfg.localSelected(ti.ident)
		ti.selectAll = buildSelectAll(ti)
		ti.selectOne = buildSelectOne(ti)
	}
	return ti, nil
}

// writeSelectFrom writes "SELECT <every column> FROM <table>".
func writeSelectFrom(b *strings.Builder, ti *tableInfo) {
	b.WriteString("SELECT ")
	for i, c := range ti.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(c.name))
	}
	b.WriteString(" FROM ")
	b.WriteString(quoteTable(ti.ident))
}

// buildSelectOne builds the statement a miss of one key runs: every
// column, by key, each key value as text cast to the column's type.
func buildSelectOne(ti *tableInfo) string {
	var b strings.Builder
	writeSelectFrom(&b, ti)
	for i, k := range ti.pk {
		if i == 0 {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		fmt.Fprintf(&b, "%s OPERATOR(pg_catalog.=) $%d::pg_catalog.text::%s", quoteIdent(ti.cols[k].name), i+1, keyCast(ti.cols[k].keyKind))
	}
	return b.String()
}

// buildSelectAll builds the statement a miss runs: every column, by key,
// for many keys at once. Key values travel as text arrays and are cast to
// the column's type by PostgreSQL, so one statement serves every key type.
func buildSelectAll(ti *tableInfo) string {
	var b strings.Builder
	writeSelectFrom(&b, ti)
	if len(ti.pk) == 1 {
		col := ti.cols[ti.pk[0]]
		fmt.Fprintf(&b, " WHERE %s OPERATOR(pg_catalog.=) ANY($1::pg_catalog.text[]::%s[])", quoteIdent(col.name), keyCast(col.keyKind))
		return b.String()
	}
	b.WriteString(" WHERE (")
	for i, k := range ti.pk {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(ti.cols[k].name))
	}
	// ROWS FROM: the multi-argument unnest shorthand is only for the
	// unqualified name.
	b.WriteString(") OPERATOR(pg_catalog.=) ANY (SELECT * FROM ROWS FROM (")
	for i, k := range ti.pk {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "pg_catalog.unnest($%d::pg_catalog.text[]::%s[])", i+1, keyCast(ti.cols[k].keyKind))
	}
	b.WriteString("))")
	return b.String()
}

func keyCast(k keyKind) string {
	switch k {
	case keyInt:
		return "pg_catalog.int8"
	case keyUUID:
		return "pg_catalog.uuid"
	default:
		return "pg_catalog.text"
	}
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func quoteTable(t recognize.Table) string {
	if t.Schema == "" {
		return quoteIdent(t.Name)
	}
	return quoteIdent(t.Schema) + "." + quoteIdent(t.Name)
}

func asString(v driver.Value) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func asInt(v driver.Value) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case string:
		var n int64
		fmt.Sscan(x, &n)
		return n
	}
	return 0
}

func asBool(v driver.Value) bool {
	b, _ := v.(bool)
	return b
}

// tableShape is the hash an image of the table records (rowcodec's
// Row.Shape), the same in every process for one state of the catalog:
//   - the table's storage (relfilenode: a new one after TRUNCATE, a
//     rewriting ALTER TABLE, VACUUM FULL or CLUSTER);
//   - its pg_class row's version (xmin: RENAME, SET SCHEMA, row-level
//     security turned on or off, most ALTER TABLE forms);
//   - its primary key's index (dropped and made again);
//   - each column's type modifier (varchar(n), numeric(p,s), timestamp(p),
//     none of which moves the type's OID) and version (columnInfo: a column
//     dropped and added again under its name and type, any ALTER COLUMN);
//   - in classVersion too, the versions of the types the columns are made
//     of, at any depth (typesQuery: an enum's label renamed, a composite's
//     attribute added or dropped, under domains, arrays and ranges).
//
// A change made anywhere makes the table's older images misses once the
// catalog is read again (cache_schema_refresh), as a change of a column's
// name or type does.
func tableShape(relfilenode int64, classVersion string, pkIndex int64, cols []columnInfo) uint64 {
	h := fnv.New64a()
	var b [8]byte
	put := func(n int64) {
		binary.BigEndian.PutUint64(b[:], uint64(n))
		h.Write(b[:])
	}
	put(relfilenode)
	put(pkIndex)
	h.Write([]byte(classVersion))
	for _, c := range cols {
		put(c.typmod)
		put(int64(len(c.version)))
		h.Write([]byte(c.version))
	}
	return h.Sum64()
}
