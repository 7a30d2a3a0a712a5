package httpapi

import "strings"

// maxBearerLen bounds the credential taken from an Authorization header;
// the token verifier has its own (smaller) limit, this one keeps absurd
// headers from reaching it at all.
const maxBearerLen = 8192

// bearerToken extracts the credential of `Authorization: Bearer <token>`
// (RFC 6750 §2.1): the scheme is case-insensitive, the token must be a
// non-empty b64token (letters, digits and -._~+/ followed by optional =).
// Anything else is no token at all, so odd bytes never reach the JWT parser.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxBearerLen {
		return "", false
	}
	i := 0
	for ; i < len(token); i++ {
		c := token[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return "", false
	}
	for ; i < len(token); i++ {
		if token[i] != '=' {
			return "", false
		}
	}
	return token, true
}
