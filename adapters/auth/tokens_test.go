package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/domain"
)

const (
	testIssuer   = "https://biosync.test"
	testAudience = "biosync-api"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef-test-key")
	testNow  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testUser = uuid.MustParse("7d444840-9dc0-11d1-b245-5ffdce74fad2")
	// testSession is the sid of the tokens the tests issue.
	testSession = uuid.MustParse("3f0e5c2a-6b1d-4c8e-9a7f-2d4b6c8e0a1b")
)

func newTestTokens(t testing.TB) *Tokens {
	t.Helper()
	tk, err := NewTokens(testKey, testIssuer, testAudience, 15*time.Minute)
	require.NoError(t, err)
	tk.Now = func() time.Time { return testNow }
	return tk
}

// validClaims returns the claims Issue would write, as a map the negative
// cases can tamper with.
func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":  testIssuer,
		"aud":  testAudience,
		"sub":  testUser.String(),
		"iat":  testNow.Unix(),
		"nbf":  testNow.Unix(),
		"exp":  testNow.Add(15 * time.Minute).Unix(),
		"jti":  "abc",
		"role": RoleUser,
		"sid":  testSession.String(),
	}
}

// sign builds a token with arbitrary method, header overrides and claims.
func sign(t testing.TB, m jwt.SigningMethod, key any, typ any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if typ == nil {
		delete(tok.Header, "typ")
	} else {
		tok.Header["typ"] = typ
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func with(k string, v any) jwt.MapClaims {
	c := validClaims()
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func TestIssueVerifyRoundtrip(t *testing.T) {
	tk := newTestTokens(t)
	tok, exp, err := tk.Issue(testUser, "", testSession, false)
	require.NoError(t, err)
	require.Equal(t, 15*time.Minute, exp, "expiresIn = %v", exp)
	c, err := tk.Verify(tok)
	require.NoError(t, err)
	require.Equal(t, testUser, c.UserID, "unexpected claims %+v", c)
	require.Equal(t, testSession, c.SessionID, "unexpected claims %+v", c)
	require.Equal(t, RoleUser, c.Role, "unexpected claims %+v", c)
	require.NotEqual(t, "", c.ID, "unexpected claims %+v", c)
	require.True(t, c.IssuedAt.Equal(testNow), "unexpected claims %+v", c)
	require.True(t, c.NotBefore.Equal(testNow), "unexpected claims %+v", c)
	require.True(t, c.ExpiresAt.Equal(testNow.Add(15*time.Minute)), "unexpected claims %+v", c)
	id, err := tk.VerifyAccess(tok)
	require.NoError(t, err, "VerifyAccess = %v,", id)
	require.Equal(t, testUser, id, "VerifyAccess = %v, %v", id, err)

	// Header is exactly HS256 + at+jwt + the signing key's id.
	hdr, _, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(hdr)
	require.Equal(t, `{"alg":"HS256","kid":"`+KeyID(tk.Key)+`","typ":"at+jwt"}`, string(raw), "header = %s", raw)

	// Explicit role survives; jti is unique.
	tok2, _, _ := tk.Issue(testUser, "admin", testSession, false)
	c2, err := tk.Verify(tok2)
	require.NoError(t, err, "second token: %+v,", c2)
	require.Equal(t, "admin", c2.Role, "second token: %+v, %v", c2, err)
	require.NotEqual(t, c.ID, c2.ID, "second token: %+v, %v", c2, err)
}

func TestVerifyLeeway(t *testing.T) {
	tk := newTestTokens(t)
	tok, _, _ := tk.Issue(testUser, "", testSession, false)
	for _, d := range []time.Duration{15*time.Minute + 29*time.Second, -29 * time.Second} {
		tk.Now = func() time.Time { return testNow.Add(d) }
		_, err := tk.Verify(tok)
		assert.NoError(t, err, "clock %+v: within leeway but rejected", d)
	}
	for _, d := range []time.Duration{15*time.Minute + 31*time.Second, -31 * time.Second} {
		tk.Now = func() time.Time { return testNow.Add(d) }
		_, err := tk.Verify(tok)
		assert.ErrorIs(t, err, domain.ErrUnauthorized, "clock %+v: beyond leeway but got %v", d, err)
	}
}

func TestVerifyRejects(t *testing.T) {
	tk := newTestTokens(t)

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, AccessTokenType, validClaims())
	good, _, _ := tk.Issue(testUser, "", testSession, false)
	parts := strings.Split(good, ".")

	cases := map[string]string{
		"empty":                               "",
		"garbage":                             "garbage",
		"dots only":                           "..",
		"two segments":                        parts[0] + "." + parts[1],
		"four segments":                       good + ".x",
		"a.b.c":                               "a.b.c",
		"bearer prefix":                       "Bearer " + good,
		"trailing whitespace":                 good + " ",
		"unicode":                             "ü.ü.ü",
		"oversize":                            strings.Repeat("A", MaxTokenLen+1),
		"alg none":                            noneTok,
		"alg none, sig stripped":              strings.Join(append(strings.Split(noneTok, ".")[:2], ""), "."),
		"alg None uppercase":                  rewriteHeader(t, good, `{"alg":"None","typ":"at+jwt"}`, true),
		"alg none + valid sig":                rewriteHeader(t, good, `{"alg":"none","typ":"at+jwt"}`, false),
		"signature stripped":                  parts[0] + "." + parts[1] + ".",
		"signature tampered":                  parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"payload tampered":                    parts[0] + "." + reencodeClaims(t, with("sub", uuid.New().String())) + "." + parts[2],
		"wrong key":                           sign(t, jwt.SigningMethodHS256, []byte("another-32-byte-long-secret-key!!"), AccessTokenType, validClaims()),
		"HS256 keyed with RSA public key PEM": sign(t, jwt.SigningMethodHS256, rsaPubPEM, AccessTokenType, validClaims()),
		"HS256 keyed with RSA public key DER": sign(t, jwt.SigningMethodHS256, der, AccessTokenType, validClaims()),
		"RS256":                               sign(t, jwt.SigningMethodRS256, rsaKey, AccessTokenType, validClaims()),
		"PS256":                               sign(t, jwt.SigningMethodPS256, rsaKey, AccessTokenType, validClaims()),
		"ES256":                               sign(t, jwt.SigningMethodES256, ecKey, AccessTokenType, validClaims()),
		"HS384 right key":                     sign(t, jwt.SigningMethodHS384, testKey, AccessTokenType, validClaims()),
		"HS512 right key":                     sign(t, jwt.SigningMethodHS512, testKey, AccessTokenType, validClaims()),
		"wrong iss":                           sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("iss", "https://evil.test")),
		"missing iss":                         sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("iss", nil)),
		"wrong aud":                           sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("aud", "other-service")),
		"wrong aud list":                      sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("aud", []string{"a", "b"})),
		"missing aud":                         sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("aud", nil)),
		"typ JWT":                             sign(t, jwt.SigningMethodHS256, testKey, "JWT", validClaims()),
		"typ refresh":                         sign(t, jwt.SigningMethodHS256, testKey, "rt+jwt", validClaims()),
		"typ not a string":                    sign(t, jwt.SigningMethodHS256, testKey, 1, validClaims()),
		"missing typ":                         sign(t, jwt.SigningMethodHS256, testKey, nil, validClaims()),
		"crit header":                         signWithHeader(t, "crit", []string{"exp"}),
		"expired beyond leeway":               sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("exp", testNow.Add(-31*time.Second).Unix())),
		"expired long ago":                    sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("exp", testNow.Add(-24*time.Hour).Unix())),
		"missing exp":                         sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("exp", nil)),
		"exp not a number":                    sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("exp", "tomorrow")),
		"nbf in the future":                   sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("nbf", testNow.Add(time.Minute).Unix())),
		"missing nbf":                         sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("nbf", nil)),
		"iat in the future":                   sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("iat", testNow.Add(time.Minute).Unix())),
		"missing iat":                         sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("iat", nil)),
		"missing jti":                         sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("jti", nil)),
		"missing role":                        sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("role", nil)),
		"missing sub":                         sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sub", nil)),
		"empty sub":                           sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sub", "")),
		"sub not a uuid":                      sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sub", "alice")),
		"sub nil uuid":                        sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sub", uuid.Nil.String())),
		"sub urn uuid":                        sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sub", "urn:uuid:"+testUser.String())),
		"sub uppercase uuid":                  sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sub", strings.ToUpper(testUser.String()))),
		"sub not a string":                    sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sub", 42)),
		"missing sid":                         sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sid", nil)),
		"sid not a uuid":                      sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sid", "session-1")),
		"sid nil uuid":                        sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sid", uuid.Nil.String())),
		"sid not a string":                    sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("sid", 7)),
		"amr not a list":                      sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("amr", "otp")),
		"amr not strings":                     sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("amr", []any{"pwd", 1})),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := tk.Verify(tok)
			require.ErrorIs(t, err, domain.ErrUnauthorized, "want ErrUnauthorized, got %v (claims %+v)", err, c)
			t.Log(err)
			require.Equal(t, Claims{}, c, "claims leaked on error")
			id, err := tk.VerifyAccess(tok)
			require.ErrorIs(t, err, domain.ErrUnauthorized, "VerifyAccess = %v, %v", id, err)
			require.Equal(t, uuid.Nil, id, "VerifyAccess = %v, %v", id, err)
		})
	}
}

func TestVerifyAcceptsRFC9068MediaType(t *testing.T) {
	tk := newTestTokens(t)
	for _, typ := range []string{"at+jwt", "AT+JWT", "application/at+jwt"} {
		_, err := tk.Verify(sign(t, jwt.SigningMethodHS256, testKey, typ, validClaims()))
		assert.NoError(t, err, "typ %q rejected", typ)
	}
}

func TestExpiredWrapsLibraryError(t *testing.T) {
	tk := newTestTokens(t)
	_, err := tk.Verify(sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("exp", testNow.Add(-time.Hour).Unix())))
	require.ErrorIs(t, err, domain.ErrUnauthorized, "got %v", err)
	require.ErrorIs(t, err, jwt.ErrTokenExpired, "got %v", err)
}

func TestNewTokensValidation(t *testing.T) {
	for name, tc := range map[string]struct {
		key      []byte
		iss, aud string
		ttl      time.Duration
	}{
		"short key":    {testKey[:31], testIssuer, testAudience, time.Minute},
		"nil key":      {nil, testIssuer, testAudience, time.Minute},
		"empty issuer": {testKey, "", testAudience, time.Minute},
		"empty aud":    {testKey, testIssuer, "", time.Minute},
		"zero ttl":     {testKey, testIssuer, testAudience, 0},
		"negative ttl": {testKey, testIssuer, testAudience, -time.Minute},
	} {
		_, err := NewTokens(tc.key, tc.iss, tc.aud, tc.ttl)
		assert.Error(t, err, "%s: accepted", name)
	}
	_, err := NewTokens(testKey[:32], testIssuer, testAudience, time.Minute)
	assert.NoError(t, err, "32-byte key rejected")

	// The key is copied: mutating the caller's slice does not change it.
	key := append([]byte(nil), testKey...)
	tk, _ := NewTokens(key, testIssuer, testAudience, time.Minute)
	tok, _, _ := tk.Issue(testUser, "", testSession, false)
	key[0] ^= 0xff
	_, err = tk.Verify(tok)
	require.NoError(t, err, "key not copied")

	// A struct literal with a weak key fails closed too.
	weak := &Tokens{Key: []byte("short"), Issuer: testIssuer, Audience: testAudience, TTL: time.Minute}
	_, _, err = weak.Issue(testUser, "", testSession, false)
	assert.Error(t, err, "Issue with short key succeeded")
	_, err = weak.Verify(tok)
	assert.Error(t, err, "Verify with short key succeeded")
	_, _, err = tk.Issue(uuid.Nil, "", testSession, false)
	assert.Error(t, err, "Issue for nil user succeeded")
	_, _, err = tk.Issue(testUser, "", uuid.Nil, false)
	assert.Error(t, err, "Issue outside a session succeeded")
}

// rewriteHeader replaces the header of tok; with resign it signs the new
// header+payload with the real key (so only the header check can reject).
func rewriteHeader(t testing.TB, tok, header string, resign bool) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	parts[0] = base64.RawURLEncoding.EncodeToString([]byte(header))
	if resign {
		sig, err := jwt.SigningMethodHS256.Sign(parts[0]+"."+parts[1], testKey)
		require.NoError(t, err)
		parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	}
	return strings.Join(parts, ".")
}

func reencodeClaims(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	s := sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, c)
	return strings.Split(s, ".")[1]
}

func signWithHeader(t testing.TB, k string, v any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims())
	tok.Header["typ"] = AccessTokenType
	tok.Header[k] = v
	s, err := tok.SignedString(testKey)
	require.NoError(t, err)
	return s
}

func flip(sig string) string {
	b := []byte(sig)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

// TestAMRSaysHowTheSessionWasOpened: amr (RFC 8176) is ["pwd"] for a
// password session and ["pwd","otp"] for one opened with a code; only the
// latter counts as MFA, and a token without amr (issued before amr existed)
// counts as password only.
func TestAMRSaysHowTheSessionWasOpened(t *testing.T) {
	tk := newTestTokens(t)
	for _, mfa := range []bool{false, true} {
		tok, _, err := tk.Issue(testUser, "admin", testSession, mfa)
		require.NoError(t, err)
		c, err := tk.Verify(tok)
		want := []string{AMRPassword}
		if mfa {
			want = append(want, AMROTP)
		}
		require.NoError(t, err, "mfa=%v", mfa)
		require.Equal(t, want, c.AMR, "mfa=%v: amr", mfa)
		require.Equal(t, mfa, c.MFA(), "mfa=%v: amr %v", mfa, c.AMR)
	}
	old := sign(t, jwt.SigningMethodHS256, testKey, AccessTokenType, with("amr", nil))
	c, err := tk.Verify(old)
	require.NoError(t, err, "token without amr: %+v,", c)
	require.False(t, c.MFA(), "token without amr: %+v, %v", c, err)
	require.Len(t, c.AMR, 0, "token without amr: %+v, %v", c, err)
	// amr is signed: editing it breaks the signature.
	tok, _, _ := tk.Issue(testUser, "admin", testSession, false)
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(payload), `"amr":["pwd"]`, `"amr":["pwd","otp"]`, 1)
	require.NotEqual(t, string(payload), forged, "payload %s has no amr", payload)
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
	_, err = tk.Verify(strings.Join(parts, "."))
	require.ErrorIs(t, err, domain.ErrUnauthorized, "a token with amr edited in = %v, want 401", err)
}

// TestAVerifiedTokenIsStillCheckedForTimeOnEveryUse: the verified-token
// cache skips parsing, never the clock: a token accepted once is refused
// once the clock is outside its validity (either way, beyond the leeway).
func TestAVerifiedTokenIsStillCheckedForTimeOnEveryUse(t *testing.T) {
	tk := newTestTokens(t)
	tok, _, _ := tk.Issue(testUser, "", testSession, false)
	_, err := tk.Verify(tok)
	require.NoError(t, err)
	for _, d := range []time.Duration{-31 * time.Second, 15*time.Minute + 31*time.Second} {
		tk.Now = func() time.Time { return testNow.Add(d) }
		_, err := tk.Verify(tok)
		assert.ErrorIs(t, err, domain.ErrUnauthorized, "clock %+v after a cached verification: got %v, want 401", d, err)
		tk.Now = func() time.Time { return testNow }
		_, err = tk.Verify(tok)
		require.NoError(t, err, "back at issue time")
	}
	// A token with a changed signature is never served from the cache.
	_, err = tk.Verify(tok[:len(tok)-2] + "AA")
	assert.ErrorIs(t, err, domain.ErrUnauthorized, "tampered signature accepted: %v", err)
}

// The signing key's decoding is pinned: base64 of at least 32 bytes is
// decoded, anything else is taken as raw bytes (a different reading would
// invalidate every issued token).
func TestDecodeKeyIsPinned(t *testing.T) {
	assert.Equal(t, "secret-key-of-the-e2e-test-32-bytes!!", string(DecodeKey("c2VjcmV0LWtleS1vZi10aGUtZTJlLXRlc3QtMzItYnl0ZXMhIQ==")))
	assert.Equal(t, "c2hvcnQ=", string(DecodeKey("c2hvcnQ=")), "base64 of fewer than 32 bytes is taken as raw bytes")
	assert.Equal(t, "not base64 at all, but long enough", string(DecodeKey("not base64 at all, but long enough")))
}

// A signing-key rotation under traffic rejects nobody: tokens of the old
// key keep verifying while it is listed as previous, new tokens name the
// new key, and once the old key is dropped (after the access-token TTL)
// its tokens stop working; a kid naming no configured key is refused.
func TestASigningKeyRotationRejectsNoLiveToken(t *testing.T) {
	oldKey := []byte("0123456789abcdef0123456789abcdef-old")
	newKey := []byte("0123456789abcdef0123456789abcdef-new")
	before, err := NewTokens(oldKey, "biosync", "biosync-api", 15*time.Minute)
	require.NoError(t, err)
	before.Now = func() time.Time { return testNow }
	oldTok, _, err := before.Issue(testUser, "", testSession, false)
	require.NoError(t, err)

	during, err := NewTokens(newKey, "biosync", "biosync-api", 15*time.Minute)
	require.NoError(t, err)
	during.Previous = [][]byte{oldKey}
	during.Now = before.Now
	_, err = during.Verify(oldTok)
	require.NoError(t, err, "a token of the old key, during the rotation")
	newTok, _, err := during.Issue(testUser, "", testSession, false)
	require.NoError(t, err)
	_, err = during.Verify(newTok)
	require.NoError(t, err)
	_, err = before.Verify(newTok)
	require.ErrorIs(t, err, domain.ErrUnauthorized, "an instance not yet rotated refuses the new key's tokens: roll out the key list first, then swap the signing key")

	after, err := NewTokens(newKey, "biosync", "biosync-api", 15*time.Minute)
	require.NoError(t, err)
	after.Now = before.Now
	_, err = after.Verify(oldTok)
	require.ErrorIs(t, err, domain.ErrUnauthorized, "the old key's tokens after it was dropped")
	_, err = after.Verify(newTok)
	require.NoError(t, err)

	current, previous := DecodeKeys(base64.StdEncoding.EncodeToString(newKey) + ", " + base64.StdEncoding.EncodeToString(oldKey))
	assert.Equal(t, newKey, current)
	assert.Equal(t, [][]byte{oldKey}, previous)
	_, err = NewTokens([]byte("short"), "biosync", "biosync-api", time.Minute)
	require.Error(t, err)
	weak := &Tokens{Key: newKey, Previous: [][]byte{[]byte("short")}, Issuer: "i", Audience: "a", TTL: time.Minute}
	_, _, err = weak.Issue(testUser, "", testSession, false)
	require.Error(t, err, "a short previous key is a configuration error")
}
