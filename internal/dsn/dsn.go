// Package dsn splits a PostgreSQL connection string into wtcache's own
// parameters (every key prefixed "cache_") and the rest, which is handed to
// the inner driver byte for byte as the user wrote it.
//
// Both forms that libpq and pgx accept are understood: the URL form
// (postgres://user:pw@host/db?k=v&...) and the keyword/value form
// (host=... user=... k='quoted value').
package dsn

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Prefix marks a wtcache parameter.
const Prefix = "cache_"

// Param is one wtcache parameter found in a DSN.
type Param struct {
	Key   string
	Value string
}

// Split returns the DSN without its cache_ parameters and those parameters
// in the order they appear. A parameter that appears twice is an error: the
// user cannot have meant both.
func Split(s string) (inner string, params []Param, err error) {
	if isURL(s) {
		return splitURL(s)
	}
	return splitKV(s)
}

// QueryStart returns the index of the '?' that starts a URL DSN's query,
// or -1, reading the URL as libpq and pgx do: the user information ends at
// the first '@' if one comes before any '/', so a '?' in a password (or a
// '/', '#', '&') does not start the query.
func QueryStart(s string) int {
	i := strings.Index(s, "://")
	if i < 0 {
		return strings.IndexByte(s, '?')
	}
	off := i + 3
	if j := strings.IndexAny(s[off:], "@/"); j >= 0 && s[off+j] == '@' {
		off += j + 1
	}
	j := strings.IndexByte(s[off:], '?')
	if j < 0 {
		return -1
	}
	return off + j
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// splitURL works on the raw query text so that the rest of the URL (user
// info, hosts, path, fragment) reaches the inner driver unchanged.
func splitURL(s string) (string, []Param, error) {
	q := QueryStart(s)
	if q < 0 {
		return s, nil, nil
	}
	// libpq and pgx have no fragment: a '#' is part of the value it is in.
	base, query := s[:q], s[q+1:]
	var keep []string
	var params []Param
	for _, part := range strings.Split(query, "&") {
		if part == "" {
			keep = append(keep, part) // the inner driver judges it
			continue
		}
		rawKey, rawVal, hasEq := strings.Cut(part, "=")
		if !hasEq {
			// libpq and pgx refuse it too; their message would quote it,
			// and it is often the tail of a value cut at an '&'.
			return "", nil, errors.New("the URL query has a part without '=': an '&' inside a value is written %26 (the part is not shown: it may be a secret)")
		}
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			// Not ours to judge unless it is ours: the inner driver reports it.
			if ours(rawKey) {
				return "", nil, fmt.Errorf("malformed parameter %q in the URL query", rawKey)
			}
			keep = append(keep, part)
			continue
		}
		if !ours(key) {
			keep = append(keep, part)
			continue
		}
		// PathUnescape, as libpq: a '+' stays a '+' (redis+cluster://,
		// passwords); a space is written %20.
		val, err := url.PathUnescape(rawVal)
		if err != nil {
			// The value may be a secret (cache_redis): do not quote it.
			return "", nil, fmt.Errorf("%s: malformed percent-encoding in the value", key)
		}
		params = append(params, Param{Key: key, Value: val})
	}
	if err := checkDuplicates(params); err != nil {
		return "", nil, err
	}
	out := base
	if len(keep) > 0 {
		out += "?" + strings.Join(keep, "&")
	}
	return out, params, nil
}

// splitKV tokenises the keyword/value form as libpq does: key = value pairs
// separated by white space, values optionally in single quotes with
// backslash escapes. Pairs that are not ours are copied as written.
func splitKV(s string) (string, []Param, error) {
	var keep []string
	var params []Param
	var err error
	ScanKV(s, func(p KV) bool {
		switch {
		case !p.HasEq:
			if ours(p.Key) {
				err = fmt.Errorf("%s: missing \"=\" after the parameter name", p.Key)
				return false
			}
			if len(keep) == 0 && len(params) == 0 {
				// A leading word without "=": the name of a configuration
				// registered with pgx (stdlib.RegisterConnConfig), maybe
				// followed by parameters.
				keep = append(keep, p.Key)
				return true
			}
			// libpq and pgx refuse it too, quoting it; it is often the
			// tail of an unquoted value that held a space (a password,
			// cache_key).
			err = errors.New("a word without '=' after the first: a value that holds a space is quoted (key='a b') (the word is not shown: it may be a secret)")
			return false
		case p.Quoted && !p.Closed:
			if ours(p.Key) {
				err = fmt.Errorf("%s: unterminated quoted value", p.Key)
				return false
			}
			keep = append(keep, s[p.Start:])
			return false
		case ours(p.Key):
			params = append(params, Param{Key: p.Key, Value: p.Value})
		default:
			keep = append(keep, s[p.Start:p.End])
		}
		return true
	})
	if err != nil {
		return "", nil, err
	}
	if err := checkDuplicates(params); err != nil {
		return "", nil, err
	}
	return strings.Join(keep, " "), params, nil
}

// KV is one element of the keyword/value form, as libpq reads it.
type KV struct {
	Key    string
	HasEq  bool   // false: a word without "=" (Raw and Value empty)
	Raw    string // the value as written, without its quotes
	Value  string // the value, its backslash escapes undone
	Quoted bool
	Closed bool // a quoted value's closing quote was found
	// Start and End bound the element in the string (End is after the
	// closing quote, or after the word of an element without "=").
	Start, End int
}

// ScanKV tokenises the keyword/value form as libpq does (key = value,
// spaces around "=", values in single quotes with backslash escapes,
// escapes in unquoted values) and calls f for each element until f returns
// false. It reads any string: an unterminated quote ends the scan with
// Closed false.
func ScanKV(s string, f func(KV) bool) {
	i := 0
	for {
		for i < len(s) && IsSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return
		}
		p := KV{Start: i}
		for i < len(s) && s[i] != '=' && !IsSpace(s[i]) {
			i++
		}
		p.Key, p.End = s[p.Start:i], i
		for i < len(s) && IsSpace(s[i]) {
			i++
		}
		if i >= len(s) || s[i] != '=' {
			if !f(p) {
				return
			}
			continue
		}
		p.HasEq = true
		i++ // '='
		for i < len(s) && IsSpace(s[i]) {
			i++
		}
		p.Quoted = i < len(s) && s[i] == '\''
		if p.Quoted {
			i++
		}
		rawStart := i
		var val strings.Builder
		for i < len(s) {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				val.WriteByte(s[i+1])
				i += 2
				continue
			}
			if (p.Quoted && c == '\'') || (!p.Quoted && IsSpace(c)) {
				break
			}
			val.WriteByte(c)
			i++
		}
		p.Raw, p.Value = s[rawStart:i], val.String()
		if p.Quoted && i < len(s) {
			p.Closed = true
			i++ // the closing quote
		}
		p.End = i
		if !f(p) || (p.Quoted && !p.Closed) {
			return
		}
	}
}

// ours reports whether key is a wtcache parameter, in any letter case: a
// CACHE_TTL must not reach the server as a session parameter (a FATAL at
// connect); the caller refuses it by name.
func ours(key string) bool {
	return len(key) >= len(Prefix) && strings.EqualFold(key[:len(Prefix)], Prefix)
}

// IsSpace reports whether c separates elements of the keyword/value form.
func IsSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

var errDuplicate = errors.New("given more than once")

func checkDuplicates(ps []Param) error {
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			if ps[i].Key == ps[j].Key {
				return fmt.Errorf("%s: %w", ps[i].Key, errDuplicate)
			}
		}
	}
	return nil
}

// RedactURL returns a URL with its password replaced, for messages. A string
// that does not parse is replaced whole: it may hold a password in a form
// the parser did not recognise.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	if (u.User == nil && strings.Contains(s, "@")) || strings.Count(s, "@") > 1 {
		// An '@' that is not the end of the user information: a password
		// holding an unencoded '/', '?' or '#' put it, and the secret
		// before it, in the path, the query or the fragment.
		return u.Scheme + "://(redacted: the URL holds an '@' outside its user information)"
	}
	// A fragment may be the tail of a password that held a '#'.
	u.Fragment, u.RawFragment = "", ""
	if u.User != nil {
		if pw, ok := u.User.Password(); !ok || pw == "" {
			// Without a password the user position may hold the secret
			// itself (redis://SECRET@host): it is not shown either.
			u.User = url.User("xxxxx")
		}
	}
	// A password in the query (go-redis's failover URL: password=,
	// sentinel_password=) is not shown either.
	if q := u.Query(); len(q) > 0 {
		changed := false
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}
