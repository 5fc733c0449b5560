package idmap

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNameParts is how many dot-separated parts a table name may have:
// catalog.schema.table.
const maxNameParts = 3

// parseName reads a name of at most maxParts parts and returns its parts,
// unquoted. The error says what is wrong with it, for the caller's
// message.
//
// Names that idmap writes into SQL: a model's table (Table, TableName) and
// its columns (db tags). Each is read here once, when the type is
// registered or first used, and written into SQL only as quoted by
// quoteName: nothing a name holds can end its quoting.
//
// A name is one or more parts separated by dots (schema.table); a column
// name is one part. Each part is either
//
//   - a bare identifier: letters, digits, '_' and '$' (not first), or
//   - one completely quoted identifier: "…" or `…` with the quote character
//     doubled inside, or […] with no ']' inside. It may hold any
//     character but control characters and invalid UTF-8; it may not be
//     empty.
//
// Anything else (spaces, operators, comments, a quote that does not close
// the part, text after it) is refused. Each part is then quoted for the
// dialect (double quotes, backticks for MySQL), whichever quoting it was
// written with.
func parseName(s string, maxParts int) ([]string, string) {
	if s == "" {
		return nil, "empty name"
	}
	var parts []string
	for i := 0; ; {
		if len(parts) == maxParts {
			if maxParts == 1 {
				return nil, "a column name has one part: quote a name that holds a dot (\"a.b\")"
			}
			return nil, "more than 3 dot-separated parts"
		}
		part, n, why := parsePart(s[i:])
		if why != "" {
			return nil, why
		}
		parts = append(parts, part)
		i += n
		if i == len(s) {
			return parts, ""
		}
		if s[i] != '.' {
			return nil, "text after a quoted identifier: a part is one bare or one completely quoted identifier"
		}
		i++
		if i == len(s) {
			return nil, "empty part after a dot"
		}
	}
}

// parsePart reads the part at the start of s, up to a dot or the end, and
// returns it unquoted and its length in s.
func parsePart(s string) (part string, n int, why string) {
	switch s[0] {
	case '"', '`':
		q := s[0]
		var b strings.Builder
		i := 1
		for {
			j := strings.IndexByte(s[i:], q)
			if j < 0 {
				return "", 0, "unterminated quoted identifier"
			}
			b.WriteString(s[i : i+j])
			i += j + 1
			if i < len(s) && s[i] == q { // a doubled quote stands for one
				b.WriteByte(q)
				i++
				continue
			}
			break
		}
		part = b.String()
		n = i
	case '[':
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return "", 0, "unterminated [quoted] identifier"
		}
		part, n = s[1:j], j+1
	case '.':
		return "", 0, "empty part before a dot"
	default:
		for n < len(s) && s[n] != '.' {
			r, size := utf8.DecodeRuneInString(s[n:])
			switch {
			case r == utf8.RuneError && size <= 1:
				return "", 0, "invalid UTF-8"
			case r == '$' && n > 0, r == '_', unicode.IsLetter(r), unicode.IsDigit(r):
			default:
				return "", 0, "not a bare identifier (letters, digits, '_', '$'): quote it, doubling the quote character inside"
			}
			n += size
		}
		return s[:n], n, ""
	}
	if part == "" {
		return "", 0, "empty quoted identifier"
	}
	for _, r := range part {
		switch {
		case r == utf8.RuneError:
			if !utf8.ValidString(part) {
				return "", 0, "invalid UTF-8"
			}
		case r < 0x20, r == 0x7f, unicode.IsControl(r):
			return "", 0, "control character in a quoted identifier"
		}
	}
	return part, n, ""
}

// quoteName writes the parts of a name, each quoted for the dialect with
// its quote character doubled inside, separated by dots.
func (d dialect) quoteName(b *strings.Builder, parts ...string) {
	q := "\""
	if d == dialectMySQL {
		q = "`"
	}
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(q)
		b.WriteString(strings.ReplaceAll(p, q, q+q))
		b.WriteString(q)
	}
}
