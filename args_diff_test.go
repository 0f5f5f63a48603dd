package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Argument kinds an application may pass as a key, typed nils among them.
type argValuer struct{ n int64 } // Value on the value: a nil *argValuer has none

func (a argValuer) Value() (driver.Value, error) { return a.n, nil }

type argPtrValuer struct{ n int64 } // Value on the pointer, nil-safe

func (a *argPtrValuer) Value() (driver.Value, error) {
	if a == nil {
		return nil, nil
	}
	return a.n, nil
}

type argID int64

// TestArgumentKindsAsPgx: every kind of key argument (typed nil pointers,
// Valuers on values and on pointers, sql.Null types, named types, other
// integer and text types) gives through wtcache what it gives through pgx:
// the same rows or the same error, for a lookup, for a write by key, and
// for the lookup after the write (read back through both).
func TestArgumentKindsAsPgx(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	db, c := e.open(t, "")
	plain := e.plain(t)
	three := int64(3)
	var nilValuer *argValuer
	var nilPtrValuer *argPtrValuer
	var nilInt *int64
	var nilString *string
	kinds := []struct {
		name string
		v    any
	}{
		{"nil", nil}, {"nil *valuer (value receiver)", nilValuer}, {"nil *valuer (pointer receiver)", nilPtrValuer},
		{"nil *int64", nilInt}, {"nil *string", nilString}, {"*int64", &three},
		{"valuer", argValuer{3}}, {"*valuer", &argValuer{3}}, {"*ptr valuer", &argPtrValuer{3}},
		{"NullInt64 invalid", sql.NullInt64{}}, {"NullInt64", sql.NullInt64{Int64: 3, Valid: true}},
		{"named int", argID(3)}, {"int32", int32(3)}, {"uint64", uint64(3)}, {"string", "3"},
		{"text not a number", "x"}, {"float64", float64(3)}, {"bytes", []byte("3")}, {"bool", true},
	}
	ctx := context.Background()
	run := func(d *sql.DB, q string, arg any) (out string) {
		defer noPanic(&out)
		rows, err := d.QueryContext(ctx, q, arg)
		if err != nil {
			return "error: " + err.Error()
		}
		defer rows.Close()
		for rows.Next() {
			var id, b int64
			if err := rows.Scan(&id, &b); err != nil {
				return "scan: " + err.Error()
			}
			out += fmt.Sprintf("(%d %d)", id, b)
		}
		if err := rows.Err(); err != nil {
			out += " error: " + err.Error()
		}
		return out
	}
	exec := func(d *sql.DB, q string, arg any) (out string) {
		defer noPanic(&out)
		res, err := d.ExecContext(ctx, q, arg)
		if err != nil {
			return "error: " + err.Error()
		}
		n, _ := res.RowsAffected()
		return fmt.Sprint(n)
	}
	const lookup = "SELECT id, balance FROM wt_accounts WHERE id = $1"
	for _, k := range kinds {
		for round := 0; round < 2; round++ { // a miss, then (where served) a hit
			if got, want := run(db, lookup, k.v), run(plain, lookup, k.v); got != want {
				t.Fatalf("%s, lookup %d: wtcache %q, pgx %q", k.name, round, got, want)
			}
			c.settle()
		}
		// The write through wtcache (pgx's own answer compared on a
		// statement that changes nothing), then the row read back.
		if got, want := exec(db, "UPDATE wt_accounts SET balance = balance + 1 WHERE id = $1", k.v),
			exec(plain, "UPDATE wt_accounts SET balance = balance WHERE id = $1", k.v); got != want {
			t.Fatalf("%s, write: wtcache %q, pgx %q", k.name, got, want)
		}
		if got, want := run(db, lookup, int64(3)), run(plain, lookup, int64(3)); got != want {
			t.Fatalf("%s, after the write: wtcache %q, pgx %q", k.name, got, want)
		}
	}
}

// noPanic, deferred, turns a panic into the outcome "PANIC: ...", compared
// like any other.
func noPanic(out *string) {
	if r := recover(); r != nil {
		*out = fmt.Sprintf("PANIC: %v", r)
	}
}

// Key lists of the application's own types: the list a Valuer (its Value
// the list pgx sends), elements whose Value is on the pointer, a Value that
// fails.
type argShiftIDs []int64 // Value: each key + 10

func (s argShiftIDs) Value() (driver.Value, error) {
	out := make([]int64, len(s))
	for i, n := range s {
		out[i] = n + 10
	}
	return out, nil
}

type argShiftTexts []string // Value: each key + 10, as text

func (s argShiftTexts) Value() (driver.Value, error) {
	out := make([]string, len(s))
	for i, x := range s {
		n, _ := strconv.Atoi(x)
		out[i] = strconv.Itoa(n + 10)
	}
	return out, nil
}

type argBadIDs []int64

func (argBadIDs) Value() (driver.Value, error) { return nil, errors.New("no list today") }

type argPtrKey int64 // Value on the pointer: the key + 10

func (p *argPtrKey) Value() (driver.Value, error) {
	if p == nil {
		return nil, nil
	}
	return int64(*p) + 10, nil
}

// TestArrayArgumentKindsAsPgx: key lists (= ANY($1), with and without an
// array cast) of every element kind pgx takes, at the edges of each key
// column's width, through wtcache and pgx: the same rows or the same
// error, for a miss and then for a hit.
func TestArrayArgumentKindsAsPgx(t *testing.T) {
	e := needServices(t)
	db, c := e.open(t, "")
	plain := e.plain(t)
	ctx := context.Background()
	types := map[string]string{"i2": "smallint", "i4": "integer", "i8": "bigint", "tx": "text"}
	for name, typ := range types {
		tb := "wt_arr_" + name
		mustExec(t, plain, "DROP TABLE IF EXISTS "+tb)
		mustExec(t, plain, "CREATE TABLE "+tb+" (id "+typ+" PRIMARY KEY, v int)")
		mustExec(t, plain, "INSERT INTO "+tb+" SELECT g::"+map[bool]string{true: "text", false: typ}[name == "tx"]+", g FROM generate_series(1, 20) g")
		if name != "tx" {
			mustExec(t, plain, "INSERT INTO "+tb+" VALUES (-32768, -1), (32767, 1)")
		}
		t.Cleanup(func() { mustExec(t, plain, "DROP TABLE IF EXISTS "+tb) })
	}
	one, nine := int64(1), int64(9)
	p3, p4 := argPtrKey(3), argPtrKey(4)
	args := []struct {
		name string
		v    any
	}{
		{"[]int64", []int64{3, 1, 3, 20, 99}}, {"[]int64 empty", []int64{}},
		{"[]int64 int2 edges", []int64{-32768, 32767, 32768, -32769}},
		{"[]int64 int4 edges", []int64{math.MaxInt32, math.MaxInt32 + 1, math.MinInt32, math.MinInt32 - 1}},
		{"[]int64 int8 edges", []int64{math.MaxInt64, math.MinInt64, 2}},
		{"[]int32", []int32{2, 4, math.MaxInt32}}, {"[]int", []int{5, 6}}, {"[]int16", []int16{7, -32768}},
		{"[]uint64", []uint64{8, math.MaxUint64}}, {"[]*int64 with nil", []*int64{&one, nil, &nine}},
		{"[]string numbers", []string{"10", "11", " 12", "x"}}, {"[]string", []string{"1", "2"}},
		{"[]float64", []float64{1, 2.5}}, {"[]bool", []bool{true}},
		{"list Valuer", argShiftIDs{1, 2}}, {"list Valuer, empty", argShiftIDs{}}, {"text list Valuer", argShiftTexts{"1", "2"}},
		{"list Valuer failing", argBadIDs{1}}, {"nil *list Valuer", (*argShiftIDs)(nil)},
		{"[]*T, Value on the pointer", []*argPtrKey{&p3, &p4}}, {"[]*T with nil, Value on the pointer", []*argPtrKey{&p3, nil}},
		{"[]T, Value on the value", []argValuer{{3}, {4}}}, {"[]any of Valuers", []any{&p3, argValuer{4}}},
	}
	run := func(d *sql.DB, q string, arg any) (out string) {
		defer noPanic(&out)
		rows, err := d.QueryContext(ctx, q, arg)
		if err != nil {
			if strings.HasPrefix(err.Error(), "failed to encode args[0]") {
				// pgx words this one after what the connection encoded
				// before (its plan cache): two pgx connections differ.
				return "error: failed to encode args[0]"
			}
			return "error: " + err.Error()
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var id string
			var v int64
			if err := rows.Scan(&id, &v); err != nil {
				return "scan: " + err.Error()
			}
			got = append(got, fmt.Sprintf("(%s %d)", id, v))
		}
		if err := rows.Err(); err != nil {
			return "error: " + err.Error()
		}
		sort.Strings(got) // no ORDER BY: SQL promises no order
		return strings.Join(got, "")
	}
	for name, typ := range types {
		for _, cast := range []string{"", "::" + typ + "[]", "::int8[]", "::text[]"} {
			q := "SELECT id, v FROM wt_arr_" + name + " WHERE id = ANY($1" + cast + ")"
			for _, a := range args {
				for round := 0; round < 2; round++ {
					if got, want := run(db, q, a.v), run(plain, q, a.v); got != want {
						t.Fatalf("%s, %s, round %d: wtcache %q, pgx %q", q, a.name, round, got, want)
					}
					c.settle()
				}
			}
		}
		// A write by each key list through wtcache, then every row read
		// back through wtcache (hits where cached) and pgx: the rows the
		// write changed must be the ones it invalidated or mirrored.
		upd := "UPDATE wt_arr_" + name + " SET v = v + 1 WHERE id = ANY($1)"
		all := "SELECT id, v FROM wt_arr_" + name + " WHERE id = $1"
		for _, a := range args {
			_, werr := db.ExecContext(ctx, upd, a.v)
			c.settle()
			for id := 1; id <= 20; id++ {
				key := any(int64(id))
				if name == "tx" {
					key = strconv.Itoa(id)
				}
				if got, want := run(db, all, key), run(plain, all, key); got != want {
					t.Fatalf("%s with %s (error %v), then row %d: wtcache %q, pgx %q", upd, a.name, werr, id, got, want)
				}
			}
		}
	}
}

// TestWriteByValuerListAsPgx: a write whose key list is a Valuer of the
// application's own type changes the rows of its Value; those rows, cached
// before, are read back as pgx reads them (the intents must be placed on
// the keys PostgreSQL writes, not on the list's raw elements).
func TestWriteByValuerListAsPgx(t *testing.T) {
	e := needServices(t)
	db, c := e.open(t, rpPrefix("valuerwrite"))
	plain := rpSetup(t, e, "CREATE TABLE wt_vwrite (id bigint PRIMARY KEY, v int); INSERT INTO wt_vwrite SELECT g, g FROM generate_series(1, 20) g",
		"DROP TABLE IF EXISTS wt_vwrite")
	ctx := context.Background()
	read := func(d *sql.DB, id int) (v int) {
		if err := d.QueryRowContext(ctx, "SELECT v FROM wt_vwrite WHERE id = $1", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	p3 := argPtrKey(3)
	for _, list := range []any{argShiftIDs{1, 2}, []*argPtrKey{&p3}} {
		for id := 1; id <= 20; id++ {
			read(db, id) // cached
		}
		c.settle()
		if _, err := db.ExecContext(ctx, "UPDATE wt_vwrite SET v = v + 100 WHERE id = ANY($1)", list); err != nil {
			t.Fatal(err)
		}
		for id := 1; id <= 20; id++ {
			if got, want := read(db, id), read(plain, id); got != want {
				t.Fatalf("after the write by %T, row %d: wtcache %d, pgx %d", list, id, got, want)
			}
		}
	}
}
