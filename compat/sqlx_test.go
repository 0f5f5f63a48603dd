package compat_test

import (
	"database/sql"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// sqlx over a *sql.DB: the SQL is sent as written, with $n parameters.

type sqlxAuthor struct {
	ID        int64          `db:"id"`
	Name      string         `db:"name"`
	Email     sql.NullString `db:"email"`
	Rating    float64        `db:"rating"`
	Tags      []byte         `db:"tags"`
	CreatedAt time.Time      `db:"created_at"`
}

var sqlxTables = []string{"compat_sqlx_authors"}

var sqlxDDL = []string{
	`CREATE TABLE compat_sqlx_authors (
		id bigserial PRIMARY KEY,
		name text NOT NULL,
		email text,
		rating double precision NOT NULL DEFAULT 0,
		tags jsonb,
		created_at timestamptz NOT NULL DEFAULT now()
	)`,
}

func TestSQLX(t *testing.T) {
	e := newEnv(t, "sqlx", sqlxTables, sqlxDDL...)
	cached := sqlx.NewDb(e.Cached.DB, "pgx")
	other := sqlx.NewDb(e.Other.DB, "pgx")
	plain := sqlx.NewDb(e.Plain, "pgx")
	var log sqlLog

	var ids []int64
	for i, name := range []string{"ann", "bob", "cid", "dee", "eve", "fay"} {
		var id int64
		email := sql.NullString{String: name + "@example.com", Valid: i%2 == 0}
		err := cached.QueryRowx(`INSERT INTO compat_sqlx_authors (name, email, rating, tags)
			VALUES ($1, $2, $3, $4) RETURNING id`, name, email, float64(i)*1.5, fmt.Sprintf(`{"n": %d}`, i)).Scan(&id)
		if err != nil {
			t.Fatalf("insert %s: %v", name, err)
		}
		ids = append(ids, id)
	}

	const getStar = `SELECT * FROM compat_sqlx_authors WHERE id = $1`
	const getCols = `SELECT id, name, email, rating, tags, created_at FROM compat_sqlx_authors WHERE id = $1`
	get := func(query string, id int64) func(db *sqlx.DB) (sqlxAuthor, error) {
		return func(db *sqlx.DB) (a sqlxAuthor, err error) {
			log.add(query)
			err = db.Get(&a, query, id)
			return
		}
	}

	t.Run("Get SELECT *", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*sqlx.DB, sqlxAuthor]{rows: 1, read: get(getStar, ids[0])})
	})
	t.Run("Get columns", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*sqlx.DB, sqlxAuthor]{rows: 1, read: get(getCols, ids[1])})
	})
	t.Run("Select IN", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*sqlx.DB, []sqlxAuthor]{
			rows: 3,
			read: func(db *sqlx.DB) (as []sqlxAuthor, err error) {
				query, args, err := sqlx.In(`SELECT * FROM compat_sqlx_authors WHERE id IN (?) ORDER BY id`, ids[2:5])
				if err != nil {
					return nil, err
				}
				query = db.Rebind(query)
				log.add(query)
				err = db.Select(&as, query, args...)
				return
			},
		})
	})
	t.Run("Select ANY", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*sqlx.DB, []sqlxAuthor]{
			rows: 2,
			read: func(db *sqlx.DB) (as []sqlxAuthor, err error) {
				const query = `SELECT * FROM compat_sqlx_authors WHERE id = ANY($1) ORDER BY id`
				log.add(query)
				err = db.Select(&as, query, []int64{ids[0], ids[5]})
				return
			},
		})
	})
	t.Run("Exec UPDATE is read by the other handle", func(t *testing.T) {
		id := ids[3]
		expectServed(t, e.Other, other, plain, &log, lookupCase[*sqlx.DB, sqlxAuthor]{rows: 1, read: get(getStar, id)})
		res, err := cached.Exec(`UPDATE compat_sqlx_authors SET name = $1, rating = rating + 1 WHERE id = $2`, "deirdre", id)
		if err != nil {
			t.Fatalf("UPDATE: %v", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("UPDATE affected %d rows", n)
		}
		var got, want sqlxAuthor
		if err := other.Get(&got, getStar, id); err != nil {
			t.Fatalf("Get through the other handle right after the UPDATE: %v", err)
		}
		if err := plain.Get(&want, getStar, id); err != nil {
			t.Fatal(err)
		}
		if got.Name != "deirdre" || !reflect.DeepEqual(got, want) {
			t.Fatalf("the other handle reads a stale row right after the UPDATE\n got: %+v\nwant: %+v", got, want)
		}
		expectServed(t, e.Other, other, plain, &log, lookupCase[*sqlx.DB, sqlxAuthor]{rows: 1, read: get(getStar, id)})
	})
	t.Run("NamedExec in a transaction is read by the other handle", func(t *testing.T) {
		id := ids[4]
		expectServed(t, e.Other, other, plain, &log, lookupCase[*sqlx.DB, sqlxAuthor]{rows: 1, read: get(getCols, id)})
		tx, err := cached.Beginx()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.NamedExec(`UPDATE compat_sqlx_authors SET email = :email WHERE id = :id`,
			map[string]any{"email": "eve@example.org", "id": id}); err != nil {
			_ = tx.Rollback()
			t.Fatalf("NamedExec: %v", err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		var got sqlxAuthor
		if err := other.Get(&got, getCols, id); err != nil {
			t.Fatal(err)
		}
		if got.Email.String != "eve@example.org" {
			t.Fatalf("the other handle reads a stale row right after the commit: %+v", got)
		}
	})
	t.Run("DELETE is read by the other handle", func(t *testing.T) {
		id := ids[5]
		expectServed(t, e.Other, other, plain, &log, lookupCase[*sqlx.DB, sqlxAuthor]{rows: 1, read: get(getStar, id)})
		if _, err := cached.Exec(`DELETE FROM compat_sqlx_authors WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		var got sqlxAuthor
		if err := other.Get(&got, getStar, id); err != sql.ErrNoRows {
			t.Fatalf("Get through the other handle after DELETE: %v, %+v; want sql.ErrNoRows", err, got)
		}
	})

	t.Run("queries", func(t *testing.T) {
		queries := []struct {
			name string
			read func(db *sqlx.DB) (any, error)
		}{
			{"Select non-key", func(db *sqlx.DB) (any, error) {
				var as []sqlxAuthor
				err := db.Select(&as, `SELECT * FROM compat_sqlx_authors WHERE email IS NOT NULL ORDER BY name`)
				return as, err
			}},
			{"Select ORDER BY LIMIT", func(db *sqlx.DB) (any, error) {
				var as []sqlxAuthor
				err := db.Select(&as, `SELECT * FROM compat_sqlx_authors WHERE rating > $1 ORDER BY rating DESC LIMIT $2`, 1.0, 2)
				return as, err
			}},
			{"Get by name", func(db *sqlx.DB) (any, error) {
				var a sqlxAuthor
				err := db.Get(&a, `SELECT * FROM compat_sqlx_authors WHERE name = $1`, "bob")
				return a, err
			}},
			{"Get missing", func(db *sqlx.DB) (any, error) {
				var a sqlxAuthor
				err := db.Get(&a, getStar, int64(1)<<40)
				return a, err
			}},
			{"count", func(db *sqlx.DB) (any, error) {
				var n int
				err := db.Get(&n, `SELECT count(*) FROM compat_sqlx_authors WHERE rating >= $1`, 3.0)
				return n, err
			}},
			{"Queryx MapScan", func(db *sqlx.DB) (any, error) {
				rows, err := db.Queryx(getCols, ids[0])
				if err != nil {
					return nil, err
				}
				defer rows.Close()
				var out []map[string]any
				for rows.Next() {
					m := map[string]any{}
					if err := rows.MapScan(m); err != nil {
						return nil, err
					}
					out = append(out, m)
				}
				return out, rows.Err()
			}},
		}
		for _, q := range queries {
			t.Run(q.name, func(t *testing.T) {
				expectSame(t, cached, plain, q.read)
			})
		}
	})
}
