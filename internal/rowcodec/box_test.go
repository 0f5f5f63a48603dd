package rowcodec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// randomRow is a row of n columns of random kinds and values, the edges of
// each kind included.
func randomRow(rng *rand.Rand, n int) ([]Column, []any) {
	cols := make([]Column, n)
	vals := make([]any, n)
	locs := []*time.Location{time.UTC, time.Local, time.FixedZone("X", 3600), time.FixedZone("", -12600)}
	for i := range cols {
		c := Column{Name: fmt.Sprintf("c%d", i), TypeOID: 25, DatabaseType: "TEXT", ScanType: reflect.TypeFor[any]()}
		switch rng.IntN(8) {
		case 0:
			vals[i] = []int64{0, 1, 255, 256, -1, math.MinInt64, math.MaxInt64, rng.Int64()}[rng.IntN(8)]
		case 1:
			vals[i] = []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), rng.Float64() * 1e300}[rng.IntN(6)]
		case 2:
			vals[i] = []string{"", "x", "naïve \x00 text", fmt.Sprint(rng.Int64())}[rng.IntN(4)]
		case 3:
			vals[i] = [][]byte{{}, {0}, {1, 2, 255}, []byte(fmt.Sprint(rng.Int64()))}[rng.IntN(4)]
		case 4:
			vals[i] = time.Unix(rng.Int64N(1<<40)-1<<39, rng.Int64N(1e9)).In(locs[rng.IntN(len(locs))])
		case 5:
			vals[i] = rng.IntN(2) == 0
		default:
			vals[i] = nil
		}
		cols[i] = c
	}
	return cols, vals
}

// same reports whether a and b are the same value of the same type, as
// the runtime's own boxing would give (NaN equal to NaN, -0 apart from 0).
func same(a, b any) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	switch x := a.(type) {
	case float64:
		return math.Float64bits(x) == math.Float64bits(b.(float64))
	case time.Time:
		y := b.(time.Time)
		return x.Equal(y) && x.Location().String() == y.Location().String() && fmt.Sprint(x) == fmt.Sprint(y)
	}
	return reflect.DeepEqual(a, b)
}

// TestSlotBoxingAsRuntime: values boxed in a row's slots (box.go) are the
// values the runtime's boxing gives, of the same types, for every kind and
// its edges; they stay so through collections once nothing but the values
// refers to the row; and no two values share memory.
func TestSlotBoxingAsRuntime(t *testing.T) {
	if !boxInSlots {
		t.Fatal("the slot layouts do not hold on this platform")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var kept [][]any
	var want [][]any
	for round := 0; round < 2000; round++ {
		cols, vals := randomRow(rng, 1+rng.IntN(12))
		img, err := Encode(nil, cols, vals)
		if err != nil {
			t.Fatal(err)
		}
		row, err := DecodeString(string(img))
		if err != nil {
			t.Fatal(err)
		}
		for i := range vals {
			if !same(row.Values[i], vals[i]) {
				t.Fatalf("round %d value %d: %#v (%T), want %#v (%T)", round, i, row.Values[i], row.Values[i], vals[i], vals[i])
			}
			if b, ok := row.Values[i].([]byte); ok && len(b) > 0 {
				b[0]++ // a []byte value is the caller's: it must not alias another value or the image
				for j := range vals {
					if j != i && !same(row.Values[j], vals[j]) {
						t.Fatalf("round %d: changing value %d changed value %d", round, i, j)
					}
				}
				b[0]--
			}
		}
		// Keep only copies of the interfaces: the slots are reachable
		// through them alone.
		kept = append(kept, append([]any(nil), row.Values...))
		want = append(want, vals)
		if round%200 == 0 {
			runtime.GC()
			_ = make([]byte, 1<<20) // reuse what was freed
		}
	}
	runtime.GC()
	runtime.GC()
	for r := range kept {
		for i := range kept[r] {
			if !same(kept[r][i], want[r][i]) {
				t.Fatalf("after collections, row %d value %d: %#v, want %#v", r, i, kept[r][i], want[r][i])
			}
		}
	}
}

// TestDecodeOneAllocation: a row decoded into values the caller provides
// costs one allocation however many of its values are boxed (strings,
// large integers, floats, times), where boxing each would cost one apiece.
func TestDecodeOneAllocation(t *testing.T) {
	cols := sampleColumns()
	vals := []any{
		int64(-42), "12345678901234567890.0123456789", "text", nil,
		true, 1.5, time.Unix(1700000000, 5).In(time.UTC), time.Unix(1700000000, 5).In(time.UTC),
		time.Unix(1700000000, 5).In(time.UTC), "x", "enum",
	}
	img, err := Encode(nil, cols, vals)
	if err != nil {
		t.Fatal(err)
	}
	s := string(img)
	dst := make([]any, len(cols))
	if _, err := DecodeStringTo(s, dst); err != nil { // the header is cached
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := DecodeStringTo(s, dst[:0]); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("%v allocations per decoded row, want 1", n)
	}
}

// TestHeadersOfManyTables: images of many column lists, decoded in an
// interleaved order (so that the last header seen and the header cache
// both answer, and fail to), give back each image's own columns and
// values, as does an image whose header is a prefix-extension of another.
func TestHeadersOfManyTables(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	type img struct {
		b    string
		cols []Column
		vals []any
	}
	var imgs []img
	for i := 0; i < 300; i++ {
		cols, vals := randomRow(rng, 1+rng.IntN(6))
		for j := range cols {
			cols[j].Name = fmt.Sprintf("t%d_c%d", rng.IntN(5), j) // some lists alike, some not
		}
		b, err := Encode(nil, cols, vals)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img{string(b), cols, vals})
	}
	for round := 0; round < 3; round++ {
		for _, k := range rng.Perm(len(imgs)) {
			m := imgs[k]
			row, err := DecodeString(m.b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(row.Columns, m.cols) {
				t.Fatalf("image %d: columns %+v, want %+v", k, row.Columns, m.cols)
			}
			for i := range m.vals {
				if !same(row.Values[i], m.vals[i]) {
					t.Fatalf("image %d value %d: %#v, want %#v", k, i, row.Values[i], m.vals[i])
				}
			}
		}
	}
}
