package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/biosync/biosync/domain"
)

// Access-token constants. They are exported so tests and the HTTP adapter
// share one definition with this package instead of repeating literals.
const (
	// AccessTokenType is the JOSE "typ" header of access tokens (RFC 9068).
	// Checking it on verify keeps any other JWT signed with the same key
	// (e.g. an ID or refresh token) from being accepted as an access token.
	AccessTokenType = "at+jwt"
	// RoleUser is the role given when Issue is called without one; it is
	// the least-privileged role, so the default can never escalate.
	RoleUser = "user"
	// MinKeyLen is the minimum HS256 key length in bytes: RFC 7518 §3.2
	// requires a key at least as long as the hash output (256 bits).
	MinKeyLen = 32
	// Leeway is the clock-skew tolerance applied to exp, nbf and iat, so a
	// few seconds of drift between hosts does not log users out.
	Leeway = 30 * time.Second
	// MaxTokenLen bounds the token accepted by Verify before any decoding,
	// so oversized input costs nothing; real tokens are a few hundred bytes.
	MaxTokenLen = 4096
)

// signingMethod is the only algorithm issued and accepted. Pinning one
// symmetric algorithm defeats alg=none and RS/HS key-confusion attacks.
var signingMethod = jwt.SigningMethodHS256

// Claims is what a verified access token says about its bearer. It is a
// plain struct, independent of the JWT library, so handlers and policies do
// not depend on token encoding details.
type Claims struct {
	// UserID is the "sub" claim: the account the token was issued to.
	UserID uuid.UUID
	// Role is the "role" claim used by authorization policies.
	Role string
	// ID is the "jti" claim, unique per token, for logging.
	ID string
	// SessionID is the "sid" claim: the session (refresh-token family) the
	// token belongs to. Revoking the session revokes the token.
	SessionID uuid.UUID
	// AMR is the "amr" claim (RFC 8176): how the session was
	// authenticated, ["pwd"] or ["pwd", "otp"].
	AMR []string
	// IssuedAt, NotBefore and ExpiresAt are the iat, nbf and exp claims.
	IssuedAt, NotBefore, ExpiresAt time.Time
}

// RFC 8176 authentication method references written into "amr".
const (
	// AMRPassword: the session was opened with the password.
	AMRPassword = "pwd"
	// AMROTP: the session was opened with a one-time code too (a TOTP or
	// a recovery code).
	AMROTP = "otp"
)

// MFA reports whether the session was opened with a second factor, which
// the admin routes require.
func (c Claims) MFA() bool {
	for _, m := range c.AMR {
		if m == AMROTP {
			return true
		}
	}
	return false
}

// jwtClaims is the wire form of an access token's payload.
type jwtClaims struct {
	jwt.RegisteredClaims
	Role string   `json:"role"`
	SID  string   `json:"sid"`
	AMR  []string `json:"amr,omitempty"`
}

// Tokens issues and verifies HS256 access tokens. One value is built at
// start-up with NewTokens and shared by all requests; its fields are
// exported only so tests can substitute the clock via Now.
type Tokens struct {
	// Key is the HMAC secret; at least MinKeyLen bytes.
	Key []byte
	// Previous are older signing keys that still verify (newest first):
	// during a rotation the new key signs and the old one keeps its
	// tokens valid until they expire (TTL), then it is dropped from the
	// configuration. Tokens name their key in the kid header.
	Previous [][]byte
	// Issuer is written to and required in the "iss" claim.
	Issuer string
	// Audience is written to and required in the "aud" claim, so tokens
	// minted for another service sharing the key are refused.
	Audience string
	// TTL is the access-token lifetime; keep it short (minutes): it bounds
	// how long a revoked session must be remembered by verifiers.
	TTL time.Duration
	// Now is the clock; nil means time.Now. Tests set it to be deterministic.
	Now func() time.Time

	// verified remembers tokens whose signature and claims were checked
	// (token -> Claims), so a client sending the same token on every
	// request costs a map lookup and an expiry check instead of parsing
	// and decoding JSON again (a quarter of the server's CPU on cached
	// dashboard reads, measured). Expiry is checked on every hit;
	// revocation is the Verifier's, after this.
	verified  sync.Map
	verifiedN atomic.Int64
}

// maxVerified bounds the verified-token cache; when full it starts over.
const maxVerified = 100_000

// NewTokens validates the configuration and returns a Tokens, so a weak key
// or missing issuer/audience is a start-up error rather than a silent hole.
// The key is copied so later changes by the caller cannot affect it.
func NewTokens(key []byte, issuer, audience string, ttl time.Duration) (*Tokens, error) {
	t := &Tokens{
		Key:      append([]byte(nil), key...),
		Issuer:   issuer,
		Audience: audience,
		TTL:      ttl,
		Now:      time.Now,
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

// DecodeKeys reads BIOSYNC_JWT_KEY as a comma-separated list, newest
// first: the first key signs, the others only verify (a rotation), each
// decoded by DecodeKey. Base64 never contains a comma.
func DecodeKeys(s string) (current []byte, previous [][]byte) {
	for i, part := range strings.Split(s, ",") {
		k := DecodeKey(strings.TrimSpace(part))
		if i == 0 {
			current = k
			continue
		}
		previous = append(previous, k)
	}
	return current, previous
}

// DecodeKey reads the configured signing key (BIOSYNC_JWT_KEY): standard
// base64 of at least 32 bytes, as the embedded default generates it, or
// else the string's raw bytes, so an operator's passphrase keeps working.
// The result signs every access token: a different decoding would log
// every user out.
func DecodeKey(s string) []byte {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) >= 32 {
		return b
	}
	return []byte(s)
}

// check rejects a configuration that would make tokens forgeable or
// unverifiable; it guards Issue and Verify too, because Tokens may also be
// built as a struct literal.
func (t *Tokens) check() error {
	switch {
	case t == nil:
		return errors.New("auth: nil Tokens")
	case len(t.Key) < MinKeyLen:
		return fmt.Errorf("auth: token key must be at least %d bytes, got %d", MinKeyLen, len(t.Key))
	case slices.ContainsFunc(t.Previous, func(k []byte) bool { return len(k) < MinKeyLen }):
		return fmt.Errorf("auth: every previous token key must be at least %d bytes", MinKeyLen)
	case t.Issuer == "":
		return errors.New("auth: token issuer must not be empty")
	case t.Audience == "":
		return errors.New("auth: token audience must not be empty")
	case t.TTL <= 0:
		return fmt.Errorf("auth: token TTL must be positive, got %v", t.TTL)
	}
	return nil
}

// now returns the configured clock's time.
func (t *Tokens) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Issue signs an access token for userID with the given role (RoleUser when
// empty) in session sessionID (the sid claim); amr is ["pwd","otp"] when mfa
// is set, else ["pwd"]. expiresIn is the token lifetime, returned so the
// HTTP layer can fill the OAuth "expires_in" field without recomputing it.
func (t *Tokens) Issue(userID uuid.UUID, role string, sessionID uuid.UUID, mfa bool) (token string, expiresIn time.Duration, err error) {
	if err := t.check(); err != nil {
		return "", 0, err
	}
	if userID == uuid.Nil {
		return "", 0, errors.New("auth: cannot issue a token for the nil user id")
	}
	if sessionID == uuid.Nil {
		return "", 0, errors.New("auth: cannot issue a token outside a session (nil sid)")
	}
	if role == "" {
		role = RoleUser
	}
	jti, err := randomID()
	if err != nil {
		return "", 0, err
	}
	// Whole seconds: JWT NumericDates are seconds, so truncating here makes
	// expiresIn exactly match what the token says.
	now := t.now().Truncate(time.Second)
	exp := now.Add(t.TTL)
	claims := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.Issuer,
			Subject:   userID.String(),
			Audience:  jwt.ClaimStrings{t.Audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		Role: role,
		SID:  sessionID.String(),
		AMR:  []string{AMRPassword},
	}
	if mfa {
		claims.AMR = append(claims.AMR, AMROTP)
	}
	tok := jwt.NewWithClaims(signingMethod, claims)
	tok.Header["typ"] = AccessTokenType
	tok.Header["kid"] = KeyID(t.Key)
	signed, err := tok.SignedString(t.Key)
	if err != nil {
		return "", 0, fmt.Errorf("auth: signing access token: %w", err)
	}
	return signed, exp.Sub(now), nil
}

// VerifyAccess verifies an access token and returns only its user id; it is
// the convenience form for handlers that need no role.
func (t *Tokens) VerifyAccess(token string) (uuid.UUID, error) {
	c, err := t.Verify(token)
	if err != nil {
		return uuid.Nil, err
	}
	return c.UserID, nil
}

// Verify checks an access token completely: HS256 only, signature with
// t.Key, typ at+jwt, no unknown critical headers, iss and aud equal to t's,
// exp/iat/nbf present and valid within Leeway, jti present, sub and sid
// canonical non-nil UUIDs and role non-empty. It does not know about
// revoked sessions: Verifier adds that. Every rejection wraps
// domain.ErrUnauthorized (and the JWT library's error when there is one), so
// callers map it to 401 with a single errors.Is.
func (t *Tokens) Verify(token string) (Claims, error) {
	if err := t.check(); err != nil {
		// Misconfiguration is a server fault, not a client one; failing
		// closed with a non-401 error makes it visible.
		return Claims{}, err
	}
	if token == "" {
		return Claims{}, unauthorized("empty token")
	}
	if len(token) > MaxTokenLen {
		return Claims{}, unauthorized("token longer than %d bytes", MaxTokenLen)
	}
	if v, ok := t.verified.Load(token); ok {
		c := v.(Claims)
		now := t.now()
		// Signature, issuer, audience, iat and nbf were checked when it was
		// stored and cannot become invalid; expiry can.
		if now.Before(c.ExpiresAt.Add(Leeway)) && !now.Before(c.NotBefore.Add(-Leeway)) {
			return c, nil
		}
		t.verified.Delete(token)
	}
	c, err := t.verify(token)
	if err != nil {
		return c, err
	}
	if t.verifiedN.Add(1) > maxVerified {
		t.verified.Clear()
		t.verifiedN.Store(1)
	}
	t.verified.Store(token, c)
	return c, nil
}

// verify parses and checks a token that is not in the cache.
func (t *Tokens) verify(token string) (Claims, error) {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{signingMethod.Alg()}),
		jwt.WithIssuer(t.Issuer),
		jwt.WithAudience(t.Audience),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(t.now),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	)
	var wc jwtClaims
	_, err := parser.ParseWithClaims(token, &wc, t.keyFunc)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: access token: %w", domain.ErrUnauthorized, err)
	}
	if wc.IssuedAt == nil {
		return Claims{}, unauthorized("missing iat")
	}
	if wc.ID == "" {
		return Claims{}, unauthorized("missing jti")
	}
	if wc.Role == "" {
		return Claims{}, unauthorized("missing role")
	}
	uid, err := parseUUID("sub", wc.Subject)
	if err != nil {
		return Claims{}, err
	}
	sid, err := parseUUID("sid", wc.SID)
	if err != nil {
		return Claims{}, err
	}
	return Claims{
		UserID:    uid,
		SessionID: sid,
		Role:      wc.Role,
		ID:        wc.ID,
		AMR:       wc.AMR,
		IssuedAt:  wc.IssuedAt.Time,
		NotBefore: wc.NotBefore.Time,
		ExpiresAt: wc.ExpiresAt.Time,
	}, nil
}

// keyFunc checks the header before handing out the key, so no token gets a
// signature check unless it claims to be an HS256 access token.
func (t *Tokens) keyFunc(tok *jwt.Token) (any, error) {
	if tok.Method == nil || tok.Method.Alg() != signingMethod.Alg() {
		return nil, fmt.Errorf("unexpected signing algorithm")
	}
	typ, _ := tok.Header["typ"].(string)
	// RFC 9068 §4: "at+jwt" or its full media type; media types compare
	// case-insensitively.
	if !strings.EqualFold(typ, AccessTokenType) && !strings.EqualFold(typ, "application/"+AccessTokenType) {
		return nil, fmt.Errorf("typ header %q is not %q", typ, AccessTokenType)
	}
	// RFC 7515 §4.1.11: extensions listed in crit must be understood; this
	// package understands none.
	if _, ok := tok.Header["crit"]; ok {
		return nil, errors.New("unsupported crit header")
	}
	kid, named := tok.Header["kid"].(string)
	if !named {
		// Issued before tokens named their key: any configured key may
		// have signed it.
		set := jwt.VerificationKeySet{Keys: []jwt.VerificationKey{t.Key}}
		for _, k := range t.Previous {
			set.Keys = append(set.Keys, k)
		}
		return set, nil
	}
	if kid == KeyID(t.Key) {
		return t.Key, nil
	}
	for _, k := range t.Previous {
		if kid == KeyID(k) {
			return k, nil
		}
	}
	return nil, errors.New("unknown kid (a key retired from the configuration, or a forgery)")
}

// KeyID names a signing key in a token's kid header: the first 8 bytes of
// its SHA-256, hex. It identifies the key among the configured ones and
// reveals nothing usable about it.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// parseUUID accepts only the canonical lowercase hyphenated UUID form that
// Issue writes (uuid.Parse alone would also accept urn:uuid:, braces and
// bare hex), so each user and session has exactly one valid spelling.
func parseUUID(claim, s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, unauthorized("missing %s", claim)
	}
	id, err := uuid.Parse(s)
	if err != nil || id.String() != s {
		return uuid.Nil, unauthorized("%s is not a canonical UUID", claim)
	}
	if id == uuid.Nil {
		return uuid.Nil, unauthorized("%s is the nil UUID", claim)
	}
	return id, nil
}

// unauthorized builds an error wrapping domain.ErrUnauthorized.
func unauthorized(format string, args ...any) error {
	return fmt.Errorf("%w: access token: %s", domain.ErrUnauthorized, fmt.Sprintf(format, args...))
}

// randomID returns a 128-bit random jti, unguessable and collision-free in
// practice.
func randomID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: reading jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
