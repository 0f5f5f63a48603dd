// Written by hand, not generated: this is the code that sqlc v1.31.1
// generates from sqlc.yaml, schema.sql and query.sql in this directory
// (engine postgresql, sql_package database/sql), kept by hand so that the
// compat module does not depend on sqlc. Apart from this comment, which
// replaces sqlc's "Code generated" header, "sqlc generate" here reproduces it.
//
// versions:
//   sqlc v1.31.1

package sqlcdb

import (
	"context"
	"database/sql"
)

type DBTX interface {
	ExecContext(context.Context, string, ...interface{}) (sql.Result, error)
	PrepareContext(context.Context, string) (*sql.Stmt, error)
	QueryContext(context.Context, string, ...interface{}) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...interface{}) *sql.Row
}

func New(db DBTX) *Queries {
	return &Queries{db: db}
}

type Queries struct {
	db DBTX
}

func (q *Queries) WithTx(tx *sql.Tx) *Queries {
	return &Queries{
		db: tx,
	}
}
