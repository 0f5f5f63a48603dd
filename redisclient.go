package wtcache

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache/internal/dsn"
)

// newRedisFromURL builds a Redis client from a URL in any form go-redis
// parses: redis://, rediss:// and unix:// for one server, and
// redis+cluster:// or rediss+cluster:// (go-redis's cluster URL, with more
// nodes as addr= parameters) for Redis Cluster. It returns the client, the
// server named with its password redacted, and the password (for
// redaction). Errors never hold the password.
//
// The client is built so that the Redis timeout bounds every wait of a
// call on the caller's path: dial, pool, read and write timeouts are the
// Redis timeout, it honours context deadlines (wtcache gives each call one,
// see boundCtx), and it neither retries commands nor dials (a retry would
// multiply the wait; the circuit breaker decides what happens next).
// Its dialer never reports a failed dial to go-redis's pool, which would
// log it to the process-wide go-redis logger (stderr by default): the
// failure comes back as the connection's first read or write error
// instead, so the caller sees the same error and nothing is printed.
func newRedisFromURL(raw string, timeout time.Duration) (redis.UniversalClient, string, string, error) {
	scheme, _, _ := strings.Cut(raw, "://")
	// secret is the password, or the user when there is none (the user
	// position may hold the password).
	secret := ""
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		var ok bool
		if secret, ok = u.User.Password(); !ok || secret == "" {
			secret = u.User.Username()
		}
	} else if err != nil {
		return nil, "", "", fmt.Errorf("%w: cache_redis: not a valid URL (redis://[user:password@]host[:port][/db], rediss://, unix://, redis+cluster://)", ErrInvalidParameter)
	}
	fail := func(err error) error {
		msg := err.Error()
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "xxxxx")
		}
		return fmt.Errorf("%w: cache_redis: %s", ErrInvalidParameter, msg)
	}
	switch scheme {
	case "redis+cluster", "rediss+cluster":
		opts, err := redis.ParseClusterURL(strings.Replace(raw, "+cluster", "", 1))
		if err != nil {
			return nil, "", "", fail(err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = timeout, timeout, timeout, timeout
		opts.ContextTimeoutEnabled = true
		opts.MaxRetries, opts.DialerRetries = -1, 1
		opts.MaxRedirects = 1 // one MOVED/ASK hop, within the same deadline
		opts.Dialer = quietDialer(timeout, opts.TLSConfig)
		return redis.NewClusterClient(opts), dsn.RedactURL(raw), secret, nil
	default:
		opts, err := redis.ParseURL(raw)
		if err != nil {
			return nil, "", "", fail(err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = timeout, timeout, timeout, timeout
		opts.ContextTimeoutEnabled = true
		opts.MaxRetries, opts.DialerRetries = -1, 1
		opts.Dialer = quietDialer(timeout, opts.TLSConfig)
		return redis.NewClient(opts), dsn.RedactURL(raw), secret, nil
	}
}

// checkRedisURL refuses the options of a Redis URL that would weaken what
// wtcache promises or that cache_timeout decides: reads from cluster
// replicas (read_only, route_by_latency, route_randomly: replicas lag, so
// a hit could be older than a write that returned), timeouts of the URL
// (cache_timeout bounds every wait; two settings would disagree), and TLS
// without verifying the server (skip_verify) unless cache_redis_insecure
// says so.
func checkRedisURL(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return nil // newRedisFromURL reports it
	}
	q := u.Query()
	on := func(k string) bool {
		v, ok := q[k]
		if !ok {
			return false
		}
		b, err := strconv.ParseBool(v[len(v)-1])
		return err != nil || b // an unreadable value is taken as on
	}
	for _, k := range []string{"read_only", "route_by_latency", "route_randomly"} {
		if on(k) {
			return fmt.Errorf("%w: cache_redis: %s would send lookups to replicas, which lag behind writes; wtcache reads from primaries only", ErrInvalidParameter, k)
		}
	}
	for _, k := range []string{"dial_timeout", "read_timeout", "write_timeout", "pool_timeout", "timeout"} {
		if q.Has(k) {
			return fmt.Errorf("%w: cache_redis: %s in the URL conflicts with cache_timeout, which bounds every Redis wait; set cache_timeout instead", ErrInvalidParameter, k)
		}
	}
	if on("skip_verify") && !insecure {
		return fmt.Errorf("%w: cache_redis: skip_verify turns off the check of the server's certificate; add cache_redis_insecure=true to mean it", ErrInvalidParameter)
	}
	return nil
}

// quietDialer dials as go-redis's default dialer does (TCP keep-alive, TLS
// when configured), bounded by timeout and the context's deadline. A failed
// dial returns a connection whose every read and write fails with the
// dial's error (see newRedisFromURL).
func quietDialer(timeout time.Duration, tlsConfig *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: timeout, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3,
	}}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		var err error
		if tlsConfig == nil {
			c, err = nd.DialContext(ctx, network, addr)
		} else {
			c, err = (&tls.Dialer{NetDialer: nd, Config: tlsConfig}).DialContext(ctx, network, addr)
		}
		if err != nil {
			return &failedConn{err: err, network: network, addr: addr}, nil
		}
		return c, nil
	}
}

// failedConn is a connection whose dial failed: it carries the dial's error.
type failedConn struct {
	err           error
	network, addr string
}

func (f *failedConn) Read([]byte) (int, error)         { return 0, f.err }
func (f *failedConn) Write([]byte) (int, error)        { return 0, f.err }
func (f *failedConn) Close() error                     { return nil }
func (f *failedConn) LocalAddr() net.Addr              { return failedAddr{f.network, ""} }
func (f *failedConn) RemoteAddr() net.Addr             { return failedAddr{f.network, f.addr} }
func (f *failedConn) SetDeadline(time.Time) error      { return nil }
func (f *failedConn) SetReadDeadline(time.Time) error  { return nil }
func (f *failedConn) SetWriteDeadline(time.Time) error { return nil }

type failedAddr struct{ network, addr string }

func (a failedAddr) Network() string { return a.network }
func (a failedAddr) String() string  { return a.addr }
