package wtcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache/internal/proto"
)

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBreakerOpensAndCloses: a refused Redis opens the breaker at its first
// failure; the probe closes it as soon as a server answers on the address,
// without reopening anything; the logger given with WithLogger hears both,
// with the server named and its password nowhere.
func TestBreakerOpensAndCloses(t *testing.T) {
	addr := closedAddr(t)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := (&wtDriver{opts: []Option{WithLogger(logger)}}).openConnector(
		"host=db cache_redis=redis://user:hunter2@" + addr + "/0 cache_timeout=50ms")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	rctx, cancel := c.redisCtx(ctx)
	err = c.redisErr(ctx, c.cfg.redis.Ping(rctx).Err())
	cancel()
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("ping of a refused port: %v, want the dial's ECONNREFUSED", err)
	}
	if s, _ := StatsOf(c); !s.CacheDown || s.CacheOutages != 1 {
		t.Fatalf("after a refused call: %+v, want CacheDown and one outage", s)
	}

	s := miniredis.NewMiniRedis()
	// The server knows the user: a refused password keeps the breaker open.
	s.RequireUserAuth("user", "hunter2")
	if err := s.StartAddr(addr); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitFor(t, 2*time.Second, "the probe to close the breaker", func() bool { return !c.cacheDown() })
	// The probe logs after it has closed the breaker.
	waitFor(t, 2*time.Second, "the probe to log redis_up", func() bool { return strings.Contains(logs.String(), "event=redis_up") })
	if s, _ := StatsOf(c); s.CacheDown || s.CacheOutages != 1 {
		t.Fatalf("after Redis answered: %+v", s)
	}
	out := logs.String()
	for _, want := range []string{"event=redis_down", "event=redis_up", "redis://user:xxxxx@" + addr} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("log holds the password:\n%s", out)
	}
}

// TestRateLog: records of one kind come at most once per logEvery, the next
// one saying how many were suppressed; other kinds are not held back; a
// connector without a logger writes nothing.
func TestRateLog(t *testing.T) {
	var buf syncBuffer
	r := newRateLog(slog.New(slog.NewTextHandler(&buf, nil)))
	for range 5 {
		r.warn("a", "first kind")
	}
	r.warn("b", "second kind")
	if n := strings.Count(buf.String(), "event=a"); n != 1 {
		t.Fatalf("%d records of kind a, want 1:\n%s", n, buf.String())
	}
	r.mu.Lock()
	r.last["a"] = time.Now().Add(-logEvery - time.Second)
	r.mu.Unlock()
	r.warn("a", "first kind")
	if !strings.Contains(buf.String(), "suppressed=4") {
		t.Errorf("the record after the window does not count the 4 suppressed:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "event=b") {
		t.Error("another kind was held back")
	}
	var silent *rateLog = newRateLog(nil)
	silent.warn("a", "nothing") // must not panic or write
}

// TestUnreachable classifies errors: network failures, timeouts and replies
// that mean Redis cannot serve open the breaker; Redis's own answers, the
// caller's cancellation, a closed client and wtcache's protocol errors do
// not.
func TestUnreachable(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	s := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer rdb.Close()
	_ = rdb.Set(bg, "str", "x", 0).Err()
	wrongType := rdb.HGet(bg, "str", "f").Err()
	s.SetError("LOADING Redis is loading the dataset in memory")
	loading := rdb.Get(bg, "k").Err()
	s.SetError("")
	for _, tc := range []struct {
		name   string
		parent context.Context
		err    error
		want   bool
	}{
		{"refused", bg, &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"timeout", bg, os.ErrDeadlineExceeded, true},
		{"eof", bg, io.EOF, true},
		{"pool timeout", bg, redis.ErrPoolTimeout, true},
		{"context deadline of the redis timeout", bg, context.DeadlineExceeded, true},
		{"loading", bg, loading, true},
		{"wrong type reply", bg, wrongType, false},
		{"caller canceled", canceled, context.Canceled, false},
		{"client closed", bg, redis.ErrClosed, false},
		{"protocol", bg, fmt.Errorf("x: %w", proto.ErrProtocol), false},
		{"already open", bg, errCacheDown, false},
	} {
		if got := unreachable(tc.parent, tc.err); got != tc.want {
			t.Errorf("%s (%v): unreachable %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
