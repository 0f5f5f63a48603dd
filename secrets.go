package wtcache

import (
	"net/url"
	"strings"
)

// dsnSecrets returns the passwords an inner DSN holds, as written and
// percent-decoded: the URL form's user information (the password, or the
// user when there is no password, which may be the secret itself), and the
// keyword/value form's password. It reads the text itself, so that a DSN
// the inner driver cannot parse (a bad port, an unterminated quote) is
// covered too.
func dsnSecrets(d string) []string {
	var out []string
	add := func(s string) {
		if len(s) < 3 { // too short to be told from the rest of a message
			return
		}
		out = append(out, s)
		if dec, err := url.PathUnescape(s); err == nil && dec != s {
			out = append(out, dec)
		}
	}
	if i := strings.Index(d, "://"); i >= 0 {
		rest := d[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			user, pass, ok := strings.Cut(rest[:at], ":")
			if ok && pass != "" {
				add(pass)
			} else {
				add(user)
			}
		}
		return out
	}
	for k := 0; ; {
		i := strings.Index(d[k:], "password")
		if i < 0 {
			return out
		}
		k += i + len("password")
		v := strings.TrimLeft(d[k:], " \t\n\r")
		if !strings.HasPrefix(v, "=") {
			continue
		}
		v = strings.TrimLeft(v[1:], " \t\n\r")
		if strings.HasPrefix(v, "'") {
			v = v[1:]
			if end := strings.IndexByte(v, '\''); end >= 0 {
				v = v[:end]
			}
			add(v)
			continue
		}
		if end := strings.IndexAny(v, " \t\n\r"); end >= 0 {
			v = v[:end]
		}
		add(v)
	}
}

// redactedError is an inner driver's error whose message held a password
// of the DSN: its message has the password replaced, and errors.As and
// errors.Is still reach the original.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	msg := e.err.Error()
	for _, s := range e.secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return msg
}

func (e *redactedError) Unwrap() error { return e.err }

// redactInner returns err, wrapped when its message holds one of secrets.
func redactInner(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			return &redactedError{err: err, secrets: secrets}
		}
	}
	return err
}
