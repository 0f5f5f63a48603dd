package compat_test

import (
	"database/sql"
	"errors"
	"reflect"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// GORM with its postgres driver over a *sql.DB, models with gorm.Model's
// soft delete.

type gormCompany struct {
	ID   uint
	Name string
}

func (gormCompany) TableName() string { return "compat_gorm_companies" }

type gormUser struct {
	gorm.Model
	Name      string
	Email     *string
	Age       int
	Active    bool
	Balance   float64
	CompanyID *uint
	Company   *gormCompany
	Posts     []gormPost `gorm:"foreignKey:UserID"`
}

func (gormUser) TableName() string { return "compat_gorm_users" }

type gormPost struct {
	gorm.Model
	UserID uint
	Title  string
}

func (gormPost) TableName() string { return "compat_gorm_posts" }

var gormTables = []string{"compat_gorm_companies", "compat_gorm_users", "compat_gorm_posts"}

var gormDDL = []string{
	`CREATE TABLE compat_gorm_companies (
		id bigserial PRIMARY KEY,
		name text NOT NULL
	)`,
	`CREATE TABLE compat_gorm_users (
		id bigserial PRIMARY KEY,
		created_at timestamptz,
		updated_at timestamptz,
		deleted_at timestamptz,
		name text NOT NULL,
		email text,
		age bigint NOT NULL DEFAULT 0,
		active boolean NOT NULL DEFAULT false,
		balance numeric(12,2) NOT NULL DEFAULT 0,
		company_id bigint REFERENCES compat_gorm_companies(id)
	)`,
	`CREATE INDEX ON compat_gorm_users (deleted_at)`,
	`CREATE TABLE compat_gorm_posts (
		id bigserial PRIMARY KEY,
		created_at timestamptz,
		updated_at timestamptz,
		deleted_at timestamptz,
		user_id bigint NOT NULL REFERENCES compat_gorm_users(id),
		title text NOT NULL
	)`,
}

// openGORM opens GORM on db and records the SQL text of every statement it
// sends.
func openGORM(t *testing.T, db *sql.DB, log *sqlLog) *gorm.DB {
	t.Helper()
	g, err := gorm.Open(postgres.New(postgres.Config{Conn: db}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("gorm.Open: %v", err)
	}
	record := func(tx *gorm.DB) { log.add(tx.Statement.SQL.String()) }
	cb := g.Callback()
	for _, err := range []error{
		cb.Query().After("gorm:query").Register("compat:record", record),
		cb.Row().After("gorm:row").Register("compat:record", record),
		cb.Raw().After("gorm:raw").Register("compat:record", record),
		cb.Create().After("gorm:create").Register("compat:record", record),
		cb.Update().After("gorm:update").Register("compat:record", record),
		cb.Delete().After("gorm:delete").Register("compat:record", record),
	} {
		if err != nil {
			t.Fatalf("registering the recording callback: %v", err)
		}
	}
	return g
}

func TestGORM(t *testing.T) {
	e := newEnv(t, "gorm", gormTables, gormDDL...)
	var log sqlLog
	cached := openGORM(t, e.Cached.DB, &log)
	other := openGORM(t, e.Other.DB, &log)
	plain := openGORM(t, e.Plain, &sqlLog{})

	email := func(s string) *string { return &s }
	acme, globex := gormCompany{Name: "Acme"}, gormCompany{Name: "Globex"}
	for _, c := range []*gormCompany{&acme, &globex} {
		if err := plain.Create(c).Error; err != nil {
			t.Fatalf("creating company: %v", err)
		}
	}
	// Rows are created through wtcache, as an application would.
	users := []*gormUser{
		{Name: "ann", Email: email("ann@example.com"), Age: 31, Active: true, Balance: 10.5, CompanyID: &acme.ID},
		{Name: "bob", Age: 42, Balance: 0.25, CompanyID: &globex.ID},
		{Name: "cid", Email: email("cid@example.com"), Age: 23, Active: true, CompanyID: &acme.ID},
		{Name: "dee", Age: 42, Balance: 99.99},
		{Name: "eve", Email: email("eve@example.com"), Age: 55, Active: true, Balance: 1, CompanyID: &globex.ID},
		{Name: "fay", Age: 19, Balance: 7},
		{Name: "gus", Age: 42, CompanyID: &acme.ID},
		{Name: "hal", Age: 64, Active: true, Balance: 3.5},
	}
	for _, u := range users {
		if err := cached.Create(u).Error; err != nil {
			t.Fatalf("creating user %s: %v", u.Name, err)
		}
		for _, title := range []string{"first post of " + u.Name, "second post of " + u.Name} {
			if err := cached.Create(&gormPost{UserID: u.ID, Title: title}).Error; err != nil {
				t.Fatalf("creating post: %v", err)
			}
		}
	}
	ann, bob, cid, dee, eve, fay, gus, hal := users[0], users[1], users[2], users[3], users[4], users[5], users[6], users[7]

	t.Run("First", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*gorm.DB, gormUser]{
			rows: 1,
			read: func(g *gorm.DB) (u gormUser, err error) { err = g.First(&u, ann.ID).Error; return },
		})
	})
	t.Run("First with string condition", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*gorm.DB, gormUser]{
			rows: 1,
			read: func(g *gorm.DB) (u gormUser, err error) { err = g.First(&u, "id = ?", bob.ID).Error; return },
		})
	})
	t.Run("Take", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*gorm.DB, gormUser]{
			rows: 1,
			read: func(g *gorm.DB) (u gormUser, err error) { err = g.Take(&u, cid.ID).Error; return },
		})
	})
	t.Run("Find by primary key", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*gorm.DB, gormUser]{
			rows: 1,
			read: func(g *gorm.DB) (u gormUser, err error) { err = g.Find(&u, dee.ID).Error; return },
		})
	})
	t.Run("Find by primary keys", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*gorm.DB, []gormUser]{
			rows: 3,
			read: func(g *gorm.DB) (us []gormUser, err error) {
				err = g.Find(&us, []uint{eve.ID, fay.ID, gus.ID}).Error
				return
			},
		})
	})
	t.Run("First with Preload", func(t *testing.T) {
		// The user comes from Redis; the posts (by user_id) from
		// PostgreSQL.
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*gorm.DB, gormUser]{
			rows: 1,
			read: func(g *gorm.DB) (u gormUser, err error) {
				err = g.Preload("Posts", func(db *gorm.DB) *gorm.DB { return db.Order("id") }).First(&u, hal.ID).Error
				return
			},
		})
	})
	t.Run("Unscoped First", func(t *testing.T) {
		expectServed(t, e.Cached, cached, plain, &log, lookupCase[*gorm.DB, gormUser]{
			rows: 1,
			read: func(g *gorm.DB) (u gormUser, err error) { err = g.Unscoped().First(&u, ann.ID).Error; return },
		})
	})

	// Writes through one handle are visible at once through the other,
	// which had the row in Redis.
	t.Run("Save is read by the other handle", func(t *testing.T) {
		warm(t, e, other, plain, &log, bob.ID)
		var u gormUser
		if err := cached.First(&u, bob.ID).Error; err != nil {
			t.Fatal(err)
		}
		u.Name, u.Age, u.Email, u.Balance = "robert", 43, email("robert@example.com"), 12.75
		m := log.mark()
		if err := cached.Save(&u).Error; err != nil {
			t.Fatalf("Save: %v", err)
		}
		t.Logf("Save sent: %q", log.since(m))
		got := readAfterWrite(t, e, other, plain, &log, bob.ID)
		if got.Name != "robert" || got.Age != 43 || got.Email == nil || *got.Email != "robert@example.com" || got.Balance != 12.75 {
			t.Fatalf("after Save the other handle reads %+v", got)
		}
	})
	t.Run("Update is read by the other handle", func(t *testing.T) {
		warm(t, e, other, plain, &log, cid.ID)
		m := log.mark()
		if err := cached.Model(&gormUser{Model: gorm.Model{ID: cid.ID}}).Updates(map[string]any{"name": "cidney", "active": false}).Error; err != nil {
			t.Fatalf("Updates: %v", err)
		}
		if err := cached.Model(&gormUser{Model: gorm.Model{ID: cid.ID}}).Update("age", gorm.Expr("age + ?", 1)).Error; err != nil {
			t.Fatalf("Update: %v", err)
		}
		t.Logf("Update sent: %q", log.since(m))
		got := readAfterWrite(t, e, other, plain, &log, cid.ID)
		if got.Name != "cidney" || got.Active || got.Age != 24 {
			t.Fatalf("after Update the other handle reads %+v", got)
		}
	})
	t.Run("soft Delete is read by the other handle", func(t *testing.T) {
		warm(t, e, other, plain, &log, fay.ID)
		m := log.mark()
		if err := cached.Delete(&gormUser{}, fay.ID).Error; err != nil {
			t.Fatalf("Delete: %v", err)
		}
		t.Logf("Delete sent: %q", log.since(m))
		var u gormUser
		if err := other.First(&u, fay.ID).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
			t.Fatalf("First after soft delete through the other handle: %v, %+v; want ErrRecordNotFound", err, u)
		}
		// The row is still there for Unscoped, with its deleted_at.
		got := expectServed(t, e.Other, other, plain, &log, lookupCase[*gorm.DB, gormUser]{
			rows: 1,
			read: func(g *gorm.DB) (u gormUser, err error) { err = g.Unscoped().First(&u, fay.ID).Error; return },
		})
		if !got.DeletedAt.Valid {
			t.Fatalf("Unscoped First after soft delete: DeletedAt not set: %+v", got)
		}
		// And First keeps answering "not found" once the row is in Redis.
		for range 3 {
			if err := other.First(&u, fay.ID).Error; !errors.Is(err, gorm.ErrRecordNotFound) {
				t.Fatalf("First of a soft-deleted row: %v; want ErrRecordNotFound", err)
			}
		}
	})
	t.Run("Create in a transaction is read by the other handle", func(t *testing.T) {
		u := gormUser{Name: "ida", Age: 37, Email: email("ida@example.com")}
		err := cached.Transaction(func(tx *gorm.DB) error {
			if err := tx.Create(&u).Error; err != nil {
				return err
			}
			return tx.Create(&gormPost{UserID: u.ID, Title: "hello from ida"}).Error
		})
		if err != nil {
			t.Fatalf("Transaction: %v", err)
		}
		got := readAfterWrite(t, e, other, plain, &log, u.ID)
		if got.Name != "ida" {
			t.Fatalf("after Create the other handle reads %+v", got)
		}
	})

	// Everything else GORM sends gives what plain pgx gives.
	t.Run("queries", func(t *testing.T) {
		order := func(g *gorm.DB) *gorm.DB { return g.Order("id") }
		queries := []struct {
			name string
			read func(g *gorm.DB) (any, error)
		}{
			{"Where non-key", func(g *gorm.DB) (any, error) {
				var us []gormUser
				err := g.Where("age = ?", 42).Order("name").Find(&us).Error
				return us, err
			}},
			{"Where struct", func(g *gorm.DB) (any, error) {
				var us []gormUser
				err := g.Where(&gormUser{Active: true}).Order("id desc").Find(&us).Error
				return us, err
			}},
			{"Order Limit Offset", func(g *gorm.DB) (any, error) {
				var us []gormUser
				err := g.Order("balance desc, id").Limit(3).Offset(1).Find(&us).Error
				return us, err
			}},
			{"First without key", func(g *gorm.DB) (any, error) {
				var u gormUser
				err := g.Where("name LIKE ?", "e%").First(&u).Error
				return u, err
			}},
			{"Last", func(g *gorm.DB) (any, error) {
				var u gormUser
				err := g.Last(&u).Error
				return u, err
			}},
			{"not found", func(g *gorm.DB) (any, error) {
				var u gormUser
				err := g.First(&u, 1<<40).Error
				return u, err
			}},
			{"Count", func(g *gorm.DB) (any, error) {
				var n int64
				err := g.Model(&gormUser{}).Where("age > ?", 30).Count(&n).Error
				return n, err
			}},
			{"Pluck", func(g *gorm.DB) (any, error) {
				var names []string
				err := g.Model(&gormUser{}).Order("name").Pluck("name", &names).Error
				return names, err
			}},
			{"Select columns", func(g *gorm.DB) (any, error) {
				var us []gormUser
				err := order(g).Select("id", "name", "age").Where("id IN ?", []uint{ann.ID, bob.ID}).Find(&us).Error
				return us, err
			}},
			{"Group Having", func(g *gorm.DB) (any, error) {
				type row struct {
					Age int
					N   int64
				}
				var rs []row
				err := g.Model(&gormUser{}).Select("age, count(*) AS n").Group("age").Having("count(*) > ?", 1).Order("age").Scan(&rs).Error
				return rs, err
			}},
			{"Preload", func(g *gorm.DB) (any, error) {
				var us []gormUser
				err := order(g).Preload("Posts", order).Preload("Company").Find(&us).Error
				return us, err
			}},
			{"Joins", func(g *gorm.DB) (any, error) {
				var us []gormUser
				err := g.Joins("Company").Where(`"Company"."name" = ?`, "Acme").Order("compat_gorm_users.id").Find(&us).Error
				return us, err
			}},
			{"Joins with key", func(g *gorm.DB) (any, error) {
				var u gormUser
				err := g.Joins("Company").First(&u, ann.ID).Error
				return u, err
			}},
			{"Raw", func(g *gorm.DB) (any, error) {
				type row struct {
					Name  string
					Posts int64
				}
				var rs []row
				err := g.Raw(`SELECT u.name, count(p.id) AS posts FROM compat_gorm_users u
					JOIN compat_gorm_posts p ON p.user_id = u.id GROUP BY u.name ORDER BY u.name`).Scan(&rs).Error
				return rs, err
			}},
		}
		for _, q := range queries {
			t.Run(q.name, func(t *testing.T) {
				expectSame(t, cached, plain, q.read)
			})
		}
	})
}

// warm makes sure the other handle has user id in Redis.
func warm(t *testing.T, e *env, other, plain *gorm.DB, log *sqlLog, id uint) {
	t.Helper()
	expectServed(t, e.Other, other, plain, log, lookupCase[*gorm.DB, gormUser]{
		rows: 1,
		read: func(g *gorm.DB) (u gormUser, err error) { err = g.First(&u, id).Error; return },
	})
}

// readAfterWrite reads user id through the other handle right after a
// write, requires what plain pgx reads, and then that the new row is
// served from Redis again.
func readAfterWrite(t *testing.T, e *env, other, plain *gorm.DB, log *sqlLog, id uint) gormUser {
	t.Helper()
	var got, want gormUser
	if err := other.First(&got, id).Error; err != nil {
		t.Fatalf("First through the other handle right after the write: %v", err)
	}
	if err := plain.First(&want, id).Error; err != nil {
		t.Fatalf("First through plain pgx: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the other handle reads a stale row right after the write\n got: %+v\nwant: %+v", got, want)
	}
	expectServed(t, e.Other, other, plain, log, lookupCase[*gorm.DB, gormUser]{
		rows: 1,
		read: func(g *gorm.DB) (u gormUser, err error) { err = g.First(&u, id).Error; return },
	})
	return got
}
