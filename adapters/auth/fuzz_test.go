package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain"
)

// FuzzVerifyAccess feeds arbitrary strings to VerifyAccess: it must never
// panic, every rejection must wrap domain.ErrUnauthorized, and anything
// accepted must be a token for the one user the seeds were signed for (the
// fuzzer cannot forge the HMAC).
func FuzzVerifyAccess(f *testing.F) {
	tk := newTestTokens(f)
	good, _, err := tk.Issue(testUser, "", testSession, false)
	require.NoError(f, err)
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.")
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, AccessTokenType, validClaims()))
	f.Add(sign(f, jwt.SigningMethodHS256, testKey, "JWT", validClaims()))
	f.Add(sign(f, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sub", "x")))
	f.Add(strings.Repeat(".", 100))
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := tk.VerifyAccess(tok)
		if err != nil {
			require.ErrorIs(t, err, domain.ErrUnauthorized, "rejection does not wrap ErrUnauthorized: %v", err)
			return
		}
		require.Equal(t, testUser, id, "accepted token for unexpected user %v: %q", id, tok)
	})
}

// FuzzVerifyPHC feeds arbitrary (password, stored hash) pairs to Verify: it
// must never panic, malformed input must be an error with ok=false, and a
// fresh hash of the password must always verify.
func FuzzVerifyPHC(f *testing.F) {
	h := Hasher{Params: testParams}
	good, _ := h.Hash("correct horse battery staple")
	f.Add("correct horse battery staple", good)
	f.Add("x", "")
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("x", "$argon2id$v=19$m=8,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$aq42HBL+IPAitHspChw/8mx5JRX2jFDkTmlsBskwH/0")
	f.Add("x", "$argon2id$v=19$m=4294967295,t=4294967295,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, pw, phc string) {
		p, _, _, perr := parsePHC(phc)
		// Keep each iteration cheap: only run the KDF for small costs; the
		// parser (where hostile input lands) is exercised on every input.
		if perr == nil && (p.Memory > 1024 || p.Iterations > 2) {
			return
		}
		start := time.Now()
		ok, rehash, err := h.Verify(pw, phc)
		require.Equal(t, (err == nil), (perr == nil), "parse err %v but Verify err %v", perr, err)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformedHash, "malformed hash")
			require.False(t, ok, "malformed hash verified: %v", err)
			require.False(t, rehash, "malformed hash asks for a rehash: %v", err)
		}
		if rehash {
			require.True(t, ok, "rehash without ok")
		}
		require.LessOrEqual(t, time.Since(start), 5*time.Second, "Verify too slow for %q", phc)
		if len(pw) <= MaxPasswordLen {
			fresh, err := h.Hash(pw)
			require.NoError(t, err)
			ok, rehash, err := h.Verify(pw, fresh)
			require.NoError(t, err, "fresh hash does not verify")
			require.True(t, ok, "fresh hash does not verify")
			require.False(t, rehash, "fresh hash asks for a rehash")
		}
	})
}
