package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/redis/go-redis/v9"
)

// NewConnector wraps inner, any driver.Connector (for example pgx's
// stdlib.GetConnector(config)), so that the connections it makes go through
// wtcache with rdb as the cache. rdb stays the caller's: closing the
// connector (or the *sql.DB built on it) closes inner when inner is an
// io.Closer, never rdb.
func NewConnector(inner driver.Connector, rdb redis.UniversalClient, opts ...Option) (driver.Connector, error) {
	if inner == nil {
		return nil, fmt.Errorf("%w: NewConnector needs an inner connector", ErrNilArgument)
	}
	if rdb == nil {
		return nil, fmt.Errorf("%w: NewConnector needs a Redis client", ErrNilArgument)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	cfg.redis, cfg.ownRedis = rdb, false
	return newConnector(inner, &wtDriver{inner: inner.Driver(), opts: opts}, cfg), nil
}

// OpenDB is sql.OpenDB(NewConnector(inner, rdb, opts...)). It panics only
// where NewConnector would return an error, that is on a nil argument.
func OpenDB(inner driver.Connector, rdb redis.UniversalClient, opts ...Option) *sql.DB {
	c, err := NewConnector(inner, rdb, opts...)
	if err != nil {
		panic(err)
	}
	return sql.OpenDB(c)
}

// connector is wtcache's driver.Connector. It always implements io.Closer
// (database/sql calls it from DB.Close), forwarding to the inner connector
// when that is a Closer too.
type connector struct {
	inner driver.Connector
	drv   *wtDriver
	cfg   config

	closeOnce sync.Once
	closeErr  error
}

var (
	_ driver.Connector = (*connector)(nil)
	_ io.Closer        = (*connector)(nil)
)

func newConnector(inner driver.Connector, drv *wtDriver, cfg config) *connector {
	return &connector{inner: inner, drv: drv, cfg: cfg}
}

// Connect returns the inner connection wrapped. Errors from the inner
// connector (driver.ErrBadConn included) come back unchanged.
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	ic, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newConn(ic, c), nil
}

// Driver returns the wtcache driver that made this connector.
func (c *connector) Driver() driver.Driver { return c.drv }

// Close closes the inner connector when it is an io.Closer and the Redis
// client when wtcache built it from the DSN. It is safe to call twice.
func (c *connector) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		if cl, ok := c.inner.(io.Closer); ok {
			errs = append(errs, cl.Close())
		}
		if c.cfg.ownRedis && c.cfg.redis != nil {
			if err := c.cfg.redis.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
				errs = append(errs, fmt.Errorf("wtcache: closing Redis client: %w", err))
			}
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

func closeQuietly(c driver.Connector) {
	if cl, ok := c.(io.Closer); ok {
		_ = cl.Close()
	}
}
