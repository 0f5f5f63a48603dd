package rowcodec

import (
	"time"
	"unsafe"
)

// Decoding a row boxes most of its values in interfaces (driver.Value):
// each would be an allocation of its own. Instead a row's values are
// stored in one array of slots, allocated once per row, and each interface
// points at its slot, as the runtime's own boxing points at the copy it
// allocates. The values are never modified after decoding (a decoded row
// is shared by every hit of the decode memo), as boxed values never are.

// slot holds one boxed value. Its words are typed so that the collector
// finds a pointer exactly where a value has one:
//
//	string     p0 (data), w1 (length)             boxed at &p0
//	[]byte     p0 (data), w1 (length), w2 (cap)   boxed at &p0
//	int64      w1                                 boxed at &w1
//	float64    w1 (bits)                          boxed at &w1
//	time.Time  w1 (wall), w2 (ext), p3 (location) boxed at &w1
type slot struct {
	p0     unsafe.Pointer
	w1, w2 uintptr
	p3     unsafe.Pointer
}

// The layouts above are the runtime's: checked once at start-up, so that a
// Go release that changed one fails loudly instead of boxing garbage.
func init() {
	var s slot
	if unsafe.Sizeof(uintptr(0)) != 8 ||
		unsafe.Offsetof(s.w1)-unsafe.Offsetof(s.p0) != unsafe.Sizeof(uintptr(0)) ||
		unsafe.Sizeof("") != 2*unsafe.Sizeof(uintptr(0)) ||
		unsafe.Sizeof([]byte(nil)) != 3*unsafe.Sizeof(uintptr(0)) ||
		unsafe.Sizeof(time.Time{}) != 3*unsafe.Sizeof(uintptr(0)) ||
		unsafe.Sizeof(any(nil)) != 2*unsafe.Sizeof(uintptr(0)) {
		boxInSlots = false
	}
	// time.Time's location must be its last word, the only pointer.
	t := time.Date(2000, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	w := (*[3]uintptr)(unsafe.Pointer(&t))
	if w[2] != uintptr(unsafe.Pointer(t.Location())) {
		boxInSlots = false
	}
}

// boxInSlots is false where the layouts above do not hold: every value is
// then boxed by the runtime, one allocation each.
var boxInSlots = true

// eface is an empty interface's two words: its dynamic type and a pointer
// to its value.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	stringType  = typeWord("")
	bytesType   = typeWord([]byte(nil))
	int64Type   = typeWord(int64(0))
	float64Type = typeWord(float64(0))
	timeType    = typeWord(time.Time{})
)

func boxAt(typ, data unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, data
	return v
}

func (s *slot) string(x string) any {
	if !boxInSlots {
		return x
	}
	*(*string)(unsafe.Pointer(&s.p0)) = x
	return boxAt(stringType, unsafe.Pointer(&s.p0))
}

func (s *slot) bytes(x []byte) any {
	if !boxInSlots {
		return x
	}
	*(*[]byte)(unsafe.Pointer(&s.p0)) = x
	return boxAt(bytesType, unsafe.Pointer(&s.p0))
}

func (s *slot) int64(x int64) any {
	if !boxInSlots || x >= 0 && x < 256 {
		return x // the runtime boxes small integers without allocating
	}
	*(*int64)(unsafe.Pointer(&s.w1)) = x
	return boxAt(int64Type, unsafe.Pointer(&s.w1))
}

func (s *slot) float64(x float64) any {
	if !boxInSlots {
		return x
	}
	*(*float64)(unsafe.Pointer(&s.w1)) = x
	return boxAt(float64Type, unsafe.Pointer(&s.w1))
}

func (s *slot) time(x time.Time) any {
	if !boxInSlots {
		return x
	}
	*(*time.Time)(unsafe.Pointer(&s.w1)) = x
	return boxAt(timeType, unsafe.Pointer(&s.w1))
}
