package wtcache

import (
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"github.com/wtcache/wtcache/internal/recognize"
)

// plan is what wtcache decides once per statement text: its classification
// and, for a lookup, its binding to each table it was resolved to.
type plan struct {
	text      string
	table     string // db.collection.name, when the statement names one table
	operation string // db.operation.name, when known (SELECT, UPDATE, ...)
	class     recognize.Classification
	lookup    *recognize.Lookup // the single statement's lookup, if any
	// casts: the lookup casts a value or an output column (served only
	// where the session's type names are pg_catalog's).
	casts bool

	// passive: every statement is a read, a SHOW, or a transaction or
	// session statement; nothing to invalidate.
	passive bool
	// session: some statement may change session state (SET, RESET,
	// DISCARD, DDL, unknown): forget the session's name resolution.
	session bool
	ddl     bool
	txOp    recognize.TxOp // the single statement's transaction op, if KindTx
	commits bool           // some statement is COMMIT (or END)
	// txControl: some statement is transaction control (BEGIN, COMMIT,
	// ROLLBACK, SAVEPOINT, PREPARE TRANSACTION, ...).
	txControl bool

	mu    sync.Mutex
	bound map[uint32]bindEntry // by table OID

	hits atomic.Pointer[hitCount] // see op.outcome
	// missed: the text's last lookup of many keys had misses (readThrough
	// then reads the versions with the images, in one round trip).
	missed   atomic.Bool
	nearHits atomic.Pointer[hitCount]
	// facts: what the catalog said of the text's calls and operators
	// (funcs.go), while the catalog has not changed and it is young.
	facts atomic.Pointer[factsMemo]
}

func newPlan(query string) *plan {
	p := &plan{text: query, class: recognize.Classify(query)}
	p.passive = true
	for i := range p.class.Statements {
		s := &p.class.Statements[i]
		switch s.Kind {
		case recognize.KindRead:
		case recognize.KindTx:
			p.txControl = true
			if s.AllTables {
				// COMMIT PREPARED: another session's writes become
				// visible now.
				p.passive = false
			}
			if len(p.class.Statements) == 1 {
				p.txOp = s.Tx
			}
			// COMMIT, and the ones that end a transaction in other ways
			// (COMMIT AND CHAIN, PREPARE TRANSACTION, ...): the pending
			// writes get their intents before and their release after.
			if s.Tx == recognize.TxCommit || s.Tx == recognize.TxOther {
				p.commits = true
			}
		case recognize.KindSession:
			p.session = true
		case recognize.KindDDL:
			p.ddl, p.session, p.passive = true, true, false
		default:
			if s.Kind == recognize.KindUnknown {
				p.session = true
			}
			p.passive = false
		}
	}
	if containsFold(query, "set_config") {
		// SELECT set_config('search_path', ...) changes the session.
		p.session = true
	}
	if len(p.class.Statements) == 1 && p.class.Statements[0].Kind == recognize.KindRead {
		p.lookup = p.class.Statements[0].Lookup
		p.casts = p.lookup != nil && lookupCasts(p.lookup)
	}
	if len(p.class.Statements) == 1 {
		s := &p.class.Statements[0]
		switch {
		case s.Lookup != nil:
			p.operation, p.table = "SELECT", s.Lookup.Table.Name
		case s.Write != nil:
			p.operation, p.table = s.Write.Op, s.Write.Table.Name
		case s.Kind == recognize.KindTx:
			p.operation = strings.ToUpper(s.Tx.String())
		default:
			p.operation = firstKeyword(query)
			if len(s.Tables) == 1 {
				p.table = s.Tables[0].Name
			}
		}
	}
	return p
}

// planCache is a map from statement text to plan, bounded in count and in
// bytes. Applications that inline literals (bun) send a new text for every
// key; when the map is full a quarter of it is dropped, so memory stays
// bounded. A text longer than maxPlanText is classified every time and
// never kept: its classification costs no more than sending it.
type planCache struct {
	mu       sync.RWMutex
	max      int
	maxBytes int
	bytes    int
	plans    map[string]*plan
}

const (
	maxPlanText       = 16 << 10
	defaultPlanBytes  = 16 << 20
	planOverheadBytes = 512 // a plan's own size beside its text, roughly
)

func (pc *planCache) get(query string) *plan {
	pc.mu.RLock()
	p := pc.plans[query]
	pc.mu.RUnlock()
	if p != nil {
		return p
	}
	p = newPlan(query)
	if len(query) > maxPlanText {
		return p
	}
	maxBytes := pc.maxBytes
	if maxBytes <= 0 {
		maxBytes = defaultPlanBytes
	}
	pc.mu.Lock()
	if pc.plans == nil {
		pc.plans = make(map[string]*plan)
	}
	size := len(query) + planOverheadBytes
	for len(pc.plans) > 0 && (len(pc.plans) >= pc.max || pc.bytes+size > maxBytes) {
		drop := len(pc.plans)/4 + 1
		for k := range pc.plans { // map order is random
			pc.bytes -= len(k) + planOverheadBytes
			delete(pc.plans, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	if old, ok := pc.plans[query]; ok {
		pc.mu.Unlock()
		return old
	}
	pc.plans[query] = p
	pc.bytes += size
	pc.mu.Unlock()
	return p
}

func (pc *planCache) len() int {
	pc.mu.RLock()
	defer pc.mu.RUnlock()
	return len(pc.plans)
}

// guarded reports whether a statement needs the write path on c: it may
// write, or it commits a transaction that wrote.
func (c *conn) guarded(p *plan) bool {
	return !p.passive || (p.commits && c.pending != nil)
}

// firstKeyword returns the statement's first word in upper case (SELECT,
// TRUNCATE, ...), skipping comments, or "" when it is not a plain word.
func firstKeyword(q string) string {
	for {
		q = strings.TrimLeftFunc(q, unicode.IsSpace)
		switch {
		case strings.HasPrefix(q, "--"):
			if i := strings.IndexByte(q, '\n'); i >= 0 {
				q = q[i+1:]
				continue
			}
			return ""
		case strings.HasPrefix(q, "/*"):
			if i := strings.Index(q, "*/"); i >= 0 {
				q = q[i+2:]
				continue
			}
			return ""
		}
		break
	}
	end := 0
	for end < len(q) && end < 16 && (q[end] >= 'a' && q[end] <= 'z' || q[end] >= 'A' && q[end] <= 'Z') {
		end++
	}
	if end == 0 || end == 16 {
		return ""
	}
	return strings.ToUpper(q[:end])
}

// containsFold reports whether s contains the lower-case ASCII word w in
// any letter case.
func containsFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(w)], w) {
			return true
		}
	}
	return false
}

// lookupCasts reports whether l casts a value or an output column.
func lookupCasts(l *recognize.Lookup) bool {
	for _, c := range l.Columns {
		if c.Cast != "" {
			return true
		}
	}
	for _, p := range l.Preds {
		if p.Value.Cast != "" {
			return true
		}
		for _, v := range p.List {
			if v.Cast != "" {
				return true
			}
		}
	}
	return false
}
