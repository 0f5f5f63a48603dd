package wtcache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"sync"
)

// Entries Redis cannot forge (cache_key). Anyone who can write to Redis can
// put bytes under a row's key. Every hit already checks that the image holds
// the key asked for; with an entry key, every image is also sealed with a
// secret the application holds and Redis never sees:
//
//   - EntryAuthenticate (cache_key_mode=authenticate, the default): the image
//     is followed by HMAC-SHA256 of the row's Redis key and the image. An
//     edited entry, one made up, or one copied from another key (even of
//     the same table) fails the check.
//   - EntryEncrypt (cache_key_mode=encrypt): the image is encrypted and
//     authenticated with AES-256-GCM, the row's Redis key as additional
//     data, under a random nonce. Redis holds no column value in clear (the
//     key names, which hold the primary key, stay readable).
//
// An entry that does not open under the current or the previous key is a
// miss counted as unauthenticated_entry (and in Stats.Corrupt); the fill
// overwrites it with a sealed image. Rotation: give the new secret as
// cache_key and the old one as cache_key_old; entries sealed with either
// open, new ones are sealed with the new one; drop cache_key_old after a
// cache_ttl. Every process sharing the Redis prefix must use the same keys,
// or each takes the others' entries for forgeries (correct, but no hits).

// EntryMode says how entries are sealed when an entry key is given.
type EntryMode int

const (
	// EntryAuthenticate appends an HMAC-SHA256 tag bound to the row's key.
	EntryAuthenticate EntryMode = iota
	// EntryEncrypt encrypts and authenticates with AES-256-GCM.
	EntryEncrypt
)

func (m EntryMode) String() string {
	if m == EntryEncrypt {
		return "encrypt"
	}
	return "authenticate"
}

// EntryKeys is the configuration WithEntryKeys takes: the secret that seals
// new entries and opens them (Current, at least 16 bytes), an optional
// previous one that only opens them (Old), and the mode.
type EntryKeys struct {
	Mode    EntryMode
	Current []byte
	Old     []byte
}

// WithEntryKeys seals every entry wtcache stores with a secret of the
// application's (see EntryKeys); cache_key, cache_key_old, cache_key_file
// and cache_key_mode in the DSN override it.
func WithEntryKeys(k EntryKeys) Option {
	return func(c *config) {
		c.entryMode = k.Mode
		c.entryKey = string(k.Current)
		c.entryKeyOld = string(k.Old)
	}
}

// minEntryKey is the shortest secret accepted, in bytes.
const minEntryKey = 16

const (
	sealAuth    = 0xa7 // first byte of an authenticated image
	sealEncrypt = 0xe7 // first byte of an encrypted image
	sealIDLen   = 4    // the key's fingerprint: which secret sealed it
	sealTagLen  = sha256.Size
)

// sealKey is one secret's derived keys.
type sealKey struct {
	id   [sealIDLen]byte
	mac  []byte
	macs *sync.Pool // of keyed HMAC states
	aead cipher.AEAD
}

// sealer seals and opens images; nil means entries are stored as is.
type sealer struct {
	mode EntryMode
	keys []sealKey // keys[0] seals; every one opens
}

// derive gives a key for one use from the application's secret.
func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("wtcache entry key v1\x00" + label))
	return m.Sum(nil)
}

func newSealer(mode EntryMode, secrets ...[]byte) (*sealer, error) {
	s := &sealer{mode: mode}
	for _, sec := range secrets {
		if len(sec) == 0 {
			continue
		}
		if len(sec) < minEntryKey {
			return nil, fmt.Errorf("%w: cache_key: a secret of %d bytes; give at least %d (random)", ErrInvalidParameter, len(sec), minEntryKey)
		}
		k := sealKey{mac: derive(sec, "hmac"), macs: &sync.Pool{}}
		copy(k.id[:], derive(sec, "id"))
		block, err := aes.NewCipher(derive(sec, "aes-256-gcm"))
		if err != nil {
			return nil, err
		}
		if k.aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
		s.keys = append(s.keys, k)
	}
	if len(s.keys) == 0 {
		return nil, nil
	}
	return s, nil
}

// seal returns img sealed for the Redis key key.
func (s *sealer) seal(key string, img []byte) []byte {
	if s == nil || img == nil {
		return img
	}
	k := &s.keys[0]
	if s.mode == EntryEncrypt {
		ns := k.aead.NonceSize()
		out := make([]byte, 1+sealIDLen+ns, 1+sealIDLen+ns+len(img)+k.aead.Overhead())
		out[0] = sealEncrypt
		copy(out[1:], k.id[:])
		if _, err := rand.Read(out[1+sealIDLen:]); err != nil {
			return nil // no entry rather than one under a repeated nonce
		}
		return k.aead.Seal(out, out[1+sealIDLen:], img, []byte(key))
	}
	out := make([]byte, 0, 1+sealIDLen+len(img)+sealTagLen)
	out = append(out, sealAuth)
	out = append(out, k.id[:]...)
	out = append(out, img...)
	return append(out, k.tag(key, string(out))...) // sealing is off the hit path
}

func (k *sealKey) tag(key, sealed string) []byte {
	m, _ := k.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, k.mac)
	} else {
		m.Reset() // back to the keyed state, without redoing the key
	}
	var n [8]byte
	for i, l := 0, uint64(len(key)); i < 8; i++ {
		n[i] = byte(l >> (8 * i))
	}
	m.Write(n[:])
	_, _ = io.WriteString(m, key)
	_, _ = io.WriteString(m, sealed)
	sum := m.Sum(nil)
	k.macs.Put(m)
	return sum
}

var errUnauthentic = errors.New("wtcache: the entry does not authenticate under the entry keys")

// open returns the image sealed in entry for the Redis key key, or
// errUnauthentic when it was not sealed by one of the keys for that key.
func (s *sealer) open(key, entry string) (string, error) {
	if s == nil {
		return entry, nil
	}
	if len(entry) < 1+sealIDLen {
		return "", errUnauthentic
	}
	want := byte(sealAuth)
	if s.mode == EntryEncrypt {
		want = sealEncrypt
	}
	if entry[0] != want {
		return "", errUnauthentic
	}
	for i := range s.keys {
		k := &s.keys[i]
		if entry[1:1+sealIDLen] != string(k.id[:]) {
			continue
		}
		body := entry[1+sealIDLen:]
		if s.mode == EntryEncrypt {
			ns := k.aead.NonceSize()
			if len(body) < ns+k.aead.Overhead() {
				return "", errUnauthentic
			}
			img, err := k.aead.Open(nil, []byte(body[:ns]), []byte(body[ns:]), []byte(key))
			if err != nil {
				return "", errUnauthentic
			}
			return string(img), nil
		}
		if len(body) < sealTagLen {
			return "", errUnauthentic
		}
		n := len(entry) - sealTagLen
		var got [sealTagLen]byte
		copy(got[:], entry[n:])
		if subtle.ConstantTimeCompare(k.tag(key, entry[:n]), got[:]) != 1 {
			return "", errUnauthentic
		}
		return entry[1+sealIDLen : n], nil
	}
	return "", errUnauthentic
}

// buildSealer sets c.seal from the entry-key configuration, reading
// cache_key_file. Errors name the file, never what it holds.
func (c *config) buildSealer() (err error) {
	c.seal, err = c.entrySealer()
	return err
}

func (c *config) entrySealer() (*sealer, error) {
	cur, old := c.entryKey, c.entryKeyOld
	if c.entryKeyFile != "" {
		if c.entryKeySet {
			return nil, fmt.Errorf("%w: cache_key_file and cache_key or cache_key_old: give the secrets one way", ErrInvalidParameter)
		}
		b, err := os.ReadFile(c.entryKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: cache_key_file: cannot read %q: %v", ErrInvalidParameter, c.entryKeyFile, errors.Unwrap(err))
		}
		lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
		if len(lines) > 2 {
			return nil, fmt.Errorf("%w: cache_key_file %q: one line (the secret) or two (the secret, then the previous one)", ErrInvalidParameter, c.entryKeyFile)
		}
		cur = strings.TrimRight(lines[0], "\r")
		old = ""
		if len(lines) == 2 {
			old = strings.TrimRight(lines[1], "\r")
		}
		if cur == "" {
			return nil, fmt.Errorf("%w: cache_key_file %q: the first line is empty", ErrInvalidParameter, c.entryKeyFile)
		}
	}
	if cur == "" && old != "" {
		return nil, fmt.Errorf("%w: cache_key_old without cache_key", ErrInvalidParameter)
	}
	if cur == "" && c.entryModeSet {
		return nil, fmt.Errorf("%w: cache_key_mode without cache_key", ErrInvalidParameter)
	}
	return newSealer(c.entryMode, []byte(cur), []byte(old))
}

func init() {
	params["cache_key"] = func(c *config, v string) error {
		if v == "" {
			return errors.New("empty")
		}
		c.entryKey, c.entryKeySet = v, true
		return nil
	}
	params["cache_key_old"] = func(c *config, v string) error {
		if v == "" {
			return errors.New("empty")
		}
		c.entryKeyOld, c.entryKeySet = v, true
		return nil
	}
	params["cache_key_file"] = func(c *config, v string) error {
		if v == "" {
			return errors.New("empty")
		}
		c.entryKeyFile = v
		return nil
	}
	params["cache_key_mode"] = func(c *config, v string) error {
		switch strings.ToLower(v) {
		case "authenticate", "hmac":
			c.entryMode = EntryAuthenticate
		case "encrypt", "aead":
			c.entryMode = EntryEncrypt
		default:
			return fmt.Errorf("%q is neither authenticate nor encrypt", v)
		}
		c.entryModeSet = true
		return nil
	}
}
