// Package rowcodec encodes one table row, as the inner driver returned it,
// together with the column metadata that database/sql exposes, so that a
// cache hit can answer exactly as the driver would have: the same Columns,
// ColumnTypes and driver.Values.
//
// The encoding is versioned; an image from another version, or one that
// does not decode, is reported as ErrCorrupt and treated as a miss.
package rowcodec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Version is the current encoding version, the image's first two bytes.
const (
	magic   = 'W'
	Version = 2 // 2: the header ends with the table's shape (Row.Shape)
)

// ErrCorrupt reports an image that cannot be decoded.
var ErrCorrupt = errors.New("rowcodec: corrupt or foreign image")

// ErrUnsupported reports a value or column type that the codec cannot
// reproduce exactly; such a row is not cached.
var ErrUnsupported = errors.New("rowcodec: unsupported value")

// Column is what database/sql can learn about one result column.
type Column struct {
	Name         string
	TypeOID      uint32 // the column's type, to detect schema changes
	DatabaseType string
	ScanType     reflect.Type // one of the types in scanTypes
	Length       int64
	HasLength    bool
	Precision    int64
	Scale        int64
	HasDecimal   bool
	Nullable     bool
	HasNullable  bool
}

var scanTypes = []reflect.Type{
	reflect.TypeFor[any](),
	reflect.TypeFor[string](),
	reflect.TypeFor[[]byte](),
	reflect.TypeFor[int64](),
	reflect.TypeFor[int32](),
	reflect.TypeFor[int16](),
	reflect.TypeFor[float64](),
	reflect.TypeFor[float32](),
	reflect.TypeFor[bool](),
	reflect.TypeFor[time.Time](),
}

func scanTypeCode(t reflect.Type) (byte, bool) {
	for i, st := range scanTypes {
		if st == t {
			return byte(i), true
		}
	}
	return 0, false
}

// value tags
const (
	tagNil byte = iota
	tagInt64
	tagFloat64
	tagFalse
	tagTrue
	tagBytes
	tagString
	tagTimeUTC
	tagTimeLocal
	tagTimeZone
)

// Encode appends the image of one row to dst.
func Encode(dst []byte, cols []Column, vals []any) ([]byte, error) {
	return EncodeShaped(dst, 0, cols, vals)
}

// EncodeShaped is Encode recording shape in the image (Row.Shape).
func EncodeShaped(dst []byte, shape uint64, cols []Column, vals []any) ([]byte, error) {
	if len(cols) != len(vals) {
		return nil, fmt.Errorf("rowcodec: %d columns, %d values", len(cols), len(vals))
	}
	dst = append(dst, magic, Version)
	dst = binary.AppendUvarint(dst, uint64(len(cols)))
	for _, c := range cols {
		code, ok := scanTypeCode(c.ScanType)
		if !ok {
			return nil, fmt.Errorf("%w: scan type %v", ErrUnsupported, c.ScanType)
		}
		dst = appendString(dst, c.Name)
		dst = binary.BigEndian.AppendUint32(dst, c.TypeOID)
		dst = appendString(dst, c.DatabaseType)
		dst = append(dst, code, flags(c))
		if c.HasLength {
			dst = binary.AppendVarint(dst, c.Length)
		}
		if c.HasDecimal {
			dst = binary.AppendVarint(dst, c.Precision)
			dst = binary.AppendVarint(dst, c.Scale)
		}
	}
	dst = binary.AppendUvarint(dst, shape)
	for _, v := range vals {
		var err error
		if dst, err = appendValue(dst, v); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func flags(c Column) byte {
	var f byte
	if c.HasLength {
		f |= 1
	}
	if c.HasDecimal {
		f |= 2
	}
	if c.HasNullable {
		f |= 4
	}
	if c.Nullable {
		f |= 8
	}
	return f
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, tagNil), nil
	case int64:
		return binary.AppendVarint(append(dst, tagInt64), x), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(dst, tagFloat64), math.Float64bits(x)), nil
	case bool:
		if x {
			return append(dst, tagTrue), nil
		}
		return append(dst, tagFalse), nil
	case []byte:
		if x == nil {
			// database/sql treats a nil []byte as NULL-like in places;
			// keep the distinction exactly by not caching it.
			return nil, fmt.Errorf("%w: nil []byte", ErrUnsupported)
		}
		return appendString(append(dst, tagBytes), string(x)), nil
	case string:
		return appendString(append(dst, tagString), x), nil
	case time.Time:
		sec, nsec := x.Unix(), int64(x.Nanosecond())
		switch x.Location() {
		case time.UTC:
			dst = append(dst, tagTimeUTC)
		case time.Local:
			dst = append(dst, tagTimeLocal)
		default:
			name, off := x.Zone()
			if x.Location().String() != name {
				// A named zone with rules (America/...) cannot be
				// rebuilt from one offset.
				return nil, fmt.Errorf("%w: time in location %s", ErrUnsupported, x.Location())
			}
			dst = appendString(append(dst, tagTimeZone), name)
			dst = binary.AppendVarint(dst, int64(off))
		}
		dst = binary.AppendVarint(dst, sec)
		return binary.AppendVarint(dst, nsec), nil
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnsupported, v)
	}
}

// Row is a decoded image.
type Row struct {
	Columns []Column
	Values  []any
	// Shape is what the writer of the image knew of the table's catalog
	// beyond the columns' names and types (a hash of the type modifiers
	// and the storage's identity, say): a reader that knows another
	// shape takes the image as one from before a schema change.
	Shape uint64
}

// reader reads an image held in a string: the strings it returns share
// the image's memory (strings are immutable), so decoding a text value
// costs no copy.
type reader struct {
	b   string
	err bool
}

func (r *reader) uvarint() uint64 {
	var v uint64
	for i := 0; i < len(r.b) && i < binary.MaxVarintLen64; i++ {
		c := r.b[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflow
			}
			r.b = r.b[i+1:]
			return v | uint64(c)<<(7*i)
		}
		v |= uint64(c&0x7f) << (7 * i)
	}
	r.err = true
	return 0
}

func (r *reader) varint() int64 {
	ux := r.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (r *reader) bytes(n int) string {
	if n < 0 || n > len(r.b) {
		r.err = true
		return ""
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte1() byte {
	if len(r.b) == 0 {
		r.err = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// be decodes a big-endian unsigned integer of len(b) bytes.
func be(b string) uint64 {
	var v uint64
	for i := 0; i < len(b); i++ {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = true
		return ""
	}
	return r.bytes(int(n))
}

// headers caches decoded column lists by their encoded bytes: every row of
// a table carries the same header, so a hit decodes only its values. The
// cached slices are shared and must not be modified.
var headers struct {
	sync.RWMutex
	m map[string]*seenHeader
}

const maxHeaders = 4096

// Decode decodes an image. Every value is a fresh copy: the caller may keep
// or modify it. The Columns slice may be shared with other rows: read it,
// never modify it.
func Decode(img []byte) (Row, error) {
	return DecodeString(string(img))
}

// DecodeString is Decode of an image held in a string. Text values share
// the string's memory.
func DecodeString(img string) (Row, error) {
	return DecodeStringTo(img, nil)
}

// DecodeStringTo is DecodeString with the row's values stored in vals
// when it has room for them (a new slice otherwise), so that a caller can
// allocate them with the row's other memory.
func DecodeStringTo(img string, vals []any) (Row, error) {
	if len(img) < 2 || img[0] != magic || img[1] != Version {
		return Row{}, ErrCorrupt
	}
	r := &reader{b: img[2:]}
	h, err := decodeHeader(r)
	if err != nil {
		return Row{}, err
	}
	row, err := decodeValues(r, h.cols, vals)
	row.Shape = h.shape
	return row, err
}

func decodeHeader(r *reader) (*seenHeader, error) {
	// The header of the last image decoded: the rows of one lookup, and
	// of one table's hits, share it, so most decodes end here, without
	// parsing the header or the map's lock and hash. A header delimits
	// itself, so an image that starts with one has that header, whatever
	// follows.
	if l := lastHeader.Load(); l != nil && strings.HasPrefix(r.b, l.hdr) {
		r.b = r.b[len(l.hdr):]
		return l, nil
	}
	start := r.b
	// The header's length is not stored: skip over it (without
	// allocating) to find its end, then look its bytes up.
	if !skipHeader(r) {
		return nil, ErrCorrupt
	}
	hdr := start[:len(start)-len(r.b)]
	headers.RLock()
	cached, ok := headers.m[hdr]
	headers.RUnlock()
	if ok {
		lastHeader.Store(cached)
		return cached, nil
	}
	cols, shape, err := parseHeader(&reader{b: hdr})
	if err != nil {
		return nil, err
	}
	seen := &seenHeader{hdr: strings.Clone(hdr), cols: cols, shape: shape}
	headers.Lock()
	if headers.m == nil || len(headers.m) >= maxHeaders {
		headers.m = make(map[string]*seenHeader)
	}
	headers.m[seen.hdr] = seen
	headers.Unlock()
	lastHeader.Store(seen)
	return seen, nil
}

// seenHeader is a header's bytes and its columns.
type seenHeader struct {
	hdr   string
	cols  []Column
	shape uint64
}

var lastHeader atomic.Pointer[seenHeader]

func skipHeader(r *reader) bool {
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		return false
	}
	for i := uint64(0); i < n && !r.err; i++ {
		r.bytes(int(min(r.uvarint(), uint64(len(r.b)+1)))) // name
		r.bytes(4)                                         // type OID
		r.bytes(int(min(r.uvarint(), uint64(len(r.b)+1)))) // database type
		r.byte1()                                          // scan type
		f := r.byte1()
		if f&1 != 0 {
			r.varint()
		}
		if f&2 != 0 {
			r.varint()
			r.varint()
		}
	}
	r.uvarint() // the shape
	return !r.err
}

func parseHeader(r *reader) ([]Column, uint64, error) {
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		return nil, 0, ErrCorrupt
	}
	cols := make([]Column, n)
	for i := range cols {
		c := &cols[i]
		// Headers are cached: they must not keep the image alive.
		c.Name = strings.Clone(r.str())
		if oid := r.bytes(4); !r.err {
			c.TypeOID = uint32(be(oid))
		}
		c.DatabaseType = strings.Clone(r.str())
		code := r.byte1()
		if int(code) >= len(scanTypes) {
			return nil, 0, ErrCorrupt
		}
		c.ScanType = scanTypes[code]
		f := r.byte1()
		c.HasLength, c.HasDecimal, c.HasNullable, c.Nullable = f&1 != 0, f&2 != 0, f&4 != 0, f&8 != 0
		if c.HasLength {
			c.Length = r.varint()
		}
		if c.HasDecimal {
			c.Precision = r.varint()
			c.Scale = r.varint()
		}
		if r.err {
			return nil, 0, ErrCorrupt
		}
	}
	shape := r.uvarint()
	if r.err || len(r.b) != 0 {
		return nil, 0, ErrCorrupt
	}
	return cols, shape, nil
}

func decodeValues(r *reader, cols []Column, vals []any) (Row, error) {
	if cap(vals) >= len(cols) {
		vals = vals[:len(cols)]
		clear(vals)
	} else {
		vals = make([]any, len(cols))
	}
	// One allocation boxes every value of the row (box.go).
	slots := make([]slot, len(cols))
	for i := range vals {
		s := &slots[i]
		switch tag := r.byte1(); tag {
		case tagNil:
		case tagInt64:
			vals[i] = s.int64(r.varint())
		case tagFloat64:
			if b := r.bytes(8); !r.err {
				vals[i] = s.float64(math.Float64frombits(be(b)))
			}
		case tagFalse:
			vals[i] = false
		case tagTrue:
			vals[i] = true
		case tagBytes:
			vals[i] = s.bytes([]byte(r.str()))
		case tagString:
			vals[i] = s.string(r.str())
		case tagTimeUTC, tagTimeLocal, tagTimeZone:
			var loc *time.Location
			switch tag {
			case tagTimeUTC:
				loc = time.UTC
			case tagTimeLocal:
				loc = time.Local
			default:
				name := r.str()
				off := r.varint()
				loc = time.FixedZone(name, int(off))
			}
			sec, nsec := r.varint(), r.varint()
			vals[i] = s.time(time.Unix(sec, nsec).In(loc))
		default:
			return Row{}, ErrCorrupt
		}
		if r.err {
			return Row{}, ErrCorrupt
		}
	}
	if len(r.b) != 0 {
		return Row{}, ErrCorrupt
	}
	return Row{Columns: cols, Values: vals}, nil
}
