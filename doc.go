// Package wtcache is a database/sql driver that wraps a real driver (pgx v5's
// stdlib by default) and adds write-through caching of PostgreSQL rows in
// Redis.
//
// # Usage
//
// Importing the package registers the driver "wtcache". An application that
// used pgx changes one line:
//
//	db, err := sql.Open("wtcache",
//		"postgres://app@localhost:5432/bank?sslmode=disable&cache_redis=redis%3A%2F%2Flocalhost%3A6379%2F0")
//
// The DSN is the inner driver's DSN (URL or keyword/value form) plus
// wtcache's own parameters, every one prefixed "cache_". They are removed
// before the DSN reaches the inner driver. In the URL form the Redis URL is
// percent-encoded, as above; in the keyword/value form it is quoted:
// host=localhost user=app cache_redis='redis://:secret@localhost:6379/0'. A missing cache_redis, an unknown
// cache_ parameter or a malformed value makes sql.Open return an error that
// names the parameter and never holds a password.
//
// Programs that build their configuration in code wrap any driver.Connector:
//
//	cfg, _ := pgx.ParseConfig(os.Getenv("DATABASE_URL"))
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
//	db := wtcache.OpenDB(stdlib.GetConnector(*cfg), rdb)
//
// # Transparency
//
// Every optional interface of database/sql/driver is forwarded when the inner
// driver implements it, and answered as database/sql itself would answer
// when it does not. Errors of the inner driver come back unchanged, so
// errors.Is(err, driver.ErrBadConn) and errors.As(err, &pgErr) keep working.
// (*sql.Conn).Raw hands wtcache's connection to its callback; [InnerConn]
// returns the inner one (*stdlib.Conn with pgx).
package wtcache
