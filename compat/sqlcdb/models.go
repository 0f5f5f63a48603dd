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
	"database/sql"
	"time"
)

type CompatSqlcAuthor struct {
	ID        int64
	Name      string
	Bio       sql.NullString
	CreatedAt time.Time
}
