package compat_test

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// bun with pgdialect over a *sql.DB: bun formats the arguments into the
// statement text, so every key gives a new text with literals.

type bunAccount struct {
	bun.BaseModel `bun:"table:compat_bun_accounts,alias:a"`

	ID        int64          `bun:"id,pk,autoincrement"`
	Owner     string         `bun:"owner,notnull"`
	Balance   int64          `bun:"balance,notnull"`
	Note      sql.NullString `bun:"note"`
	CreatedAt time.Time      `bun:"created_at,notnull,default:current_timestamp"`
}

type bunTransfer struct {
	bun.BaseModel `bun:"table:compat_bun_transfers,alias:t"`

	ID        int64       `bun:"id,pk,autoincrement"`
	AccountID int64       `bun:"account_id,notnull"`
	Account   *bunAccount `bun:"rel:belongs-to,join:account_id=id"`
	Amount    int64       `bun:"amount,notnull"`
}

var bunTables = []string{"compat_bun_accounts", "compat_bun_transfers"}

var bunDDL = []string{
	`CREATE TABLE compat_bun_accounts (
		id bigserial PRIMARY KEY,
		owner text NOT NULL,
		balance bigint NOT NULL,
		note text,
		created_at timestamptz NOT NULL DEFAULT current_timestamp
	)`,
	`CREATE TABLE compat_bun_transfers (
		id bigserial PRIMARY KEY,
		account_id bigint NOT NULL REFERENCES compat_bun_accounts(id),
		amount bigint NOT NULL
	)`,
}

// bunRecorder is a bun query hook that records the text bun sends.
type bunRecorder struct{ log *sqlLog }

func (r bunRecorder) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }
func (r bunRecorder) AfterQuery(_ context.Context, ev *bun.QueryEvent)                   { r.log.add(ev.Query) }

func openBun(db *sql.DB, log *sqlLog) *bun.DB {
	b := bun.NewDB(db, pgdialect.New())
	b.AddQueryHook(bunRecorder{log})
	return b
}

func TestBun(t *testing.T) {
	e := newEnv(t, "bun", bunTables, bunDDL...)
	ctx := context.Background()
	var log sqlLog
	cached := openBun(e.Cached.DB, &log)
	other := openBun(e.Other.DB, &log)
	plain := openBun(e.Plain, &sqlLog{})

	accounts := []*bunAccount{
		{Owner: "ann", Balance: 100, Note: sql.NullString{String: "it's \"quoted\"", Valid: true}},
		{Owner: "bob", Balance: 250},
		{Owner: "cid", Balance: 75, Note: sql.NullString{String: "vip", Valid: true}},
		{Owner: "dee", Balance: 250},
		{Owner: "eve", Balance: 0},
	}
	if _, err := cached.NewInsert().Model(&accounts).Exec(ctx); err != nil {
		t.Fatalf("insert accounts: %v", err)
	}
	for i, a := range accounts {
		for j := range 2 {
			tr := &bunTransfer{AccountID: a.ID, Amount: int64(10*i + j)}
			if _, err := cached.NewInsert().Model(tr).Exec(ctx); err != nil {
				t.Fatalf("insert transfer: %v", err)
			}
		}
	}
	ann, bob, cid, dee, eve := accounts[0], accounts[1], accounts[2], accounts[3], accounts[4]

	byID := func(id int64) func(db *bun.DB) (bunAccount, error) {
		return func(db *bun.DB) (a bunAccount, err error) {
			err = db.NewSelect().Model(&a).Where("id = ?", id).Scan(ctx)
			return
		}
	}
	byPK := func(id int64) func(db *bun.DB) (bunAccount, error) {
		return func(db *bun.DB) (a bunAccount, err error) {
			a.ID = id
			err = db.NewSelect().Model(&a).WherePK().Scan(ctx)
			return
		}
	}

	t.Run("Where id", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*bun.DB, bunAccount]{rows: 1, read: byID(ann.ID)})
	})
	t.Run("WherePK", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*bun.DB, bunAccount]{rows: 1, read: byPK(bob.ID)})
	})
	t.Run("Where qualified id with Limit", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*bun.DB, bunAccount]{
			rows: 1,
			read: func(db *bun.DB) (a bunAccount, err error) {
				err = db.NewSelect().Model(&a).Where("?TableAlias.id = ?", cid.ID).Limit(1).Scan(ctx)
				return
			},
		})
	})
	t.Run("Where id IN", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*bun.DB, []bunAccount]{
			rows: 2,
			read: func(db *bun.DB) (as []bunAccount, err error) {
				err = db.NewSelect().Model(&as).Where("id IN (?)", bun.In([]int64{dee.ID, eve.ID})).Order("id").Scan(ctx)
				return
			},
		})
	})
	t.Run("WherePK on a slice", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*bun.DB, []bunAccount]{
			rows: 2,
			read: func(db *bun.DB) ([]bunAccount, error) {
				as := []bunAccount{{ID: ann.ID}, {ID: cid.ID}}
				err := db.NewSelect().Model(&as).WherePK().Scan(ctx)
				return as, err
			},
		})
	})
	t.Run("Column subset", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*bun.DB, bunAccount]{
			rows: 1,
			read: func(db *bun.DB) (a bunAccount, err error) {
				err = db.NewSelect().Model(&a).Column("id", "owner", "balance").Where("id = ?", eve.ID).Scan(ctx)
				return
			},
		})
	})

	t.Run("NewUpdate is read by the other handle", func(t *testing.T) {
		expectServed(t, e.Other, other, plain, &log, lookupCase[*bun.DB, bunAccount]{rows: 1, read: byPK(bob.ID)})
		a := *bob
		a.Owner, a.Balance, a.Note = "robert", 260, sql.NullString{String: "renamed", Valid: true}
		m := log.mark()
		if _, err := cached.NewUpdate().Model(&a).WherePK().Exec(ctx); err != nil {
			t.Fatalf("NewUpdate: %v", err)
		}
		if _, err := cached.NewUpdate().Model((*bunAccount)(nil)).Set("balance = balance + ?", 5).Where("id = ?", bob.ID).Exec(ctx); err != nil {
			t.Fatalf("NewUpdate Set: %v", err)
		}
		t.Logf("NewUpdate sent: %q", log.since(m))
		got := bunReadAfterWrite(t, e, other, plain, &log, byPK(bob.ID))
		if got.Owner != "robert" || got.Balance != 265 || got.Note.String != "renamed" {
			t.Fatalf("after NewUpdate the other handle reads %+v", got)
		}
	})
	t.Run("RunInTx NewUpdate Column is read by the other handle", func(t *testing.T) {
		expectServed(t, e.Other, other, plain, &log, lookupCase[*bun.DB, bunAccount]{rows: 1, read: byID(dee.ID)})
		m := log.mark()
		err := cached.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			a := bunAccount{ID: dee.ID, Balance: 1}
			_, err := tx.NewUpdate().Model(&a).Column("balance").WherePK().Exec(ctx)
			return err
		})
		if err != nil {
			t.Fatalf("RunInTx: %v", err)
		}
		t.Logf("NewUpdate in a transaction sent: %q", log.since(m))
		got := bunReadAfterWrite(t, e, other, plain, &log, byID(dee.ID))
		if got.Balance != 1 || got.Owner != "dee" {
			t.Fatalf("after NewUpdate in a transaction the other handle reads %+v", got)
		}
	})
	t.Run("NewDelete is read by the other handle", func(t *testing.T) {
		expectServed(t, e.Other, other, plain, &log, lookupCase[*bun.DB, bunAccount]{rows: 1, read: byID(eve.ID)})
		m := log.mark()
		err := cached.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewDelete().Model((*bunTransfer)(nil)).Where("account_id = ?", eve.ID).Exec(ctx); err != nil {
				return err
			}
			_, err := tx.NewDelete().Model(&bunAccount{ID: eve.ID}).WherePK().Exec(ctx)
			return err
		})
		if err != nil {
			t.Fatalf("NewDelete: %v", err)
		}
		t.Logf("NewDelete sent: %q", log.since(m))
		if _, err := byID(eve.ID)(other); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("select through the other handle after NewDelete: %v; want sql.ErrNoRows", err)
		}
	})

	t.Run("queries", func(t *testing.T) {
		queries := []struct {
			name string
			read func(db *bun.DB) (any, error)
		}{
			{"Where non-key Order", func(db *bun.DB) (any, error) {
				var as []bunAccount
				err := db.NewSelect().Model(&as).Where("balance >= ?", 100).Order("balance DESC", "id").Scan(ctx)
				return as, err
			}},
			{"Limit Offset", func(db *bun.DB) (any, error) {
				var as []bunAccount
				err := db.NewSelect().Model(&as).Order("owner").Limit(2).Offset(1).Scan(ctx)
				return as, err
			}},
			{"Count", func(db *bun.DB) (any, error) {
				return db.NewSelect().Model((*bunAccount)(nil)).Where("balance > ?", 50).Count(ctx)
			}},
			{"ScanAndCount", func(db *bun.DB) (any, error) {
				var as []bunAccount
				n, err := db.NewSelect().Model(&as).Order("id").Limit(2).ScanAndCount(ctx)
				return []any{as, n}, err
			}},
			{"Relation belongs-to", func(db *bun.DB) (any, error) {
				var ts []bunTransfer
				err := db.NewSelect().Model(&ts).Relation("Account").Order("t.id").Scan(ctx)
				return ts, err
			}},
			{"not found", func(db *bun.DB) (any, error) {
				var a bunAccount
				err := db.NewSelect().Model(&a).Where("id = ?", int64(1)<<40).Scan(ctx)
				return a, err
			}},
			{"Exists", func(db *bun.DB) (any, error) {
				return db.NewSelect().Model((*bunAccount)(nil)).Where("owner = ?", "ann").Exists(ctx)
			}},
		}
		for _, q := range queries {
			t.Run(q.name, func(t *testing.T) {
				expectSame(t, cached, plain, q.read)
			})
		}
	})
}

// bunReadAfterWrite reads through the other handle right after a write,
// requires what plain pgx reads, and then that the new row is served from
// Redis again.
func bunReadAfterWrite(t *testing.T, e *env, other, plain *bun.DB, log *sqlLog, read func(*bun.DB) (bunAccount, error)) bunAccount {
	t.Helper()
	got, err := read(other)
	if err != nil {
		t.Fatalf("select through the other handle right after the write: %v", err)
	}
	want, err := read(plain)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the other handle reads a stale row right after the write\n got: %+v\nwant: %+v", got, want)
	}
	expectServed(t, e.Other, other, plain, log, lookupCase[*bun.DB, bunAccount]{rows: 1, read: read})
	return got
}
