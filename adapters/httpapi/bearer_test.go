package httpapi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBearerTokenParsing(t *testing.T) {
	cases := map[string]struct {
		header, token string
		ok            bool
	}{
		"jwt":                {"Bearer eyJh.eyJz.c2ln", "eyJh.eyJz.c2ln", true},
		"scheme any case":    {"bEARER abc", "abc", true},
		"padding":            {"Bearer abc==", "abc==", true},
		"surrounding spaces": {"Bearer   abc  ", "abc", true},
		"no scheme":          {"abc", "", false},
		"basic":              {"Basic YWxhZGRpbjpvcGVuc2VzYW1l", "", false},
		"empty token":        {"Bearer ", "", false},
		"scheme only":        {"Bearer", "", false},
		"two tokens":         {"Bearer abc def", "", false},
		"padding inside":     {"Bearer ab=c", "", false},
		"only padding":       {"Bearer ==", "", false},
		"control char":       {"Bearer abc\x00", "", false},
		"non-ascii":          {"Bearer äbc", "", false},
		"quote":              {`Bearer "abc"`, "", false},
		"oversize":           {"Bearer " + strings.Repeat("a", maxBearerLen+1), "", false},
	}
	for name, c := range cases {
		tok, ok := bearerToken(c.header)
		assert.Equal(t, c.token, tok, "%s: token of bearerToken(%q)", name, c.header)
		assert.Equal(t, c.ok, ok, "%s: bearerToken(%q) accepted", name, c.header)
	}
}

// FuzzBearerToken feeds arbitrary Authorization headers to the parser: it
// must never panic, and whatever it accepts is a non-empty RFC 6750
// b64token within the length limit that the header really carried.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "Bearer eyJh.eyJz.c2ln", "bearer a==", "Bearer", "Bearer  ", "Basic x", "Bearer a b", "Bearer =", "Bearer \xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, ok := bearerToken(header)
		if !ok {
			require.Empty(t, tok, "rejected header returned a token")
			return
		}
		require.NotEmpty(t, tok, "accepted an empty token from %q", header)
		require.LessOrEqual(t, len(tok), maxBearerLen, "accepted an oversize token from %q", header)
		require.Contains(t, header, tok, "accepted a token the header does not carry")
		body := strings.TrimRight(tok, "=")
		require.NotEmpty(t, body, "accepted a token of padding only: %q", tok)
		require.False(t, strings.ContainsFunc(body, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~+/", r))
		}), "accepted a token outside the b64token syntax: %q", tok)
	})
}
