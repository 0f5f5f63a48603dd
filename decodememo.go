package wtcache

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/wtcache/wtcache/internal/rowcodec"
)

// decodeMemo remembers the last decoded image per row key, so that a hit
// on an image already decoded costs a comparison instead of a decode and
// its allocations. Whether an image is a valid hit is decided by Redis on
// every read, as always: the memo is keyed by the exact image bytes, so it
// only ever returns what decoding those bytes would. It is direct-mapped
// and bounded (a slot holds one key; a new key replaces it).
type decodeMemo struct {
	seed  maphash.Seed
	slots [decodeMemoSlots]atomic.Pointer[memoEntry]
}

const (
	decodeMemoSlots    = 4096
	decodeMemoMaxImage = 4 << 10 // larger images are decoded every time: the memo stays under 16 MiB
)

type memoEntry struct {
	h          uint64 // the key's hash: keys share a long prefix, so a different key is told apart by it first
	key, image string
	row        rowcodec.Row // shared by every hit: never modified
	// The values of a row of up to len(vals) columns, so that the entry,
	// the row and its values are one allocation.
	vals [8]any
}

func newDecodeMemo() *decodeMemo { return &decodeMemo{seed: maphash.MakeSeed()} }

func (m *decodeMemo) slot(key string) (*atomic.Pointer[memoEntry], uint64) {
	h := maphash.String(m.seed, key)
	return &m.slots[h%decodeMemoSlots], h
}

// decode returns the row of image, decoding it only if this key's slot
// does not hold exactly this image. A freshly decoded row must pass check
// (that it holds the key asked for), which a remembered one passed.
//
// With entry keys (seal not nil) the image is opened first: one that does
// not authenticate for key is errUnauthentic. The memo holds sealed images,
// so a remembered one was opened before.
func (m *decodeMemo) decode(key, image string, seal *sealer, check func(*rowcodec.Row) bool) (*rowcodec.Row, error) {
	s, h := m.slot(key)
	if e := s.Load(); e != nil && e.h == h && e.key == key && e.image == image {
		return &e.row, nil
	}
	plain, err := seal.open(key, image)
	if err != nil {
		return nil, err
	}
	// The entry holds the row and its values: one allocation for all.
	e := &memoEntry{h: h, key: key, image: image}
	if e.row, err = rowcodec.DecodeStringTo(plain, e.vals[:0]); err != nil {
		return nil, err
	}
	if check != nil && !check(&e.row) {
		return nil, errWrongKey
	}
	if len(image) <= decodeMemoMaxImage {
		s.Store(e)
	}
	return &e.row, nil
}
