package storage

import (
	"regexp"
	"strings"
)

// Replacement texts used by Redact.
const (
	redactedPassword = "xxxxx"
	redactedValue    = "REDACTED"
)

var (
	// schemeRE finds the start of anything URL-like inside free text.
	schemeRE = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://`)
	// secretParamRE finds name=value pairs whose name looks like a secret, in
	// URL queries and in connection-string-like text ("AccountKey=...;").
	secretParamRE = regexp.MustCompile(`(?i)([A-Za-z0-9_.\-]*(?:key|secret|token|sig|passw|pwd|credential|sas|auth)[A-Za-z0-9_.\-]*)=([^&;\s"'<>#]*)`)
)

// Redact returns s with credentials removed from everything URL-like in it,
// so that it is safe to print. s may be a single location or free text such
// as an error message containing URLs. Redact is idempotent and never fails.
//
//   - A URL's userinfo password is replaced by "xxxxx"
//     ("s3://AKIA:secret@bucket" → "s3://AKIA:xxxxx@bucket"); a userinfo made
//     of a user name only is replaced entirely ("https://token@host" →
//     "https://xxxxx@host"), because a lone user name is often a token.
//   - The value of every name=value pair whose name contains key, secret,
//     token, sig (and so signature), passw, pwd, credential, sas or auth,
//     compared case-insensitively, is replaced by "REDACTED"
//     ("?sig=abc&se=x" → "?sig=REDACTED&se=x"). This covers query parameters
//     and connection strings alike.
//
// Redact errs on the side of hiding too much: a value that merely looks like
// a secret is hidden as well (except for the S3 listing parameters max-keys,
// key-marker and continuation-token).
func Redact(s string) string {
	return secretParamRE.ReplaceAllStringFunc(redactUserinfo(s), func(m string) string {
		name, _, _ := strings.Cut(m, "=")
		if notSecret[strings.ToLower(name)] {
			return m
		}
		return name + "=" + redactedValue
	})
}

// notSecret lists parameter names that match the secret pattern but are
// harmless, and common in the request URLs quoted by S3 errors.
var notSecret = map[string]bool{
	"max-keys":           true,
	"key-marker":         true,
	"continuation-token": true,
}

// redactUserinfo hides the userinfo of every "scheme://userinfo@" in s. The
// userinfo runs to the last "@" before the query, the fragment or the end of
// the URL-like token, so that a password containing "/" is hidden too.
func redactUserinfo(s string) string {
	locs := schemeRE.FindAllStringIndex(s, -1)
	if len(locs) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, loc := range locs {
		start := loc[1] // just after "://"
		if loc[0] < last {
			continue // a scheme inside a userinfo already handled
		}
		rest := s[start:]
		end := strings.IndexAny(rest, "?# \t\r\n\"'<>")
		if end < 0 {
			end = len(rest)
		}
		at := strings.LastIndex(rest[:end], "@")
		if at < 0 {
			continue
		}
		ui := rest[:at]
		var repl string
		switch {
		case strings.Contains(ui, ":"):
			repl = ui[:strings.Index(ui, ":")] + ":" + redactedPassword
		case !strings.Contains(ui, "/"):
			repl = redactedPassword
		default:
			continue // "s3://bucket/path@v2": an "@" in the path, not userinfo
		}
		b.WriteString(s[last:start])
		b.WriteString(repl)
		last = start + at
	}
	b.WriteString(s[last:])
	return b.String()
}
