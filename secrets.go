package wtcache

import (
	"net/url"
	"slices"
	"strings"

	"github.com/wtcache/wtcache/internal/dsn"
)

// dsnSecrets returns the passwords an inner DSN holds, as written and
// percent-decoded: the URL form's user information (the password, or the
// user when there is no password, which may be the secret itself), and the
// keyword/value form's password. It reads the text itself, so that a DSN
// the inner driver cannot parse (a bad port, an unterminated quote) is
// covered too.
func dsnSecrets(d string) []string {
	var out []string
	var add func(s string, pieces bool)
	add = func(s string, pieces bool) {
		if len(s) < 3 { // too short to be told from the rest of a message
			return
		}
		out = append(out, s)
		if dec, err := url.PathUnescape(s); err == nil && dec != s {
			add(dec, pieces)
		}
		if !pieces {
			return
		}
		// A driver's own redaction, or its parse of a password holding
		// an unencoded '@', '/', quote or space, may show only part of
		// it: every run of letters and digits is a secret too.
		for _, p := range strings.FieldsFunc(s, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		}) {
			if p != s {
				add(p, false)
			}
		}
	}
	if i := strings.Index(d, "://"); i >= 0 {
		// The user information ends at the last '@' of the authority; a
		// password holding an unencoded '/', '?' or '@' blurs where that
		// is, so both readings count.
		rest := d[i+3:]
		var auths []string
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			auths = append(auths, rest[:j])
		}
		if j := strings.IndexByte(rest, '?'); j >= 0 {
			auths = append(auths, rest[:j])
		} else {
			auths = append(auths, rest)
		}
		if j := strings.LastIndexByte(rest, '?'); j >= 0 {
			auths = append(auths, rest[:j]) // a '?' in the password
		}
		if j := strings.IndexAny(rest, "@/"); j >= 0 && rest[j] == '@' {
			auths = append(auths, rest[:j+1]) // libpq's and pgx's reading
		}
		// Passwords in the query (password=, sslpassword=).
		if q := dsn.QueryStart(d); q >= 0 {
			for _, part := range strings.Split(d[q+1:], "&") {
				if k, v, ok := strings.Cut(part, "="); ok && strings.Contains(strings.ToLower(k), "password") {
					add(v, true)
				}
			}
		}
		for _, a := range auths {
			if at := strings.LastIndexByte(a, '@'); at >= 0 {
				user, pass, ok := strings.Cut(a[:at], ":")
				if ok && pass != "" {
					add(pass, true)
				} else {
					add(user, true)
				}
			}
		}
	} else {
		dsnSecretsKV(d, add)
	}
	// Longest first, so that a piece never breaks a longer match.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// dsnSecretsKV adds the passwords of the keyword/value form, read as libpq
// reads it (dsn.ScanKV), an unterminated quote included.
func dsnSecretsKV(d string, add func(s string, pieces bool)) {
	dsn.ScanKV(d, func(p dsn.KV) bool {
		if !p.HasEq || !strings.Contains(strings.ToLower(p.Key), "password") { // password, sslpassword
			return true
		}
		add(p.Raw, true)
		add(p.Value, true)
		if p.Closed && p.End < len(d) && !dsn.IsSpace(d[p.End]) {
			// Text right after the closing quote starts another
			// parameter for libpq, but was most likely meant as the rest
			// of the password (password=''secret): a secret too.
			end := p.End
			for end < len(d) && !dsn.IsSpace(d[end]) {
				end++
			}
			add(d[p.End:end], true)
		}
		return true
	})
}

// redactedError is an inner driver's error whose message held a password
// of the DSN: its message has the password replaced, and errors.As and
// errors.Is still reach the original.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	msg := hideQuotedDSN(e.err.Error())
	for _, s := range e.secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return msg
}

func (e *redactedError) Unwrap() error { return e.err }

// parseQuote is how pgx quotes a DSN it cannot parse.
const parseQuote = "cannot parse `"

// hideQuotedDSN replaces a DSN the message quotes whole (pgx: "cannot
// parse `DSN`: reason"): pgx's own redaction misses passwords written in
// ways libpq reads otherwise than the user meant (an unquoted space, a
// quote inside), and the reason is what the user needs.
func hideQuotedDSN(msg string) string {
	i := strings.Index(msg, parseQuote)
	if i < 0 {
		return msg
	}
	start := i + len(parseQuote)
	j := strings.IndexByte(msg[start:], '`')
	if j < 0 {
		return msg[:start] + "(the connection string, not shown: it may hold a password)`"
	}
	return msg[:start] + "(the connection string, not shown: it may hold a password)" + hideQuotedTokens(msg[start+j:])
}

// hideQuotedTokens replaces the text of every double-quoted token longer
// than one character: the reason of a parse error quotes pieces of the
// connection string (a query parameter, a percent-encoded token), which may
// be pieces of a password written unencoded.
func hideQuotedTokens(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+1:], '"')
		if j < 0 {
			break
		}
		b.WriteString(s[:i+1])
		if j > 1 {
			b.WriteString("…")
		} else {
			b.WriteString(s[i+1 : i+1+j])
		}
		b.WriteByte('"')
		s = s[i+1+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

// redactInner returns err, wrapped when its message holds one of secrets
// or quotes the whole DSN.
func redactInner(err error, secrets []string) error {
	if err == nil {
		return err
	}
	msg := err.Error()
	if strings.Contains(msg, parseQuote) {
		return &redactedError{err: err, secrets: secrets}
	}
	if len(secrets) == 0 {
		return err
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			return &redactedError{err: err, secrets: secrets}
		}
	}
	return err
}
