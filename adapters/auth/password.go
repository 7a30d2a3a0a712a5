package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/biosync/biosync/domain"
)

// Params are the Argon2id cost parameters. They are a value type so a
// Hasher can compare the parameters recorded in a stored hash with its
// current ones and report when a hash should be upgraded.
type Params struct {
	// Memory is the memory cost in KiB; it is the main defence against
	// GPU/ASIC cracking, so it is the first knob to raise.
	Memory uint32
	// Iterations is the number of passes over memory (Argon2 "t").
	Iterations uint32
	// Parallelism is the number of lanes (Argon2 "p").
	Parallelism uint8
	// SaltLen is the length in bytes of the random per-hash salt.
	SaltLen uint32
	// KeyLen is the length in bytes of the derived hash.
	KeyLen uint32
}

// DefaultParams is the OWASP Password Storage Cheat Sheet minimum for
// Argon2id (m=19 MiB, t=2, p=1) with a 16-byte salt and a 32-byte key. It is
// the floor required by the reliability brief; production must not go lower,
// only tests may use cheaper Params to stay fast.
var DefaultParams = Params{
	Memory:      19456,
	Iterations:  2,
	Parallelism: 1,
	SaltLen:     16,
	KeyLen:      32,
}

// Bounds applied both to Params used for hashing and to parameters read back
// from a stored PHC string. The upper bounds keep a corrupted or hostile
// stored hash from turning one login into a multi-gigabyte, multi-second
// computation (a denial of service), while staying far above any sane cost.
const (
	minSaltLen    = 8       // RFC 9106 minimum
	maxSaltLen    = 64      // bytes
	minKeyLen     = 16      // anything shorter is not a meaningful password hash
	maxKeyLen     = 128     // bytes
	maxMemory     = 1 << 20 // KiB = 1 GiB
	maxIterations = 32      // passes
	maxLanes      = 64      // lanes
)

// Password length bounds enforced by CheckPassword. The floor follows NIST
// SP 800-63B's advice to prefer length over composition rules; the ceiling
// bounds request size and work per login attempt.
const (
	// MinPasswordLen is the shortest accepted password, in characters
	// (Unicode code points, as the spec's minLength counts them).
	MinPasswordLen = 10
	// MaxPasswordLen is the longest accepted password, in characters.
	MaxPasswordLen = 256
)

// ErrMalformedHash is wrapped by Verify when the stored string is not a PHC
// Argon2id hash this package can check. It is a server-side data problem
// (not a wrong password), so callers can log and alert on it separately.
var ErrMalformedHash = errors.New("auth: malformed password hash")

// phcVersion is the only Argon2 version accepted (0x13); older versions have
// a known weakness and are never written by this package.
const phcVersion = argon2.Version

// b64 is the PHC "B64" encoding: standard alphabet, no padding. Strict
// decoding rejects non-canonical trailing bits so each hash has exactly one
// spelling.
var b64 = base64.RawStdEncoding.Strict()

// Hasher hashes and verifies passwords with Argon2id. It is a plain value so
// it can be configured once at start-up and shared freely between
// goroutines. The zero value uses DefaultParams, so forgetting to configure
// it can never silently produce weak hashes.
type Hasher struct {
	// Params are the parameters new hashes are created with and against
	// which stored hashes are judged for rehashing.
	Params Params
}

// params returns the effective parameters, defaulting the zero value so an
// unconfigured Hasher is safe rather than broken.
func (h Hasher) params() Params {
	if h.Params == (Params{}) {
		return DefaultParams
	}
	return h.Params
}

// validate rejects parameters argon2.IDKey would panic on or that fall
// outside the bounds above, so misconfiguration surfaces as an error.
func (p Params) validate() error {
	switch {
	case p.Iterations < 1 || p.Iterations > maxIterations:
		return fmt.Errorf("iterations %d out of range 1..%d", p.Iterations, maxIterations)
	case p.Parallelism < 1 || p.Parallelism > maxLanes:
		return fmt.Errorf("parallelism %d out of range 1..%d", p.Parallelism, maxLanes)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemory:
		return fmt.Errorf("memory %d KiB out of range %d..%d", p.Memory, 8*uint32(p.Parallelism), maxMemory)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt length %d out of range %d..%d", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("key length %d out of range %d..%d", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// Hash derives an Argon2id hash of password with a fresh random salt and
// returns it as a PHC string, e.g.
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>. The parameters travel with
// the hash so they can be raised later without invalidating stored hashes.
// Hash does not apply CheckPassword: length policy belongs to registration
// and password change, not to hashing.
func (h Hasher) Hash(password string) (string, error) {
	p := h.params()
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("auth: invalid argon2id params: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	return encodePHC(p, salt, key), nil
}

// Verify reports whether password matches the stored PHC string. The
// comparison is constant-time so response timing does not leak how many
// bytes matched. needsRehash is true only when ok is true and the stored
// parameters differ from h's current ones: the caller should then Hash the
// (now known correct) password again and store the result, which is how
// parameter upgrades roll out without a password reset. A stored string that
// cannot be parsed yields an error wrapping ErrMalformedHash and ok=false.
func (h Hasher) Verify(password, phc string) (ok bool, needsRehash bool, err error) {
	p, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != h.params(), nil
}

// dummySalt is a fixed salt for DummyVerify; its value is irrelevant because
// the result is discarded, only the work matters.
var dummySalt = make([]byte, maxSaltLen)

// DummyVerify performs the same Argon2id work as Verify with h's current
// parameters and discards the result. Call it when a login names an account
// that does not exist, so the response takes as long as a wrong password
// and timing does not reveal which e-mail addresses are registered.
func (h Hasher) DummyVerify(password string) {
	p := h.params()
	if p.validate() != nil {
		p = DefaultParams
	}
	got := argon2.IDKey([]byte(password), dummySalt[:p.SaltLen], p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	// Compare like Verify does so the constant-time tail costs the same.
	subtle.ConstantTimeCompare(got, got)
}

// CheckPassword enforces the password length policy (MinPasswordLen to
// MaxPasswordLen characters, counted as JSON Schema's minLength and
// maxLength count them, so the spec and the server agree) at registration
// and password change. It returns a
// *domain.ValidationError on field "/password" so the HTTP adapter answers
// 422 with a message the user can act on.
func CheckPassword(pw string) error {
	v := &domain.ValidationError{}
	switch n := utf8.RuneCountInString(pw); {
	case n < MinPasswordLen:
		v.Add("/password", "password must be at least %d characters long (got %d)", MinPasswordLen, n)
	case n > MaxPasswordLen:
		v.Add("/password", "password must be at most %d characters long (got %d)", MaxPasswordLen, n)
	}
	return v.Err()
}

// encodePHC renders the canonical PHC string for an Argon2id hash.
func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		phcVersion, p.Memory, p.Iterations, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// parsePHC strictly parses an Argon2id PHC string as written by encodePHC:
// exactly one spelling per hash (fixed parameter order, no leading zeros, no
// padding, no optional fields) and every value within the bounds of
// Params.validate, so hostile input can neither panic argon2.IDKey nor make
// it arbitrarily expensive.
func parsePHC(s string) (p Params, salt, key []byte, err error) {
	fail := func(format string, args ...any) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, fmt.Sprintf(format, args...))
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return fail("want 5 '$'-separated fields")
	}
	if parts[1] != "argon2id" {
		return fail("unsupported algorithm")
	}
	if parts[2] != "v="+strconv.Itoa(phcVersion) {
		return fail("unsupported version")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return fail("want parameters m,t,p")
	}
	var vals [3]uint64
	for i, name := range [3]string{"m", "t", "p"} {
		num, found := strings.CutPrefix(kv[i], name+"=")
		if !found {
			return fail("want parameter %q at position %d", name, i+1)
		}
		n, ok := parseDecimal(num)
		if !ok {
			return fail("parameter %q is not a canonical decimal", name)
		}
		vals[i] = n
	}
	if vals[0] > maxMemory || vals[1] > maxIterations || vals[2] > maxLanes {
		return fail("parameters out of range")
	}
	salt, err = b64.DecodeString(parts[4])
	if err != nil {
		return fail("salt: %v", err)
	}
	key, err = b64.DecodeString(parts[5])
	if err != nil {
		return fail("hash: %v", err)
	}
	p = Params{
		Memory:      uint32(vals[0]),
		Iterations:  uint32(vals[1]),
		Parallelism: uint8(vals[2]),
		SaltLen:     uint32(len(salt)),
		KeyLen:      uint32(len(key)),
	}
	if err := p.validate(); err != nil {
		return fail("%v", err)
	}
	return p, salt, key, nil
}

// parseDecimal accepts only the PHC decimal form: ASCII digits, no sign, no
// leading zero, at most 10 digits (so it cannot overflow).
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
