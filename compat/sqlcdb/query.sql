-- name: GetAuthor :one
SELECT * FROM compat_sqlc_authors
WHERE id = $1 LIMIT 1;

-- name: ListAuthors :many
SELECT * FROM compat_sqlc_authors
ORDER BY name;

-- name: ListAuthorsByName :many
SELECT * FROM compat_sqlc_authors
WHERE name = $1
ORDER BY id;

-- name: CountAuthors :one
SELECT count(*) FROM compat_sqlc_authors;

-- name: CreateAuthor :one
INSERT INTO compat_sqlc_authors (
  name, bio
) VALUES (
  $1, $2
)
RETURNING *;

-- name: UpdateAuthor :exec
UPDATE compat_sqlc_authors
  set name = $2,
  bio = $3
WHERE id = $1;

-- name: DeleteAuthor :exec
DELETE FROM compat_sqlc_authors
WHERE id = $1;
