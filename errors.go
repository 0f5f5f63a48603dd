package wtcache

import "errors"

// Sentinel errors. Every error wtcache itself creates starts with "wtcache: "
// and wraps one of these, so that callers can test for them with errors.Is.
// Errors that come from the inner driver are returned unchanged.
var (
	// ErrMissingRedis is returned by sql.Open when the DSN has no cache_redis
	// parameter and no Redis client was given in code.
	ErrMissingRedis = errors.New("wtcache: cache_redis is required")
	// ErrUnknownParameter is returned for a DSN parameter that starts with
	// "cache_" but is not one that wtcache knows (a typo must not be ignored).
	ErrUnknownParameter = errors.New("wtcache: unknown parameter")
	// ErrInvalidParameter is returned for a DSN parameter whose value is
	// malformed. The message names the parameter and never holds a password.
	ErrInvalidParameter = errors.New("wtcache: invalid parameter")
	// ErrUnknownDriver is returned when cache_driver names a driver that is
	// not registered with database/sql, or names wtcache itself.
	ErrUnknownDriver = errors.New("wtcache: unknown inner driver")
	// ErrNilArgument is returned by the Go API when a required argument is nil.
	ErrNilArgument = errors.New("wtcache: required argument is nil")
)
