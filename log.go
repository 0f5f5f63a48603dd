package wtcache

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Logging. wtcache writes nothing anywhere unless the program gives it a
// logger (WithLogger). Events that can repeat (Redis down, releases that
// failed, corrupt entries) are rate-limited per kind: at most one record per
// logEvery, carrying how many were suppressed since the last one. No record
// holds a password: Redis servers are named redacted, and error texts pass
// through the connector's redaction.

// logEvery is the least time between two records of one kind.
const logEvery = 10 * time.Second

// WithLogger sends wtcache's own log records (Redis unreachable and back,
// releases left to expire, corrupt entries, repairs) to l, rate-limited.
// Default: none; wtcache writes nothing, to stderr or anywhere else.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

type rateLog struct {
	l    *slog.Logger
	mu   sync.Mutex
	last map[string]time.Time
	supp map[string]int
}

func newRateLog(l *slog.Logger) *rateLog { return &rateLog{l: l} }

func (r *rateLog) warn(kind, msg string, args ...any) { r.log(slog.LevelWarn, kind, msg, args) }
func (r *rateLog) info(kind, msg string, args ...any) { r.log(slog.LevelInfo, kind, msg, args) }

func (r *rateLog) log(level slog.Level, kind, msg string, args []any) {
	if r == nil || r.l == nil || !r.l.Enabled(context.Background(), level) {
		return
	}
	r.mu.Lock()
	if r.last == nil {
		r.last, r.supp = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if t, ok := r.last[kind]; ok && now.Sub(t) < logEvery {
		r.supp[kind]++
		r.mu.Unlock()
		return
	}
	n := r.supp[kind]
	r.last[kind], r.supp[kind] = now, 0
	r.mu.Unlock()
	args = append(args, "event", kind)
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	r.l.Log(context.Background(), level, msg, args...)
}

// redact removes the Redis password, if any, from a message.
func (cn *connector) redact(msg string) string {
	if s := cn.cfg.redisSecret; s != "" {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return msg
}
