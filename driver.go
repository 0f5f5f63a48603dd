package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"
	"sync"

	// The default inner driver: importing wtcache makes "pgx" available, so
	// that the default cache_driver always resolves.
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/wtcache/wtcache/internal/dsn"
)

// DriverName is the name under which importing this package registers the
// wtcache driver with database/sql.
const DriverName = "wtcache"

// defaultInnerDriver is the inner driver used when the DSN has no
// cache_driver parameter.
const defaultInnerDriver = "pgx"

func init() {
	if !slices.Contains(sql.Drivers(), DriverName) {
		sql.Register(DriverName, &wtDriver{})
	}
}

// Register registers, under name, a wtcache driver that wraps inner. The DSNs
// given to it are inner's DSNs plus wtcache's cache_ parameters, as for the
// "wtcache" driver, except that cache_driver is not accepted: the inner
// driver is fixed. opts set defaults that DSN parameters override. It returns
// an error, instead of panicking as sql.Register does, when name is taken.
func Register(name string, inner driver.Driver, opts ...Option) error {
	if inner == nil {
		return fmt.Errorf("%w: Register needs an inner driver", ErrNilArgument)
	}
	if slices.Contains(sql.Drivers(), name) {
		return fmt.Errorf("%w: a driver named %q is already registered", ErrInvalidParameter, name)
	}
	sql.Register(name, &wtDriver{inner: inner, opts: opts})
	return nil
}

// wtDriver is the database/sql driver. With inner nil, the inner driver is
// looked up by the DSN's cache_driver (default "pgx").
type wtDriver struct {
	inner driver.Driver
	opts  []Option
}

var (
	_ driver.Driver        = (*wtDriver)(nil)
	_ driver.DriverContext = (*wtDriver)(nil)
)

// Open opens one connection. database/sql never calls it (the driver
// implements DriverContext); a program that does gets a connection that owns
// its connector and releases the connector's Redis client when it closes.
func (d *wtDriver) Open(name string) (driver.Conn, error) {
	c, err := d.openConnector(name)
	if err != nil {
		return nil, err
	}
	dc, err := c.Connect(context.Background())
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	cn := dc.(*conn)
	cn.ownConnector = c
	return cn, nil
}

// OpenConnector parses the DSN, so that sql.Open itself reports a malformed
// or unknown cache_ parameter.
func (d *wtDriver) OpenConnector(name string) (driver.Connector, error) {
	return d.openConnector(name)
}

func (d *wtDriver) openConnector(name string) (*connector, error) {
	innerDSN, params, err := dsn.Split(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidParameter, err)
	}
	cfg := defaultConfig()
	for _, o := range d.opts {
		o(&cfg)
	}
	innerName := defaultInnerDriver
	redisURL := ""
	for _, p := range params {
		switch p.Key {
		case "cache_driver":
			if d.inner != nil {
				return nil, fmt.Errorf("%w: cache_driver: this driver wraps a fixed inner driver", ErrInvalidParameter)
			}
			if p.Value == "" {
				return nil, fmt.Errorf("%w: cache_driver: empty", ErrInvalidParameter)
			}
			innerName = p.Value
		case "cache_redis":
			if p.Value == "" {
				return nil, fmt.Errorf("%w: cache_redis: empty", ErrInvalidParameter)
			}
			redisURL = p.Value
		default:
			if err := applyParam(&cfg, p.Key, p.Value); err != nil {
				return nil, err
			}
		}
	}

	inner := d.inner
	if inner == nil {
		if inner, err = lookupDriver(innerName, innerDSN); err != nil {
			return nil, redactInner(err, dsnSecrets(innerDSN))
		}
	}

	// Everything that can fail is checked before the Redis client exists, so
	// that an error leaves nothing open.
	if redisURL == "" && cfg.redis == nil {
		return nil, ErrMissingRedis
	}
	if err := cfg.checkLocal(); err != nil {
		return nil, err
	}
	if err := cfg.buildSealer(); err != nil {
		return nil, err
	}
	var innerConnector driver.Connector
	if dc, ok := inner.(driver.DriverContext); ok {
		if innerConnector, err = dc.OpenConnector(innerDSN); err != nil {
			return nil, redactInner(err, dsnSecrets(innerDSN))
		}
	} else {
		innerConnector = dsnConnector{dsn: innerDSN, drv: inner}
	}
	if redisURL == "" && cfg.redisSec != (redisSecurity{}) {
		closeQuietly(innerConnector)
		return nil, fmt.Errorf("%w: cache_redis_ca, _cert, _key, _servername, _password_file and _password_env complete cache_redis, which is missing", ErrInvalidParameter)
	}
	if redisURL != "" {
		if err := checkRedisURL(redisURL, cfg.redisInsecure); err != nil {
			closeQuietly(innerConnector)
			return nil, err
		}
		client, addr, secret, err := newRedisFromURL(redisURL, cfg.timeout, cfg.redisSec)
		if err != nil {
			closeQuietly(innerConnector)
			return nil, err
		}
		if cfg.redis != nil {
			// A client given through the Go API: the DSN may replace it,
			// but not with a weaker one.
			if why := weaker(client, cfg.redis); why != "" {
				closeQuietly(innerConnector)
				_ = client.Close()
				return nil, fmt.Errorf("%w: cache_redis would replace the Redis client given with WithRedis by one %s", ErrInvalidParameter, why)
			}
		}
		cfg.redis, cfg.ownRedis, cfg.redisAddr, cfg.redisSecret = client, true, addr, secret
		if err := cfg.checkLocalClient(); err != nil {
			closeQuietly(innerConnector)
			_ = client.Close()
			return nil, err
		}
	} else if err := cfg.checkLocalClient(); err != nil {
		closeQuietly(innerConnector)
		return nil, err
	}
	cn := newConnector(innerConnector, d, cfg)
	// pgx parses its DSN at Connect: its errors there may quote it.
	cn.innerSecrets = dsnSecrets(innerDSN)
	return cn, nil
}

// params lists wtcache's DSN parameters besides cache_driver and cache_redis,
// which openConnector handles itself. Each entry parses and applies a value.
var params = map[string]func(c *config, v string) error{}

func applyParam(c *config, key, value string) error {
	apply, ok := params[key]
	if !ok {
		if lower := strings.ToLower(key); lower != key {
			if _, known := params[lower]; known || lower == "cache_driver" || lower == "cache_redis" {
				return fmt.Errorf("%w %s: parameter names are lower case (%s)", ErrUnknownParameter, key, lower)
			}
		}
		return fmt.Errorf("%w %s (known: %s)", ErrUnknownParameter, key, strings.Join(knownParams(), ", "))
	}
	if err := apply(c, value); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidParameter, key, err)
	}
	return nil
}

func knownParams() []string {
	names := []string{"cache_driver", "cache_redis"}
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

var driverCache sync.Map // name -> driver.Driver

// lookupDriver finds a driver registered with database/sql by name.
// database/sql has no lookup by name, but sql.Open does not connect and
// DB.Driver returns the registered value.
func lookupDriver(name, innerDSN string) (driver.Driver, error) {
	if d, ok := driverCache.Load(name); ok {
		return d.(driver.Driver), nil
	}
	if !slices.Contains(sql.Drivers(), name) {
		return nil, fmt.Errorf("%w: cache_driver=%q is not registered (import its package; registered: %s)",
			ErrUnknownDriver, name, strings.Join(sql.Drivers(), ", "))
	}
	db, err := sql.Open(name, "")
	if err != nil {
		db, err = sql.Open(name, innerDSN) // a driver that refuses an empty DSN
	}
	if err != nil {
		return nil, fmt.Errorf("%w: cache_driver=%q: %w", ErrUnknownDriver, name, err)
	}
	d := db.Driver()
	_ = db.Close()
	if _, self := d.(*wtDriver); self {
		return nil, fmt.Errorf("%w: cache_driver=%q is a wtcache driver; name the driver it should wrap", ErrUnknownDriver, name)
	}
	driverCache.Store(name, d)
	return d, nil
}

// dsnConnector adapts a driver without DriverContext, as database/sql does.
type dsnConnector struct {
	dsn string
	drv driver.Driver
}

func (t dsnConnector) Connect(context.Context) (driver.Conn, error) {
	c, err := t.drv.Open(t.dsn)
	return c, redactInner(err, dsnSecrets(t.dsn))
}
func (t dsnConnector) Driver() driver.Driver { return t.drv }
