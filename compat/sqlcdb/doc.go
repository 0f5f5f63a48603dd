// Package sqlcdb is sqlc-style data access code for the compat tests: what
// sqlc v1.31.1 generates for engine postgresql with sql_package
// database/sql, written by hand (see sqlc.yaml, schema.sql and query.sql).
// Its DBTX is satisfied by the *sql.DB of wtcache or of plain pgx.
package sqlcdb
