package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names defined by the Standard Webhooks specification. They are
// exported so senders, receivers and tests spell them the same way.
const (
	// HeaderID carries the unique delivery id; it stays the same across
	// retries so receivers can use it as an idempotency key.
	HeaderID = "webhook-id"
	// HeaderTimestamp carries the attempt time as integer Unix seconds; it
	// is signed so an old delivery cannot be replayed later.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries one or more space-separated "<version>,<sig>"
	// entries; several entries allow zero-downtime secret rotation.
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a serialised symmetric signing secret so it is
// recognisable in configuration files and secret scanners.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock, in either direction, when Verifier.Tolerance is unset. It
// is the value recommended by the reference implementations.
const DefaultTolerance = 5 * time.Minute

// Key length bounds from the specification ("at least 24 bytes, 512 bits
// maximum"); shorter keys are too weak, longer ones are a configuration
// mistake.
const (
	// MinKeyLen is the shortest decoded key ParseSecret accepts.
	MinKeyLen = 24
	// MaxKeyLen is the longest decoded key ParseSecret accepts.
	MaxKeyLen = 64
)

// newSecretLen is the number of random bytes in secrets made by NewSecret.
const newSecretLen = 32

// signatureVersion is the only signature scheme this package produces and
// checks (HMAC-SHA256); other versions such as "v1a" (ed25519) are ignored.
const signatureVersion = "v1"

// maxTimestampDigits bounds the timestamp header so absurd values are
// rejected as garbled before any arithmetic is done on them.
const maxTimestampDigits = 12

// Sentinel errors returned (wrapped) by ParseSecret and Verifier.Verify. They
// let callers map failures to HTTP statuses and metrics with errors.Is
// without matching on message text.
var (
	// ErrInvalidSecret means a serialised secret is not "whsec_<base64>" or
	// its key length is outside [MinKeyLen, MaxKeyLen].
	ErrInvalidSecret = errors.New("webhooks: invalid secret")
	// ErrMissingHeader means webhook-id, webhook-timestamp or
	// webhook-signature is absent or empty.
	ErrMissingHeader = errors.New("webhooks: missing required header")
	// ErrInvalidID means webhook-id contains a '.', which the specification
	// forbids because it would make the signed content ambiguous.
	ErrInvalidID = errors.New("webhooks: invalid webhook-id")
	// ErrInvalidTimestamp means webhook-timestamp is not a plain decimal
	// count of Unix seconds.
	ErrInvalidTimestamp = errors.New("webhooks: invalid timestamp")
	// ErrTimestampOutOfTolerance means the delivery is older or newer than
	// the verifier's tolerance allows: a replay, or a badly skewed clock.
	ErrTimestampOutOfTolerance = errors.New("webhooks: timestamp outside tolerance")
	// ErrNoMatchingSignature means no v1 signature in webhook-signature
	// matches the body under any configured key.
	ErrNoMatchingSignature = errors.New("webhooks: no matching signature")
)

// ParseSecret decodes a serialised secret of the form "whsec_<base64>" into
// the raw HMAC key. It exists so operators can configure secrets in the
// standard, self-describing format while code works with key bytes.
func ParseSecret(s string) ([]byte, error) {
	enc, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: want prefix %q", ErrInvalidSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: key is not standard base64", ErrInvalidSecret)
	}
	if len(key) < MinKeyLen || len(key) > MaxKeyLen {
		return nil, fmt.Errorf("%w: key is %d bytes, want %d to %d", ErrInvalidSecret, len(key), MinKeyLen, MaxKeyLen)
	}
	return key, nil
}

// NewSecret returns a fresh serialised secret holding 32 random bytes from
// crypto/rand. It exists so the server can provision a push secret on first
// start without the operator having to invent one.
func NewSecret() (string, error) {
	key := make([]byte, newSecretLen)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("webhooks: generating secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// NewMessageID returns a fresh random delivery id of the form "msg_<hex>".
// Senders need a new id per delivery (and the same id on its retries); the id
// never contains '.', as the specification requires.
func NewMessageID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("webhooks: generating message id: %w", err)
	}
	return fmt.Sprintf("msg_%x", b[:]), nil
}

// Sign returns the webhook-signature entry "v1,<base64 HMAC-SHA256>" for a
// delivery, computed over id + "." + Unix seconds of ts + "." + body. It is
// the single definition of the signed content shared by senders and the
// Verifier. The id must not contain '.'.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	return signatureVersion + "," + base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body))
}

// SetHeaders sets webhook-id, webhook-timestamp and webhook-signature on h
// for a delivery signed with key at ts. It saves senders from assembling the
// three headers by hand and getting one of them out of sync.
func SetHeaders(h http.Header, key []byte, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(key, id, ts, body))
}

// mac computes the raw HMAC-SHA256 of the signed content without copying
// the body into a new string.
func mac(key []byte, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	var num [20]byte
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(num[:0], unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Delivery is the verified metadata of a webhook. Receivers use ID for
// de-duplication and Timestamp for logging; both are only meaningful after a
// successful Verify.
type Delivery struct {
	// ID is the webhook-id header: the sender's idempotency key.
	ID string
	// Timestamp is the signed attempt time from webhook-timestamp, in UTC.
	Timestamp time.Time
}

// Verifier checks the Standard Webhooks headers of incoming deliveries. The
// zero value rejects everything (it has no keys); it is a value type so it
// can be shared between goroutines without locking.
type Verifier struct {
	// Keys are the raw HMAC keys currently accepted. During secret rotation
	// both the old and the new key are listed; a delivery verifies if any key
	// matches any of its v1 signatures. Empty keys are ignored.
	Keys [][]byte
	// Tolerance is the largest accepted distance between the delivery
	// timestamp and Now, in either direction. Zero or negative means
	// DefaultTolerance.
	Tolerance time.Duration
	// Now returns the current time; nil means time.Now. Tests set it to pin
	// the clock.
	Now func() time.Time
}

// Verify checks that h carries a fresh, valid signature for body and returns
// the delivery metadata. body must be the raw request bytes exactly as
// received; it is never parsed. Errors wrap ErrMissingHeader, ErrInvalidID,
// ErrInvalidTimestamp, ErrTimestampOutOfTolerance or ErrNoMatchingSignature.
func (v Verifier) Verify(h http.Header, body []byte) (Delivery, error) {
	id := h.Get(HeaderID)
	tsRaw := h.Get(HeaderTimestamp)
	// A proxy may split a long header into several fields; treat them as one
	// space-separated list.
	sigs := strings.Join(h.Values(HeaderSignature), " ")
	switch {
	case id == "":
		return Delivery{}, fmt.Errorf("%w: %s", ErrMissingHeader, HeaderID)
	case tsRaw == "":
		return Delivery{}, fmt.Errorf("%w: %s", ErrMissingHeader, HeaderTimestamp)
	case strings.TrimSpace(sigs) == "":
		return Delivery{}, fmt.Errorf("%w: %s", ErrMissingHeader, HeaderSignature)
	}
	if strings.Contains(id, ".") {
		return Delivery{}, fmt.Errorf("%w: contains '.'", ErrInvalidID)
	}

	unix, err := parseTimestamp(tsRaw)
	if err != nil {
		return Delivery{}, err
	}
	ts := time.Unix(unix, 0).UTC()

	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	if skew := now().Sub(ts); skew > tol || skew < -tol {
		return Delivery{}, fmt.Errorf("%w: timestamp %d is %s from now (tolerance %s)",
			ErrTimestampOutOfTolerance, unix, skew.Round(time.Second), tol)
	}

	expected := make([][]byte, 0, len(v.Keys))
	for _, k := range v.Keys {
		if len(k) == 0 {
			continue
		}
		expected = append(expected, mac(k, id, unix, body))
	}
	if len(expected) == 0 {
		return Delivery{}, fmt.Errorf("%w: verifier has no keys", ErrNoMatchingSignature)
	}

	for _, entry := range strings.Fields(sigs) {
		version, encoded, ok := strings.Cut(entry, ",")
		if !ok || version != signatureVersion {
			continue // unknown versions (e.g. v1a) are skipped, per the spec
		}
		got, err := base64.StdEncoding.Strict().DecodeString(encoded)
		if err != nil || len(got) != sha256.Size {
			continue
		}
		for _, want := range expected {
			if hmac.Equal(got, want) {
				return Delivery{ID: id, Timestamp: ts}, nil
			}
		}
	}
	return Delivery{}, ErrNoMatchingSignature
}

// parseTimestamp accepts only plain decimal digits (no sign, spaces or
// exponent), which is all the specification allows.
func parseTimestamp(s string) (int64, error) {
	if len(s) > maxTimestampDigits {
		return 0, fmt.Errorf("%w: too long", ErrInvalidTimestamp)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q is not decimal Unix seconds", ErrInvalidTimestamp, s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrInvalidTimestamp, s)
	}
	return n, nil
}
