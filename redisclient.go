package wtcache

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
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
// redisSecurity are the cache_redis_* parameters that complete the URL:
// TLS files, the server name, and a password kept out of the DSN.
type redisSecurity struct {
	ca, cert, key, serverName string
	passwordFile, passwordEnv string
}

func (r redisSecurity) tls() bool {
	return r.ca != "" || r.cert != "" || r.key != "" || r.serverName != ""
}

func newRedisFromURL(raw string, timeout time.Duration, sec redisSecurity) (redis.UniversalClient, string, string, error) {
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
	if u, err := url.Parse(raw); err == nil {
		if p := u.Query().Get("password"); p != "" {
			// The failover URL's master password, in the query.
			secret = p
		}
	}
	fail := func(err error) error {
		// go-redis quotes what it could not read (the path, an option's
		// name or value), which may be the tail of a password holding an
		// unencoded '/', '?' or '&': only the kind of error is kept.
		msg := strings.TrimPrefix(err.Error(), "redis: ")
		if i := strings.IndexByte(msg, ':'); i >= 0 {
			msg = msg[:i]
		}
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "xxxxx")
		}
		return fmt.Errorf("%w: cache_redis: %s (the text it names is not shown: it may hold a password; write '/', '?', '#', '&' and '@' in a password percent-encoded)", ErrInvalidParameter, msg)
	}
	password, err := sec.password(raw)
	if err != nil {
		return nil, "", "", err
	}
	if password != "" {
		secret = password
	}
	name := dsn.RedactURL(raw)
	switch scheme {
	case "redis+sentinel", "rediss+sentinel":
		opts, err := redis.ParseFailoverURL(strings.Replace(raw, "+sentinel", "", 1))
		if err != nil {
			return nil, "", "", fail(err)
		}
		if opts.MasterName == "" {
			return nil, "", "", fmt.Errorf("%w: cache_redis: a Sentinel URL needs master_name=", ErrInvalidParameter)
		}
		if opts.TLSConfig, err = sec.apply(opts.TLSConfig); err != nil {
			return nil, "", "", err
		}
		if password != "" {
			opts.Password = password
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = timeout, timeout, timeout, timeout
		opts.ContextTimeoutEnabled = true
		opts.MaxRetries, opts.DialerRetries = -1, 1
		opts.Dialer = quietDialer(timeout, opts.TLSConfig)
		return redis.NewFailoverClient(opts), name, secret, nil
	case "redis+cluster", "rediss+cluster":
		opts, err := redis.ParseClusterURL(strings.Replace(raw, "+cluster", "", 1))
		if err != nil {
			return nil, "", "", fail(err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = timeout, timeout, timeout, timeout
		opts.ContextTimeoutEnabled = true
		opts.MaxRetries, opts.DialerRetries = -1, 1
		opts.MaxRedirects = 1 // one MOVED/ASK hop, within the same deadline
		if opts.TLSConfig, err = sec.apply(opts.TLSConfig); err != nil {
			return nil, "", "", err
		}
		if password != "" {
			opts.Password = password
		}
		opts.Dialer = quietDialer(timeout, opts.TLSConfig)
		return redis.NewClusterClient(opts), name, secret, nil
	default:
		opts, err := redis.ParseURL(raw)
		if err != nil {
			return nil, "", "", fail(err)
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = timeout, timeout, timeout, timeout
		opts.ContextTimeoutEnabled = true
		opts.MaxRetries, opts.DialerRetries = -1, 1
		if opts.TLSConfig, err = sec.apply(opts.TLSConfig); err != nil {
			return nil, "", "", err
		}
		if password != "" {
			opts.Password = password
		}
		opts.Dialer = quietDialer(timeout, opts.TLSConfig)
		return redis.NewClient(opts), name, secret, nil
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
	if strings.Contains(raw, "#") {
		// A fragment means nothing to go-redis; a '#' in a password cuts it
		// short and the rest would be shown as part of the URL.
		return fmt.Errorf("%w: cache_redis holds a '#': a '#' in a password is written %%23 (the text after it is not shown: it may be a secret)", ErrInvalidParameter)
	}
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
	for _, k := range []string{"read_only", "route_by_latency", "route_randomly", "replica_only", "use_disconnected_replicas"} {
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

// password returns the Redis password from cache_redis_password_file or
// cache_redis_password_env ("" when neither is given). A URL that holds a
// password too is refused: two passwords would disagree.
func (r redisSecurity) password(raw string) (string, error) {
	if r.passwordFile == "" && r.passwordEnv == "" {
		return "", nil
	}
	if r.passwordFile != "" && r.passwordEnv != "" {
		return "", fmt.Errorf("%w: cache_redis_password_file and cache_redis_password_env: give one", ErrInvalidParameter)
	}
	if u, err := url.Parse(raw); err == nil {
		_, inUser := u.User.Password()
		if inUser || u.Query().Has("password") {
			return "", fmt.Errorf("%w: cache_redis holds a password and a password file or variable is given too: give one", ErrInvalidParameter)
		}
	}
	var p string
	if r.passwordFile != "" {
		b, err := os.ReadFile(r.passwordFile)
		if err != nil {
			return "", fmt.Errorf("%w: cache_redis_password_file: cannot read %q: %v", ErrInvalidParameter, r.passwordFile, errors.Unwrap(err))
		}
		p = strings.TrimRight(string(b), "\r\n")
	} else {
		var ok bool
		if p, ok = os.LookupEnv(r.passwordEnv); !ok {
			return "", fmt.Errorf("%w: cache_redis_password_env: %s is not set", ErrInvalidParameter, r.passwordEnv)
		}
	}
	if p == "" {
		return "", fmt.Errorf("%w: the Redis password from cache_redis_password_file or cache_redis_password_env is empty", ErrInvalidParameter)
	}
	return p, nil
}

// apply completes the URL's TLS configuration (nil without TLS) with the
// CA, client certificate and server name given as parameters. Errors name
// the files, never their contents.
func (r redisSecurity) apply(cfg *tls.Config) (*tls.Config, error) {
	if !r.tls() {
		return cfg, nil
	}
	if cfg == nil {
		return nil, fmt.Errorf("%w: cache_redis_ca, cache_redis_cert, cache_redis_key and cache_redis_servername need a rediss:// URL", ErrInvalidParameter)
	}
	cfg = cfg.Clone()
	if r.ca != "" {
		pem, err := os.ReadFile(r.ca)
		if err != nil {
			return nil, fmt.Errorf("%w: cache_redis_ca: cannot read %q: %v", ErrInvalidParameter, r.ca, errors.Unwrap(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: cache_redis_ca: %q holds no PEM certificate", ErrInvalidParameter, r.ca)
		}
		cfg.RootCAs = pool
	}
	if (r.cert == "") != (r.key == "") {
		return nil, fmt.Errorf("%w: cache_redis_cert and cache_redis_key go together", ErrInvalidParameter)
	}
	if r.cert != "" {
		pair, err := tls.LoadX509KeyPair(r.cert, r.key)
		if err != nil {
			// Not the library's message: it may quote what it could not parse.
			return nil, fmt.Errorf("%w: cache_redis_cert %q and cache_redis_key %q: not a readable PEM certificate and the private key that matches it", ErrInvalidParameter, r.cert, r.key)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if r.serverName != "" {
		cfg.ServerName = r.serverName
	}
	return cfg, nil
}

// weaker says how the client built from the DSN (dsnClient) is weaker than
// the one the program gave (given): without TLS or without checking the
// server's certificate where the given one has them, or without a
// password where the given one authenticates. "" when it is not weaker. A
// given client wtcache cannot inspect is taken as the stronger one.
func weaker(dsnClient, given redis.UniversalClient) string {
	type sec struct {
		tls, verify, auth bool
	}
	of := func(c redis.UniversalClient) (sec, bool) {
		var t *tls.Config
		var auth bool
		switch x := c.(type) {
		case *redis.Client:
			o := x.Options()
			t, auth = o.TLSConfig, o.Password != "" || o.CredentialsProvider != nil || o.CredentialsProviderContext != nil || o.StreamingCredentialsProvider != nil
		case *redis.ClusterClient:
			o := x.Options()
			t, auth = o.TLSConfig, o.Password != "" || o.CredentialsProvider != nil || o.CredentialsProviderContext != nil || o.StreamingCredentialsProvider != nil
		default:
			return sec{}, false
		}
		return sec{tls: t != nil, verify: t != nil && !t.InsecureSkipVerify, auth: auth}, true
	}
	g, ok := of(given)
	if !ok {
		return "while the given client cannot be inspected (give no cache_redis, or pass a *redis.Client or *redis.ClusterClient)"
	}
	d, _ := of(dsnClient)
	switch {
	case g.tls && !d.tls:
		return "without TLS"
	case g.verify && !d.verify:
		return "that does not check the server's certificate"
	case g.auth && !d.auth:
		return "without a password"
	}
	return ""
}
