package wtcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
)

// Helpers of the consistency checker (chaos_test.go): a redis-server of the
// test's own that can be killed and restarted, the history recorder, the
// per-row model checked with porcupine, and the report.

// ---------------------------------------------------------------------------
// A redis-server owned by the test.

// redisServer is a redis-server process started by the test on a free
// loopback port, without persistence: a restart loses everything, as a
// crash of a cache server without persistence does.
type redisServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// startRedisServer starts a redis-server on a free port. Without the binary
// the test is skipped, except where CI=true.
func startRedisServer(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not on PATH; the chaos test needs its own server to kill and restart")
		}
		t.Skip("redis-server is not on PATH; the chaos test needs its own server to kill and restart")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	rs := &redisServer{t: t, bin: bin, port: port, dir: t.TempDir()}
	if err := rs.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.kill)
	return rs
}

func (rs *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(rs.port) }
func (rs *redisServer) url() string  { return "redis://" + rs.addr() + "/0" }

// start runs the server and waits until it answers PING.
func (rs *redisServer) start() error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.cmd != nil {
		return nil
	}
	cmd := exec.Command(rs.bin, "--port", strconv.Itoa(rs.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", rs.dir, "--loglevel", "warning")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	rs.cmd, rs.out, rs.done = cmd, out, done
	c := redis.NewClient(&redis.Options{Addr: rs.addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited: %s", rs.port, out.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on port %d does not answer: %v", rs.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL to the server (only to the process this test started)
// and waits for it to exit.
func (rs *redisServer) kill() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.cmd == nil {
		return
	}
	_ = rs.cmd.Process.Kill()
	<-rs.done
	rs.cmd = nil
}

// restart starts the server again after a kill, retrying while the port is
// still being released.
func (rs *redisServer) restart() error {
	var err error
	for i := 0; i < 20; i++ {
		if err = rs.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// ---------------------------------------------------------------------------
// The model: each row is an integer register changed by additions.

// chaosIn is the input of one operation on one row.
type chaosIn struct {
	Read  bool
	Delta int64 // for an addition
	OpID  int64 // for an addition: the id the statement wrote into the row's op column
}

// chaosOut is what the operation returned.
type chaosOut struct {
	Value int64 // a read's value; an addition's new value when Known
	Known bool  // an addition returned the value it stored (RETURNING)
	// Maybe marks an addition whose outcome is unknown (the connection
	// was lost, the commit's answer never came): it may or may not have
	// taken effect.
	Maybe bool
}

// chaosModel is the sequential specification of one row. It is
// nondeterministic only for additions of unknown outcome, which may or may
// not have taken effect; porcupine's power-set construction keeps the set
// of values the row may hold, and every read narrows it.
func chaosModel(init int64) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []any { return []any{init} },
		Step: func(state, input, output any) []any {
			s := state.(int64)
			in, out := input.(chaosIn), output.(chaosOut)
			if in.Read {
				if out.Value == s {
					return []any{s}
				}
				return nil
			}
			n := s + in.Delta
			if out.Maybe {
				return []any{s, n}
			}
			if out.Known && out.Value != n {
				return nil
			}
			return []any{n}
		},
		Hash: func(state any) uint64 { return uint64(state.(int64)) * 0x9E3779B97F4A7C15 },
		DescribeOperation: func(input, output any) string {
			in, out := input.(chaosIn), output.(chaosOut)
			switch {
			case in.Read:
				return fmt.Sprintf("read -> %d", out.Value)
			case out.Maybe:
				return fmt.Sprintf("add %+d (outcome unknown)", in.Delta)
			case out.Known:
				return fmt.Sprintf("add %+d -> %d", in.Delta, out.Value)
			}
			return fmt.Sprintf("add %+d -> ok", in.Delta)
		},
		DescribeState: func(state any) string { return strconv.FormatInt(state.(int64), 10) },
		DescribeOperationMetadata: func(info any) string {
			if info == nil {
				return ""
			}
			return fmt.Sprint(info)
		},
	}
	return nm.ToModel()
}

// ---------------------------------------------------------------------------
// The recorder.

// never is the response time of an operation whose effect may still happen
// at any later time (a network error: the server may commit after the
// client gave up). It is later than every real timestamp.
const never = int64(1) << 62

// chaosRecorder keeps the history of every row, with timestamps from one
// monotonic clock.
type chaosRecorder struct {
	base time.Time

	mu  sync.Mutex
	ops map[string][]porcupine.Operation

	nextOp atomic.Int64
	// notCommitted are the additions known not to have reached the
	// database (refused with ErrCacheUnavailable, or rolled back): the
	// write log must not have them.
	notCommitted []loggedOp

	reads, adds, maybeAdds, neverAdds, refused, notApplied, readErrors atomic.Int64
	errorKinds                                                         sync.Map // error text -> *atomic.Int64
}

// loggedOp names one addition to one row.
type loggedOp struct {
	row string
	op  int64
}

// opID returns a fresh id for an addition.
func (r *chaosRecorder) opID() int64 { return r.nextOp.Add(1) }

// countError keeps a histogram of the errors the workload saw.
func (r *chaosRecorder) countError(err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	if len(msg) > 90 {
		msg = msg[:90]
	}
	v, _ := r.errorKinds.LoadOrStore(msg, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// notCommittedOp records an addition that is known not to have committed.
func (r *chaosRecorder) notCommittedOp(row string, op int64) {
	r.mu.Lock()
	r.notCommitted = append(r.notCommitted, loggedOp{row, op})
	r.mu.Unlock()
}

func newChaosRecorder() *chaosRecorder {
	return &chaosRecorder{base: time.Now(), ops: map[string][]porcupine.Operation{}}
}

// now is the time since the recorder started, from the monotonic clock.
func (r *chaosRecorder) now() int64 { return int64(time.Since(r.base)) }

func (r *chaosRecorder) record(row string, client int, in chaosIn, out chaosOut, call, ret int64, meta string) {
	r.mu.Lock()
	r.ops[row] = append(r.ops[row], porcupine.Operation{
		ClientId: client, Input: in, Output: out, Call: call, Return: ret, Metadata: meta,
	})
	r.mu.Unlock()
}

// read records a successful read.
func (r *chaosRecorder) read(row string, client int, v int64, call, ret int64, meta string) {
	r.reads.Add(1)
	r.record(row, client, chaosIn{Read: true}, chaosOut{Value: v}, call, ret, meta)
}

// outcome says what an error returned by a write means for its effect.
type outcome uint8

const (
	applied    outcome = iota // success
	notApplied                // refused before it reached the database, or rolled back
	maybeUntil                // unknown, decided before the error was received
	maybeLater                // unknown, may take effect at any later time
)

// classifyWrite tells what a write's error means. ErrCacheUnavailable is
// returned before the statement reaches PostgreSQL (FailClosed). An error
// that PostgreSQL itself sent (a *pgconn.PgError, FATAL included) was sent
// after the server had decided the statement's fate, so the effect, if
// any, happened before the error arrived. Anything else (a reset
// connection, EOF, a timeout) leaves the statement possibly still running
// on the server.
func classifyWrite(err error) outcome {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return applied
	case errors.Is(err, ErrCacheUnavailable):
		return notApplied
	case errors.As(err, &pgErr):
		return maybeUntil
	}
	return maybeLater
}

// write records an addition with the outcome its error implies.
func (r *chaosRecorder) write(row string, client int, op, delta int64, known bool, value int64, call, ret int64, err error, meta string) {
	out := chaosOut{Known: known && err == nil, Value: value}
	r.countError(err)
	switch classifyWrite(err) {
	case applied:
		r.adds.Add(1)
	case notApplied:
		r.refused.Add(1)
		r.notCommittedOp(row, op)
		return
	case maybeUntil:
		r.maybeAdds.Add(1)
		out = chaosOut{Maybe: true}
		meta += " err=" + err.Error()
	case maybeLater:
		r.neverAdds.Add(1)
		out = chaosOut{Maybe: true}
		meta += " err=" + err.Error()
		ret = never
	}
	r.record(row, client, chaosIn{Delta: delta, OpID: op}, out, call, ret, meta)
}

// resolve settles every addition against the write log that PostgreSQL
// kept (a trigger records each committed change of a row with the op id
// the statement wrote and the value it left): an addition of unknown
// outcome that is in the log was applied, one that is not was not; every
// applied addition's new value becomes known. That makes the histories
// deterministic, which porcupine checks fast, and it checks G3 on the way:
// an addition reported successful must be in the log, one refused or
// rolled back must not. log maps row -> op id -> value.
func (r *chaosRecorder) resolve(log map[string]map[int64]int64) (map[string][]porcupine.Operation, []chaosViolation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var vs []chaosViolation
	out := make(map[string][]porcupine.Operation, len(r.ops))
	for row, ops := range r.ops {
		kept := make([]porcupine.Operation, 0, len(ops))
		for _, op := range ops {
			in, o := op.Input.(chaosIn), op.Output.(chaosOut)
			if in.Read || in.OpID == 0 {
				kept = append(kept, op)
				continue
			}
			v, committed := log[row][in.OpID]
			switch {
			case committed && o.Known && o.Value != v:
				vs = append(vs, chaosViolation{Guarantee: "G3", Row: row, At: op.Call,
					Detail: fmt.Sprintf("op %d returned %d, the database logged %d", in.OpID, o.Value, v)})
			case !committed && !o.Maybe:
				vs = append(vs, chaosViolation{Guarantee: "G3", Row: row, At: op.Call,
					Detail: fmt.Sprintf("op %d (%v) reported success but never committed", in.OpID, op.Metadata)})
				continue
			case !committed:
				continue // it did not take effect
			}
			op.Output = chaosOut{Value: v, Known: true}
			kept = append(kept, op)
		}
		out[row] = kept
	}
	for _, nc := range r.notCommitted {
		if _, ok := log[nc.row][nc.op]; ok {
			vs = append(vs, chaosViolation{Guarantee: "G3", Row: nc.row,
				Detail: fmt.Sprintf("op %d was refused (ErrCacheUnavailable) or rolled back, yet it committed", nc.op)})
		}
	}
	return out, vs
}

// ---------------------------------------------------------------------------
// Checking.

// chaosViolation is one broken guarantee, described for a human.
type chaosViolation struct {
	Guarantee string // G1/G2 (linearizability), G3, G4
	Row       string
	Detail    string
	File      string // a porcupine visualization, when there is one
	At        int64  // when it was seen (recorder time), 0 if unknown
}

func (v chaosViolation) String() string {
	s := fmt.Sprintf("[%s] %s: %s", v.Guarantee, v.Row, v.Detail)
	if v.File != "" {
		s += "\n    visualization: " + v.File
	}
	return s
}

// checkLinearizable checks one row's history. It returns a violation, or
// nil; an inconclusive check (timeout) is a violation too, since it could
// hide one.
func checkLinearizable(row string, init int64, ops []porcupine.Operation, timeout time.Duration, outDir string) *chaosViolation {
	model := chaosModel(init)
	// The plain check is fast; the verbose one, which also computes the
	// partial linearizations for the explanation, runs only on failure.
	switch porcupine.CheckOperationsTimeout(model, ops, timeout) {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return &chaosViolation{Guarantee: "G2", Row: row,
			Detail: fmt.Sprintf("linearizability check inconclusive after %v (%d operations)", timeout, len(ops))}
	}
	_, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	text, at := explainIllegal(ops, info)
	v := &chaosViolation{Guarantee: "G2", Row: row, Detail: "history is not linearizable\n" + text, At: at}
	if outDir != "" {
		name := strings.NewReplacer("/", "_", " ", "_").Replace(row)
		path := outDir + "/" + name + ".html"
		if err := porcupine.VisualizePath(model, info, path); err == nil {
			v.File = path
		} else {
			v.Detail += "\n(visualization failed: " + err.Error() + ")"
		}
	}
	return v
}

// explainIllegal prints the end of the longest linearizable prefix that
// porcupine found and the operations that could not follow it. It also
// returns the call time of the first of those.
func explainIllegal(ops []porcupine.Operation, info porcupine.LinearizationInfo) (string, int64) {
	var b strings.Builder
	parts := info.PartialLinearizationsOperations()
	if len(parts) == 0 || len(parts[0]) == 0 {
		return "(no partial linearization)", 0
	}
	var longest []porcupine.Operation
	for _, lin := range parts[0] {
		if len(lin) > len(longest) {
			longest = lin
		}
	}
	desc := func(op porcupine.Operation) string {
		in, out := op.Input.(chaosIn), op.Output.(chaosOut)
		var what string
		switch {
		case in.Read:
			what = fmt.Sprintf("read -> %d", out.Value)
		case out.Maybe:
			what = fmt.Sprintf("add %+d (outcome unknown)", in.Delta)
		case out.Known:
			what = fmt.Sprintf("add %+d -> %d", in.Delta, out.Value)
		default:
			what = fmt.Sprintf("add %+d -> ok", in.Delta)
		}
		ret := "never"
		if op.Return != never {
			ret = fmt.Sprintf("%.3fms", float64(op.Return)/1e6)
		}
		return fmt.Sprintf("  client %2d [%.3fms .. %s] %-28s %v", op.ClientId, float64(op.Call)/1e6, ret, what, op.Metadata)
	}
	type key struct {
		c        int
		call     int64
		in       chaosIn
		out      chaosOut
		metadata string
	}
	k := func(op porcupine.Operation) key {
		return key{op.ClientId, op.Call, op.Input.(chaosIn), op.Output.(chaosOut), fmt.Sprint(op.Metadata)}
	}
	done := map[key]bool{}
	var state int64
	for _, op := range longest {
		done[k(op)] = true
	}
	fmt.Fprintf(&b, "longest linearizable prefix: %d of %d operations; its last ones:\n", len(longest), len(ops))
	for _, op := range longest[max(0, len(longest)-8):] {
		b.WriteString(desc(op) + "\n")
	}
	if len(longest) > 0 {
		last := longest[len(longest)-1]
		if out := last.Output.(chaosOut); last.Input.(chaosIn).Read || out.Known {
			state = out.Value
			fmt.Fprintf(&b, "value after it: %d (when the last operation fixes it)\n", state)
		}
	}
	rest := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		if !done[k(op)] {
			rest = append(rest, op)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i].Call < rest[j].Call })
	b.WriteString("first operations that could not be linearized after it (by call time):\n")
	for _, op := range rest[:min(len(rest), 12)] {
		b.WriteString(desc(op) + "\n")
	}
	var at int64
	if len(rest) > 0 {
		at = rest[0].Call
	}
	return b.String(), at
}
