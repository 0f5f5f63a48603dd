package rowcodec

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

func sampleColumns() []Column {
	return []Column{
		{Name: "id", TypeOID: 20, DatabaseType: "INT8", ScanType: reflect.TypeFor[int64]()},
		{Name: "price", TypeOID: 1700, DatabaseType: "NUMERIC", ScanType: reflect.TypeFor[float64](), Precision: 30, Scale: 10, HasDecimal: true},
		{Name: "name", TypeOID: 1043, DatabaseType: "VARCHAR", ScanType: reflect.TypeFor[string](), Length: 20, HasLength: true},
		{Name: "blob", TypeOID: 17, DatabaseType: "BYTEA", ScanType: reflect.TypeFor[[]byte](), Length: math.MaxInt64, HasLength: true},
		{Name: "ok", TypeOID: 16, DatabaseType: "BOOL", ScanType: reflect.TypeFor[bool](), Nullable: true, HasNullable: true},
		{Name: "f", TypeOID: 701, DatabaseType: "FLOAT8", ScanType: reflect.TypeFor[float64]()},
		{Name: "ts", TypeOID: 1114, DatabaseType: "TIMESTAMP", ScanType: reflect.TypeFor[time.Time]()},
		{Name: "tstz", TypeOID: 1184, DatabaseType: "TIMESTAMPTZ", ScanType: reflect.TypeFor[time.Time]()},
		{Name: "fixed", TypeOID: 1184, DatabaseType: "TIMESTAMPTZ", ScanType: reflect.TypeFor[time.Time]()},
		{Name: "nothing", TypeOID: 25, DatabaseType: "TEXT", ScanType: reflect.TypeFor[string]()},
		{Name: "enum", TypeOID: 99999, DatabaseType: "99999", ScanType: reflect.TypeFor[any]()},
	}
}

func TestRoundTrip(t *testing.T) {
	vals := []any{
		int64(-42), "12345678901234567890.0123456789", "naïve \x00 text", []byte{0, 1, 255},
		true, math.Inf(-1),
		time.Date(2024, 2, 29, 13, 14, 15, 500, time.UTC),
		time.Unix(1700000000, 123456789).In(time.Local),
		time.Unix(1700000000, 0).In(time.FixedZone("X", 3600)),
		nil, "happy",
	}
	img, err := Encode(nil, sampleColumns(), vals)
	if err != nil {
		t.Fatal(err)
	}
	row, err := Decode(img)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(row.Columns, sampleColumns()) {
		t.Errorf("columns differ:\n got %+v\nwant %+v", row.Columns, sampleColumns())
	}
	for i, v := range vals {
		got := row.Values[i]
		if tv, ok := v.(time.Time); ok {
			gt := got.(time.Time)
			if !gt.Equal(tv) || gt.Location().String() != tv.Location().String() {
				t.Errorf("value %d: %v (%s), want %v (%s)", i, gt, gt.Location(), tv, tv.Location())
			}
			continue
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("value %d: %#v, want %#v", i, got, v)
		}
	}
	// NaN does not compare equal; check it separately.
	img2, _ := Encode(nil, sampleColumns()[5:6], []any{math.NaN()})
	r2, _ := Decode(img2)
	if f := r2.Values[0].(float64); !math.IsNaN(f) {
		t.Errorf("NaN came back as %v", f)
	}
}

func TestUnsupportedValues(t *testing.T) {
	col := sampleColumns()[:1]
	for _, v := range []any{int32(1), []int{1}, struct{}{}, []byte(nil),
		time.Now().In(time.FixedZone("", 0)).In(mustLoad(t, "America/Sao_Paulo"))} {
		if _, err := Encode(nil, col, []any{v}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Encode(%T) = %v, want ErrUnsupported", v, err)
		}
	}
	bad := []Column{{Name: "x", ScanType: reflect.TypeFor[uint8]()}}
	if _, err := Encode(nil, bad, []any{nil}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown scan type: %v", err)
	}
}

func mustLoad(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	return loc
}

func TestCorruptImages(t *testing.T) {
	img, _ := Encode(nil, sampleColumns()[:3], []any{int64(1), "2", "three"})
	cases := map[string][]byte{
		"empty":          {},
		"wrong magic":    append([]byte{'X'}, img[1:]...),
		"older version":  append([]byte{magic, 0}, img[2:]...),
		"truncated":      img[:len(img)-2],
		"trailing bytes": append(bytes.Clone(img), 0),
		"huge count":     {magic, Version, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode = %v, want ErrCorrupt", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	img, _ := Encode(nil, sampleColumns()[:3], []any{int64(1), "2", "three"})
	f.Add(img)
	f.Add([]byte{magic, Version, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		row, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode, and that encoding must be a fixed
		// point: decoding it and encoding again gives the same bytes.
		again, err := Encode(nil, row.Columns, row.Values)
		if err != nil {
			t.Fatalf("decoded image does not encode: %v", err)
		}
		row2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded image does not decode: %v", err)
		}
		third, _ := Encode(nil, row2.Columns, row2.Values)
		if !bytes.Equal(again, third) {
			t.Fatalf("encoding is not stable")
		}
	})
}
