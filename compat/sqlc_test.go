package compat_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/wtcache/wtcache/compat/sqlcdb"
)

// sqlc-style code (package sqlcdb) with DBTX = *sql.DB: the SQL is sent as
// written in query.sql, with sqlc's "-- name:" comment line in front.

func TestSQLC(t *testing.T) {
	schema, err := os.ReadFile("sqlcdb/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "sqlc", []string{"compat_sqlc_authors"}, string(schema))
	ctx := context.Background()
	var log sqlLog
	cached := sqlcdb.New(e.Cached.DB)
	other := sqlcdb.New(e.Other.DB)
	plain := sqlcdb.New(e.Plain)

	var ids []int64
	for i, name := range []string{"ann", "bob", "cid", "bob"} {
		a, err := cached.CreateAuthor(ctx, sqlcdb.CreateAuthorParams{
			Name: name,
			Bio:  sql.NullString{String: strings.Repeat("bio of "+name+". ", i+1), Valid: i != 1},
		})
		if err != nil {
			t.Fatalf("CreateAuthor: %v", err)
		}
		ids = append(ids, a.ID)
	}

	// The text GetAuthor sends, for the report: sqlc's constant is not
	// exported, so one call through plain pgx records it.
	rec := &textRecorder{DB: e.Plain}
	if _, err := sqlcdb.New(rec).GetAuthor(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	getAuthorSQL := rec.last
	getAuthor := func(id int64) func(q *sqlcdb.Queries) (sqlcdb.CompatSqlcAuthor, error) {
		return func(q *sqlcdb.Queries) (sqlcdb.CompatSqlcAuthor, error) {
			log.add(getAuthorSQL)
			return q.GetAuthor(ctx, id)
		}
	}

	t.Run("GetAuthor", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*sqlcdb.Queries, sqlcdb.CompatSqlcAuthor]{rows: 1, read: getAuthor(ids[0])})
	})
	t.Run("UpdateAuthor is read by the other handle", func(t *testing.T) {
		id := ids[1]
		expectServed(t, e.Other, other, plain, &log, lookupCase[*sqlcdb.Queries, sqlcdb.CompatSqlcAuthor]{rows: 1, read: getAuthor(id)})
		err := cached.UpdateAuthor(ctx, sqlcdb.UpdateAuthorParams{ID: id, Name: "robert", Bio: sql.NullString{String: "new bio", Valid: true}})
		if err != nil {
			t.Fatalf("UpdateAuthor: %v", err)
		}
		got, err := other.GetAuthor(ctx, id)
		if err != nil {
			t.Fatalf("GetAuthor through the other handle right after UpdateAuthor: %v", err)
		}
		want, err := plain.GetAuthor(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "robert" || !reflect.DeepEqual(got, want) {
			t.Fatalf("the other handle reads a stale row right after UpdateAuthor\n got: %+v\nwant: %+v", got, want)
		}
		expectServed(t, e.Other, other, plain, &log, lookupCase[*sqlcdb.Queries, sqlcdb.CompatSqlcAuthor]{rows: 1, read: getAuthor(id)})
	})
	t.Run("UpdateAuthor WithTx is read by the other handle", func(t *testing.T) {
		id := ids[2]
		expectServed(t, e.Other, other, plain, &log, lookupCase[*sqlcdb.Queries, sqlcdb.CompatSqlcAuthor]{rows: 1, read: getAuthor(id)})
		tx, err := e.Cached.DB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := cached.WithTx(tx).UpdateAuthor(ctx, sqlcdb.UpdateAuthorParams{ID: id, Name: "cidney"}); err != nil {
			_ = tx.Rollback()
			t.Fatalf("UpdateAuthor in a transaction: %v", err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		got, err := other.GetAuthor(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "cidney" || got.Bio.Valid {
			t.Fatalf("the other handle reads a stale row right after the commit: %+v", got)
		}
	})
	t.Run("DeleteAuthor is read by the other handle", func(t *testing.T) {
		id := ids[3]
		expectServed(t, e.Other, other, plain, &log, lookupCase[*sqlcdb.Queries, sqlcdb.CompatSqlcAuthor]{rows: 1, read: getAuthor(id)})
		if err := cached.DeleteAuthor(ctx, id); err != nil {
			t.Fatalf("DeleteAuthor: %v", err)
		}
		if a, err := other.GetAuthor(ctx, id); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("GetAuthor through the other handle after DeleteAuthor: %v, %+v; want sql.ErrNoRows", err, a)
		}
	})

	t.Run("queries", func(t *testing.T) {
		queries := []struct {
			name string
			read func(q *sqlcdb.Queries) (any, error)
		}{
			{"ListAuthors", func(q *sqlcdb.Queries) (any, error) { return q.ListAuthors(ctx) }},
			{"ListAuthorsByName", func(q *sqlcdb.Queries) (any, error) { return q.ListAuthorsByName(ctx, "ann") }},
			{"CountAuthors", func(q *sqlcdb.Queries) (any, error) { return q.CountAuthors(ctx) }},
			{"GetAuthor missing", func(q *sqlcdb.Queries) (any, error) { return q.GetAuthor(ctx, 1<<40) }},
		}
		for _, q := range queries {
			t.Run(q.name, func(t *testing.T) {
				expectSame(t, cached, plain, q.read)
			})
		}
	})
}

// textRecorder is a DBTX that records the text of QueryRowContext.
type textRecorder struct {
	*sql.DB
	last string
}

func (r *textRecorder) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	r.last = query
	return r.DB.QueryRowContext(ctx, query, args...)
}
