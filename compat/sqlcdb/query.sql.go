// Written by hand, not generated: this is the code that sqlc v1.31.1
// generates from sqlc.yaml, schema.sql and query.sql in this directory
// (engine postgresql, sql_package database/sql), kept by hand so that the
// compat module does not depend on sqlc. Apart from this comment, which
// replaces sqlc's "Code generated" header, "sqlc generate" here reproduces it.
//
// versions:
//   sqlc v1.31.1
// source: query.sql

package sqlcdb

import (
	"context"
	"database/sql"
)

const countAuthors = `-- name: CountAuthors :one
SELECT count(*) FROM compat_sqlc_authors
`

func (q *Queries) CountAuthors(ctx context.Context) (int64, error) {
	row := q.db.QueryRowContext(ctx, countAuthors)
	var count int64
	err := row.Scan(&count)
	return count, err
}

const createAuthor = `-- name: CreateAuthor :one
INSERT INTO compat_sqlc_authors (
  name, bio
) VALUES (
  $1, $2
)
RETURNING id, name, bio, created_at
`

type CreateAuthorParams struct {
	Name string
	Bio  sql.NullString
}

func (q *Queries) CreateAuthor(ctx context.Context, arg CreateAuthorParams) (CompatSqlcAuthor, error) {
	row := q.db.QueryRowContext(ctx, createAuthor, arg.Name, arg.Bio)
	var i CompatSqlcAuthor
	err := row.Scan(
		&i.ID,
		&i.Name,
		&i.Bio,
		&i.CreatedAt,
	)
	return i, err
}

const deleteAuthor = `-- name: DeleteAuthor :exec
DELETE FROM compat_sqlc_authors
WHERE id = $1
`

func (q *Queries) DeleteAuthor(ctx context.Context, id int64) error {
	_, err := q.db.ExecContext(ctx, deleteAuthor, id)
	return err
}

const getAuthor = `-- name: GetAuthor :one
SELECT id, name, bio, created_at FROM compat_sqlc_authors
WHERE id = $1 LIMIT 1
`

func (q *Queries) GetAuthor(ctx context.Context, id int64) (CompatSqlcAuthor, error) {
	row := q.db.QueryRowContext(ctx, getAuthor, id)
	var i CompatSqlcAuthor
	err := row.Scan(
		&i.ID,
		&i.Name,
		&i.Bio,
		&i.CreatedAt,
	)
	return i, err
}

const listAuthors = `-- name: ListAuthors :many
SELECT id, name, bio, created_at FROM compat_sqlc_authors
ORDER BY name
`

func (q *Queries) ListAuthors(ctx context.Context) ([]CompatSqlcAuthor, error) {
	rows, err := q.db.QueryContext(ctx, listAuthors)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []CompatSqlcAuthor
	for rows.Next() {
		var i CompatSqlcAuthor
		if err := rows.Scan(
			&i.ID,
			&i.Name,
			&i.Bio,
			&i.CreatedAt,
		); err != nil {
			return nil, err
		}
		items = append(items, i)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return items, nil
}

const listAuthorsByName = `-- name: ListAuthorsByName :many
SELECT id, name, bio, created_at FROM compat_sqlc_authors
WHERE name = $1
ORDER BY id
`

func (q *Queries) ListAuthorsByName(ctx context.Context, name string) ([]CompatSqlcAuthor, error) {
	rows, err := q.db.QueryContext(ctx, listAuthorsByName, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []CompatSqlcAuthor
	for rows.Next() {
		var i CompatSqlcAuthor
		if err := rows.Scan(
			&i.ID,
			&i.Name,
			&i.Bio,
			&i.CreatedAt,
		); err != nil {
			return nil, err
		}
		items = append(items, i)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return items, nil
}

const updateAuthor = `-- name: UpdateAuthor :exec
UPDATE compat_sqlc_authors
  set name = $2,
  bio = $3
WHERE id = $1
`

type UpdateAuthorParams struct {
	ID   int64
	Name string
	Bio  sql.NullString
}

func (q *Queries) UpdateAuthor(ctx context.Context, arg UpdateAuthorParams) error {
	_, err := q.db.ExecContext(ctx, updateAuthor, arg.ID, arg.Name, arg.Bio)
	return err
}
