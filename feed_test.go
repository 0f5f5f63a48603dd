package wtcache

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache/internal/rowcodec"
)

// The change feed, against real PostgreSQL (wal_level=logical) and Redis.
//
// The outside-writer checker (TestFeedChecker): writers that never go
// through wtcache (plain pgx UPDATEs, a function, a trigger fired by
// INSERTs, COPY) change rows whose value only ever grows, and readers
// through wtcache in several operating-system processes (this test binary,
// run again as children) read them, while the follower's process is
// killed, its replication connection cut, Redis restarted and every
// connection of the readers terminated (PostgreSQL restarting, as its
// clients see it). Every read is checked: it must not return a value older
// than a write that committed more than cache_feed_max_lag before the read
// began. With the feed off the same run must fail.

func feedServices(t testing.TB) itEnv {
	t.Helper()
	e := needServices(t)
	p := e.plain(t)
	var level string
	if err := p.QueryRow(`SHOW wal_level`).Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		msg := "the change feed's tests need PostgreSQL with wal_level=logical (.ci/run sets it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if err := SetupFeed(context.Background(), p, ""); err != nil {
		t.Fatal(err)
	}
	return e
}

const feedTestLag = 500 * time.Millisecond

// feedRows: one writer per row, so that each knows the value it left.
const (
	feedRowsPlain    = 1 // rows 1-2: UPDATE through plain pgx
	feedRowsFunction = 3 // rows 3-4: a function that updates
	feedRowsTrigger  = 5 // rows 5-6: an INSERT whose trigger updates
	feedRowsCopy     = 7 // rows 7-8: COPY into the table with that trigger
	feedRows         = 8
	// Rows 9-12 are written once right after each fault and otherwise
	// left alone, so that a change the feed missed is not soon covered by
	// a later one; readers read them only while the parent lets them
	// (sparse.on exists), and the parent stops them during the fault, so
	// that no reader's fill heals a missed change before the new stream
	// serves.
	feedSparse = 4
)

type feedWrite struct {
	v        int64
	returned int64 // unix ns when its COMMIT returned
}

type feedRead struct {
	row, v       int64
	start, end   int64 // unix ns
	proc, handle int
	hit          bool   // served from Redis
	epoch        string // the feed's epoch the reader knew
	until        int64  // until when its claim held (unix ns)
}

type feedChecker struct {
	t       *testing.T
	e       itEnv
	plain   *sql.DB
	table   string
	prefix  string
	rs      *redisServer
	feedOn  bool
	maxLag  time.Duration
	dir     string
	mu      sync.Mutex
	writes  map[int64][]feedWrite
	kids    map[int]*exec.Cmd
	nextKid int
	faults  []string
	faultAt []int64
	start   time.Time
	paused  atomic.Bool // writers hold off (for an audit)
	audits  []string    // differences found by the audits after each fault
}

func newFeedChecker(t *testing.T, feedOn bool) *feedChecker {
	e := feedServices(t)
	k := &feedChecker{t: t, e: e, plain: e.plain(t), feedOn: feedOn, maxLag: feedTestLag,
		dir: t.TempDir(), writes: map[int64][]feedWrite{}, kids: map[int]*exec.Cmd{}, start: time.Now()}
	if os.Getenv("WTCACHE_FEED_TRACE") == "1" {
		// Keep the readers' logs (with the followers' traces) for study.
		if d, err := os.MkdirTemp("", "wtcache-feed-"); err == nil {
			k.dir = d
			t.Logf("readers' logs and traces in %s", d)
		}
	}
	k.table = fmt.Sprintf("feedck_%d_%d", os.Getpid(), outageSeq.Add(1))
	k.prefix = fmt.Sprintf("fck%d-%d", time.Now().UnixNano()%1e9, prefixSeq.Add(1))
	k.rs = startRedisServer(t)
	tb, fn, lg, trg := k.table, k.table+"_bump", k.table+"_log", k.table+"_trg"
	mustExec(t, k.plain, fmt.Sprintf(`
		DROP TABLE IF EXISTS %[1]s, %[3]s;
		CREATE TABLE %[1]s (id bigint PRIMARY KEY, v bigint NOT NULL);
		INSERT INTO %[1]s SELECT g, 0 FROM generate_series(1, %[5]d) g;
		CREATE TABLE %[3]s (id bigint NOT NULL);
		CREATE FUNCTION %[2]s(k bigint) RETURNS bigint LANGUAGE sql AS
		  'UPDATE %[1]s SET v = v + 1 WHERE id = k RETURNING v';
		CREATE FUNCTION %[4]s() RETURNS trigger LANGUAGE plpgsql AS
		  $$ BEGIN UPDATE %[1]s SET v = v + 1 WHERE id = NEW.id; RETURN NULL; END $$;
		CREATE TRIGGER bump AFTER INSERT ON %[3]s FOR EACH ROW EXECUTE FUNCTION %[4]s();`,
		tb, fn, lg, trg, feedRows+feedSparse))
	t.Cleanup(func() {
		k.stopKids()
		ctx := context.Background()
		_, _ = k.plain.ExecContext(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %s, %s; DROP FUNCTION IF EXISTS %s(bigint); DROP FUNCTION IF EXISTS %s()`, tb, lg, fn, trg))
	})
	return k
}

// dsn is the wtcache DSN of child n.
func (k *feedChecker) dsn(n int) string {
	feed := "off"
	if k.feedOn {
		feed = "on"
	}
	sep := "?"
	if strings.Contains(k.e.dbURL, "?") {
		sep = "&"
	}
	return k.e.dbURL + sep + "cache_redis=" + url.QueryEscape(k.rs.url()) + "&cache_prefix=" + k.prefix +
		"&cache_feed=" + feed + "&cache_feed_max_lag=" + k.maxLag.String() + "&cache_timeout=200ms" +
		"&cache_tables=" + k.table + "&application_name=feedck_" + strconv.Itoa(n)
}

// startKid starts a reader process.
func (k *feedChecker) startKid() int {
	k.mu.Lock()
	n := k.nextKid
	k.nextKid++
	k.mu.Unlock()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFeedReaderChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "WTCACHE_FEED_CHILD=1", "WTCACHE_FEED_DSN="+k.dsn(n),
		"WTCACHE_FEED_TABLE="+k.table, "WTCACHE_FEED_OUT="+filepath.Join(k.dir, fmt.Sprintf("reads-%d", n)),
		"WTCACHE_FEED_PROC="+strconv.Itoa(n))
	out, err := os.Create(filepath.Join(k.dir, fmt.Sprintf("out-%d", n)))
	if err != nil {
		k.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		k.t.Fatal(err)
	}
	k.mu.Lock()
	k.kids[n] = cmd
	k.mu.Unlock()
	go func() { _ = cmd.Wait(); _ = out.Close() }()
	return n
}

func (k *feedChecker) stopKids() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for n, cmd := range k.kids {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
		delete(k.kids, n)
	}
}

func (k *feedChecker) fault(format string, args ...any) {
	msg := fmt.Sprintf("%7.3fs ", time.Since(k.start).Seconds()) + fmt.Sprintf(format, args...)
	k.mu.Lock()
	k.faults = append(k.faults, msg)
	k.faultAt = append(k.faultAt, time.Now().UnixNano())
	k.mu.Unlock()
	k.t.Log(msg)
}

// sparseReads lets the readers read the sparse rows, or stops them.
func (k *feedChecker) sparseReads(on bool) {
	p := filepath.Join(k.dir, "sparse.on")
	if on {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			k.t.Fatal(err)
		}
		return
	}
	_ = os.Remove(p)
	time.Sleep(50 * time.Millisecond) // the readers notice within 10 ms
}

// newStream waits until a stream other than the one whose status was
// prev publishes, and returns its status.
func (k *feedChecker) newStream(rdb *redis.Client, prev string) string {
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := rdb.Get(context.Background(), k.statusKey()).Result()
		if e, c, _, _, ok := parseFeedStatus(st); ok {
			pe, pc, _, _, _ := parseFeedStatus(prev)
			if e != pe || c != pc {
				return st
			}
		}
		if time.Now().After(deadline) {
			k.t.Fatal("no new stream published its status within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (k *feedChecker) statusKey() string {
	var database string
	if err := k.plain.QueryRow(`SELECT current_database()`).Scan(&database); err != nil {
		k.t.Fatal(err)
	}
	return "{" + k.prefix + ":" + database + "}:feed:status"
}

// sparseWrite changes one of the rows nobody else writes, once: called
// right after a fault, while the feed may be missing changes.
func (k *feedChecker) sparseWrite() {
	k.mu.Lock()
	row := int64(feedRows + 1 + (len(k.faultAt)-1)%feedSparse)
	v := int64(len(k.writes[row])) + 1
	k.mu.Unlock()
	if _, err := k.plain.Exec(`UPDATE `+k.table+` SET v = v + 1 WHERE id = $1`, row); err != nil {
		k.t.Fatal(err)
	}
	k.mu.Lock()
	k.writes[row] = append(k.writes[row], feedWrite{v: v, returned: time.Now().UnixNano()})
	k.mu.Unlock()
}

// nearFault reports whether a write at ns may feel a fault: from the fault
// until a takeover and the bound have passed.
func (k *feedChecker) nearFault(ns int64) bool {
	for _, f := range k.faultAt {
		if ns >= f && ns < f+int64(feedLease+k.maxLag+time.Second) {
			return true
		}
	}
	return false
}

// leader returns the child whose replication connection follows the log.
func (k *feedChecker) leader(ctx context.Context) (kid int, walsender int, ok bool) {
	rows, err := k.plain.QueryContext(ctx, `SELECT application_name, pid FROM pg_stat_replication WHERE application_name LIKE 'feedck_%'`)
	if err != nil {
		k.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var app string
		var pid int
		if err := rows.Scan(&app, &pid); err != nil {
			k.t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimPrefix(app, "feedck_"))
		if err == nil {
			return n, pid, true
		}
	}
	return 0, 0, false
}

func (k *feedChecker) waitLeader(ctx context.Context) (int, int) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if n, pid, ok := k.leader(ctx); ok {
			return n, pid
		}
		if time.Now().After(deadline) {
			k.t.Fatal("no follower after 15 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// write runs the writers until stop: one goroutine per way of writing.
func (k *feedChecker) write(ctx context.Context, stop <-chan struct{}, wg *sync.WaitGroup) {
	record := func(row, v int64) {
		k.mu.Lock()
		k.writes[row] = append(k.writes[row], feedWrite{v: v, returned: time.Now().UnixNano()})
		k.mu.Unlock()
	}
	count := func(row int64) int64 {
		k.mu.Lock()
		defer k.mu.Unlock()
		return int64(len(k.writes[row]))
	}
	retry := func(f func() error) bool {
		for {
			select {
			case <-stop:
				return false
			default:
			}
			if err := f(); err == nil {
				return true
			}
			time.Sleep(10 * time.Millisecond) // a terminated connection: the pool reconnects
		}
	}
	loop := func(first int64, one func(row int64) error) {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(uint64(first), 3))
		for {
			select {
			case <-stop:
				return
			default:
			}
			row := first + rng.Int64N(2)
			ok := retry(func() error {
				err := one(row)
				if err == nil {
					return nil
				}
				// The outcome may be unknown (a connection lost during
				// COMMIT): the row's value tells.
				var v int64
				if k.plain.QueryRowContext(ctx, `SELECT v FROM `+k.table+` WHERE id = $1`, row).Scan(&v) == nil && v > count(row) {
					return nil
				}
				return err
			})
			if !ok {
				return
			}
			record(row, count(row)+1)
			for k.paused.Load() {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(time.Duration(2+rng.IntN(8)) * time.Millisecond)
		}
	}
	wg.Add(4)
	go loop(feedRowsPlain, func(row int64) error {
		_, err := k.plain.ExecContext(ctx, `UPDATE `+k.table+` SET v = v + 1 WHERE id = $1`, row)
		return err
	})
	go loop(feedRowsFunction, func(row int64) error {
		var v int64
		return k.plain.QueryRowContext(ctx, `SELECT `+k.table+`_bump($1)`, row).Scan(&v)
	})
	go loop(feedRowsTrigger, func(row int64) error {
		_, err := k.plain.ExecContext(ctx, `INSERT INTO `+k.table+`_log VALUES ($1)`, row)
		return err
	})
	go loop(feedRowsCopy, func(row int64) error {
		c, err := k.plain.Conn(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Raw(func(dc any) error {
			pc := dc.(*stdlib.Conn).Conn().PgConn()
			_, err := pc.CopyFrom(ctx, strings.NewReader(strconv.FormatInt(row, 10)+"\n"), `COPY `+k.table+`_log FROM STDIN`)
			return err
		})
	})
}

// readerStats sums the hit and miss counters the readers printed when they
// ended normally.
func (k *feedChecker) readerStats() (hits, misses int64) {
	files, _ := filepath.Glob(filepath.Join(k.dir, "reads-*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n") {
			var h, m int64
			if _, err := fmt.Sscanf(line, "# %d %d", &h, &m); err == nil {
				hits, misses = hits+h, misses+m
			}
		}
	}
	return hits, misses
}

// reads loads every child's reads.
func (k *feedChecker) reads() []feedRead {
	var out []feedRead
	files, _ := filepath.Glob(filepath.Join(k.dir, "reads-*"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			k.t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var r feedRead
			if _, err := fmt.Sscan(sc.Text(), &r.proc, &r.handle, &r.row, &r.v, &r.start, &r.end, &r.hit, &r.epoch, &r.until); err == nil {
				out = append(out, r)
			}
		}
		_ = fh.Close()
	}
	return out
}

type feedResult struct {
	reads, stale     int
	hits, misses     int64 // as the readers that ended normally counted them
	examples         []string
	delays, inFaults []time.Duration // per write: steady state, and within a fault's reach
}

// check holds every read to the bound and measures, for every write, how
// long after its commit a reader could still get an older value.
func (k *feedChecker) check(reads []feedRead) feedResult {
	var res feedResult
	res.reads = len(reads)
	lag := k.maxLag.Nanoseconds()
	byRow := map[int64][]feedRead{}
	for _, r := range reads {
		byRow[r.row] = append(byRow[r.row], r)
	}
	for row, ws := range k.writes {
		rs := byRow[row]
		for _, r := range rs {
			// The newest write whose commit returned more than maxLag
			// before the read began: the read must see it (or later).
			i := sort.Search(len(ws), func(i int) bool { return ws[i].returned >= r.start-lag })
			if i > 0 && r.v < ws[i-1].v {
				res.stale++
				if len(res.examples) < 5 {
					w := ws[i-1]
					res.examples = append(res.examples, fmt.Sprintf("row %d: process %d read %d (began %.3fs, hit %v, epoch %s, claim until %+.3fs), but %d had committed %v before it began",
						row, r.proc, r.v, float64(r.start-k.start.UnixNano())/1e9, r.hit, r.epoch, float64(r.until-r.start)/1e9, w.v, time.Duration(r.start-w.returned)))
				}
			}
		}
		for _, w := range ws {
			var last int64
			for _, r := range rs {
				if r.v < w.v && r.start > w.returned && r.start > last {
					last = r.start
				}
			}
			d := time.Duration(0)
			if last > 0 {
				d = time.Duration(last - w.returned)
			}
			if k.nearFault(w.returned) {
				res.inFaults = append(res.inFaults, d)
			} else {
				res.delays = append(res.delays, d)
			}
		}
	}
	return res
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// auditFeedTable compares every image of the checker's table that a reader
// could be served (current generation and epoch) with PostgreSQL.
func (k *feedChecker) audit(ctx context.Context, rdb *redis.Client) []string {
	var diffs []string
	var database string
	if err := k.plain.QueryRowContext(ctx, `SELECT current_database()`).Scan(&database); err != nil {
		return []string{err.Error()}
	}
	status, _ := rdb.Get(ctx, "{"+k.prefix+":"+database+"}:feed:status").Result()
	epoch, _, _, _, _ := parseFeedStatus(status)
	keys, err := rdb.Keys(ctx, "{"+k.prefix+":*").Result()
	if err != nil {
		return []string{err.Error()}
	}
	gens := map[string]string{}
	for _, key := range keys {
		if tag, ok := strings.CutSuffix(key, ":g"); ok {
			st, _ := rdb.Get(ctx, key).Result()
			gens[tag], _, _ = strings.Cut(st, " ")
		}
	}
	for _, key := range keys {
		i := strings.LastIndex(key, "}:v:")
		if i < 0 {
			continue
		}
		tag, id := key[:i+1], key[i+4:]
		stored, err := rdb.Get(ctx, key).Result()
		if err != nil {
			continue
		}
		gen, image, _ := strings.Cut(stored, " ")
		if gen != gens[tag]+"/"+epoch {
			continue // unreachable: another generation or epoch
		}
		img, err := rowcodec.DecodeString(image)
		if err != nil || len(img.Values) != 2 {
			diffs = append(diffs, fmt.Sprintf("%s: does not decode: %v", key, err))
			continue
		}
		var want int64
		if err := k.plain.QueryRowContext(ctx, `SELECT v FROM `+k.table+` WHERE id = $1`, id).Scan(&want); err != nil {
			diffs = append(diffs, fmt.Sprintf("%s: %v", key, err))
			continue
		}
		if img.Values[1] != want {
			diffs = append(diffs, fmt.Sprintf("row %s: Redis holds %v, PostgreSQL %d", id, img.Values[1], want))
		}
	}
	return diffs
}

// run drives one checker run: readers in three processes, writers here,
// the faults in between; it returns the result of the check.
func (k *feedChecker) run(faults bool) feedResult {
	t := k.t
	ctx := context.Background()
	for range 3 {
		k.startKid()
	}
	if k.feedOn {
		k.waitLeader(ctx)
	}
	time.Sleep(500 * time.Millisecond)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	k.write(ctx, stop, &wg)
	phase := func() { time.Sleep(1500 * time.Millisecond) }
	if feedLong() {
		phase = func() { time.Sleep(5 * time.Second) }
	}
	phase()
	if faults {
		rdb := redis.NewClient(&redis.Options{Addr: k.rs.addr()})
		defer rdb.Close()
		// Each fault: the sparse rows cached, their readers stopped, the
		// fault, one sparse row written while no stream may be reading,
		// the readers let back once a new stream serves.
		// After each fault: the writers pause, and once the bound has
		// passed every image a reader could be served equals its row.
		settle := func(after string) {
			k.paused.Store(true)
			time.Sleep(k.maxLag + 200*time.Millisecond)
			for _, d := range k.audit(ctx, rdb) {
				k.audits = append(k.audits, after+": "+d)
			}
			k.paused.Store(false)
		}
		around := func(inject func()) {
			k.sparseReads(true)
			time.Sleep(300 * time.Millisecond)
			prev, _ := rdb.Get(ctx, k.statusKey()).Result()
			k.sparseReads(false)
			inject()
			k.sparseWrite()
			k.newStream(rdb, prev)
			k.sparseReads(true)
			phase()
			settle(k.faults[len(k.faults)-1])
		}
		rounds := 1
		if feedLong() {
			rounds = 5
		}
		for range rounds {
			around(func() {
				n, pid := k.waitLeader(ctx)
				var slot string
				if err := k.plain.QueryRowContext(ctx, `SELECT slot_name FROM pg_replication_slots WHERE active_pid = $1`, pid).Scan(&slot); err != nil {
					t.Fatalf("the follower's slot: %v", err)
				}
				k.fault("kill -9 the follower's process (child %d, slot %s)", n, slot)
				k.mu.Lock()
				_ = k.kids[n].Process.Kill()
				delete(k.kids, n)
				k.mu.Unlock()
				k.startKid()
				k.checkSlots(ctx, slot)
			})
			around(func() {
				n, pid := k.waitLeader(ctx)
				k.fault("terminate the follower's replication connection (child %d, backend %d)", n, pid)
				mustExec(t, k.plain, `SELECT pg_terminate_backend($1)`, pid)
			})
			k.sparseReads(true)
			k.fault("restart Redis")
			k.rs.kill()
			time.Sleep(300 * time.Millisecond)
			if err := k.rs.restart(); err != nil {
				t.Fatal(err)
			}
			phase()
			settle("restart Redis")
			around(func() {
				if cmd := os.Getenv("WTCACHE_PG_RESTART"); cmd != "" {
					k.fault("restart PostgreSQL: %s", cmd)
					if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
						t.Fatalf("%s: %v\n%s", cmd, err, out)
					}
					k.waitPG(ctx)
				} else {
					k.fault("terminate every connection of the readers (PostgreSQL restarting, as they see it; set WTCACHE_PG_RESTART to restart it)")
					mustExec(t, k.plain, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'feedck_%'`)
				}
			})
		}
	}
	close(stop)
	wg.Wait()
	time.Sleep(k.maxLag + 500*time.Millisecond) // readers go on past the bound
	k.stopKids()
	// The write log must match PostgreSQL, or the check below proves
	// nothing (a write counted twice or not at all shifts every value).
	for row := int64(1); row <= feedRows+feedSparse; row++ {
		var v int64
		if err := k.plain.QueryRowContext(ctx, `SELECT v FROM `+k.table+` WHERE id = $1`, row).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if n := int64(len(k.writes[row])); v != n {
			t.Errorf("row %d: PostgreSQL has %d, the write log counted %d writes", row, v, n)
		}
	}
	if os.Getenv("WTCACHE_FEED_TRACE") == "1" {
		var b strings.Builder
		for row, ws := range k.writes {
			for _, w := range ws {
				fmt.Fprintf(&b, "%d %d %d\n", row, w.v, w.returned)
			}
		}
		_ = os.WriteFile(filepath.Join(k.dir, "writes"), []byte(b.String()), 0o644)
	}
	res := k.check(k.reads())
	res.hits, res.misses = k.readerStats()
	return res
}

// waitPG waits until PostgreSQL answers again after a restart.
func (k *feedChecker) waitPG(ctx context.Context) {
	deadline := time.Now().Add(30 * time.Second)
	for k.plain.PingContext(ctx) != nil {
		if time.Now().After(deadline) {
			k.t.Fatal("PostgreSQL does not answer 30 s after its restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func feedLong() bool { return os.Getenv("WTCACHE_FEED_LONG") == "1" }

// checkSlots shows what a killed follower leaves: its temporary slot goes
// with its session, so nothing of it stays to hold WAL.
func (k *feedChecker) checkSlots(ctx context.Context, slot string) {
	start := time.Now()
	for {
		var exists bool
		var others []string
		rows, err := k.plain.QueryContext(ctx, `SELECT slot_name, temporary, active FROM pg_replication_slots WHERE slot_name LIKE 'wtcache\_%'`)
		if err != nil {
			k.t.Fatal(err)
		}
		for rows.Next() {
			var name string
			var temp, active bool
			if err := rows.Scan(&name, &temp, &active); err != nil {
				k.t.Fatal(err)
			}
			if name == slot {
				exists = true
			} else {
				others = append(others, fmt.Sprintf("%s (temporary %v, active %v)", name, temp, active))
			}
		}
		rows.Close()
		if !exists {
			k.t.Logf("the killed follower's slot %s was gone %v after the kill; wtcache slots left: %v",
				slot, time.Since(start).Round(time.Millisecond), others)
			for _, o := range others {
				if !strings.Contains(o, "temporary true") {
					k.t.Errorf("a wtcache slot that is not temporary: %s", o)
				}
			}
			return
		}
		if time.Since(start) > 10*time.Second {
			k.t.Errorf("the killed follower's slot %s still exists 10 s after the kill", slot)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFeedChecker: outside writes reach every reader within
// cache_feed_max_lag, through the faults; the audit finds nothing stale.
func TestFeedChecker(t *testing.T) {
	k := newFeedChecker(t, true)
	res := k.run(true)
	t.Logf("faults:\n  %s", strings.Join(k.faults, "\n  "))
	t.Logf("%d reads in 3+ processes (hits %d, misses %d in the readers that ended normally), %d writes",
		res.reads, res.hits, res.misses, len(res.delays)+len(res.inFaults))
	t.Logf("time from a write's commit until no reader returns an older row (bound %v): steady state p50 %v, p99 %v, max %v; within a fault's reach p50 %v, p99 %v, max %v",
		k.maxLag, pct(res.delays, .5), pct(res.delays, .99), pct(res.delays, 1),
		pct(res.inFaults, .5), pct(res.inFaults, .99), pct(res.inFaults, 1))
	if res.reads < 500 {
		t.Errorf("only %d reads: the readers did not run", res.reads)
	}
	if res.stale > 0 {
		t.Errorf("%d reads older than cache_feed_max_lag after a commit:\n  %s", res.stale, strings.Join(res.examples, "\n  "))
	}
	rdb := redis.NewClient(&redis.Options{Addr: k.rs.addr()})
	defer rdb.Close()
	diffs := append(k.audits, k.audit(context.Background(), rdb)...)
	if len(diffs) > 0 {
		t.Errorf("audits after each fault and after the run: %d differences:\n  %s", len(diffs), strings.Join(diffs, "\n  "))
	}
}

// TestFeedCheckerFailsWithoutFeed: the same run with the feed off must
// find stale reads (the checker can fail).
func TestFeedCheckerFailsWithoutFeed(t *testing.T) {
	k := newFeedChecker(t, false)
	res := k.run(false)
	t.Logf("feed off: %d reads, %d stale", res.reads, res.stale)
	if res.stale == 0 {
		t.Error("with the feed off the checker found no stale read: it cannot fail")
	}
}

// TestFeedReaderChild is a reader process of the checker.
func TestFeedReaderChild(t *testing.T) {
	if os.Getenv("WTCACHE_FEED_CHILD") != "1" {
		t.Skip("run by TestFeedChecker")
	}
	dsn, table, outPath := os.Getenv("WTCACHE_FEED_DSN"), os.Getenv("WTCACHE_FEED_TABLE"), os.Getenv("WTCACHE_FEED_OUT")
	proc, _ := strconv.Atoi(os.Getenv("WTCACHE_FEED_PROC"))
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var mu sync.Mutex
	w := bufio.NewWriter(out)
	var stopped atomic.Bool
	go func() { // flush often: the process may be killed
		for !stopped.Load() {
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			_ = w.Flush()
			mu.Unlock()
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	if os.Getenv("WTCACHE_FEED_TRACE") == "1" {
		feedTrace = func(format string, args ...any) {
			mu.Lock()
			fmt.Fprintf(w, "T %d %s\n", time.Now().UnixNano(), fmt.Sprintf(format, args...))
			mu.Unlock()
		}
	}
	var sparseOn atomic.Bool
	go func() {
		for !stopped.Load() {
			_, err := os.Stat(filepath.Join(filepath.Dir(outPath), "sparse.on"))
			sparseOn.Store(err == nil)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	var conns []*connector
	// One goroutine per handle, so that each read knows whether it was a
	// hit (the handle's counter) and under which view it was served.
	for h := range 4 {
		c, err := (&wtDriver{}).openConnector(dsn)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		db := sql.OpenDB(c)
		defer db.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(proc*10+h), 5))
			for !stopped.Load() {
				row := 1 + rng.Int64N(feedRows+feedSparse)
				if row > feedRows && !sparseOn.Load() {
					row = 1 + rng.Int64N(feedRows)
				}
				start := time.Now().UnixNano()
				before := c.hits.Load()
				var v int64
				err := db.QueryRow(`SELECT v FROM `+table+` WHERE id = $1`, row).Scan(&v)
				end := time.Now().UnixNano()
				hit := c.hits.Load() > before
				if err == nil {
					epoch := "-" // a field Sscan can read
					var until int64
					if fv := c.feed.view.Load(); fv != nil && fv.epoch != "" {
						epoch, until = fv.epoch, fv.freshUntil.UnixNano()
					}
					mu.Lock()
					fmt.Fprintln(w, proc, h, row, v, start, end, hit, epoch, until)
					mu.Unlock()
				} else {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(time.Duration(1+rng.IntN(3)) * time.Millisecond)
			}
		}()
	}
	<-sig
	stopped.Store(true)
	wg.Wait()
	mu.Lock()
	var hits, misses int64
	for _, c := range conns {
		st := rpStats(c)
		hits, misses = hits+st.Hits, misses+st.Misses
	}
	fmt.Fprintln(w, "#", hits, misses)
	_ = w.Flush()
	mu.Unlock()
}
