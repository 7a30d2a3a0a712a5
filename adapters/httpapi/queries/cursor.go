package queries

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/domain"
)

// Page sizes of the paged reads when the request names no limit
// (documented in the spec; the maxima are metrics.MaxRawPage and
// metrics.MaxSleepPage, which the spec's `maximum` repeats).
const (
	DefaultRawPage   = 10_000
	DefaultSleepPage = 500
)

// MaxCursorLength bounds a `cursor` before it is decoded; a longer value
// cannot be one of ours (the longest source name makes about 1,100
// characters).
const MaxCursorLength = 2048

// cursorVersion leads every cursor, so a later format can be told apart
// (and an old one refused with a 400 the client recovers from).
const cursorVersion = 1

// Kinds of cursor: which paged read a cursor continues. A cursor of one
// kind is refused by the other read (422, another query).
const (
	kindRawSeries byte = 'r'
	kindSleepList byte = 's'
)

// Layout of a cursor before base64url: version, kind, the two instants of
// the position (Unix microseconds, as PostgreSQL keeps them), the query
// scope, the source, then the MAC over everything before it.
const (
	cursorHead   = 1 + 1 + 8 + 8 + scopeLen
	scopeLen     = 8
	cursorMACLen = 16
)

// position is where a page ends, and the next one starts after: two
// instants and a source, the read model's natural key in read order
// (start, end, source for raw samples; end, start, source for sleep).
type position struct {
	a, b   time.Time
	source string
}

// scope names the query a cursor continues: kind, caller, metric type and
// range. A cursor sent with any other query is refused, so a client cannot
// carry a position from one series into another.
type scope [scopeLen]byte

// queryScope digests what a paged read is bound to. The MAC covers it, so
// 64 bits are plenty: a wrong query passes only by a chance collision.
func queryScope(kind byte, user uuid.UUID, metricType string, from, to time.Time) scope {
	h := sha256.New()
	var b [8 + 4 + 8 + 4]byte
	h.Write([]byte{kind})
	h.Write(user[:])
	binary.BigEndian.PutUint32(b[:4], uint32(len(metricType)))
	h.Write(b[:4])
	h.Write([]byte(metricType))
	// The instants exactly (seconds and nanoseconds), never their offsets:
	// the same range written in another zone is the same query.
	binary.BigEndian.PutUint64(b[0:], uint64(from.Unix()))
	binary.BigEndian.PutUint32(b[8:], uint32(from.Nanosecond()))
	binary.BigEndian.PutUint64(b[12:], uint64(to.Unix()))
	binary.BigEndian.PutUint32(b[20:], uint32(to.Nanosecond()))
	h.Write(b[:])
	var s scope
	copy(s[:], h.Sum(nil))
	return s
}

// cursors signs and checks page cursors. The key is shared by every
// instance (derived from the master key), so a next page may be read from
// any of them.
type cursors struct {
	key []byte
}

// encode makes the opaque cursor that continues the query of scope after
// pos: base64url without padding, signed with HMAC-SHA256 (128 bits), so
// it is tamper-evident and only this API can issue one.
func (k cursors) encode(kind byte, s scope, pos position) string {
	buf := make([]byte, cursorHead, cursorHead+len(pos.source)+cursorMACLen)
	buf[0], buf[1] = cursorVersion, kind
	binary.BigEndian.PutUint64(buf[2:], uint64(pos.a.UnixMicro()))
	binary.BigEndian.PutUint64(buf[10:], uint64(pos.b.UnixMicro()))
	copy(buf[18:], s[:])
	buf = append(buf, pos.source...)
	buf = append(buf, k.mac(buf)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// decode returns the position of a cursor issued for kind and scope: a
// *domain.MalformedError (400) naming /cursor when the value is not an
// unaltered cursor of this API, a *domain.ValidationError (422) naming
// /cursor when it is one but continues another query.
func (k cursors) decode(raw string, kind byte, s scope) (position, error) {
	notOurs := &domain.MalformedError{Field: "/cursor", Detail: "not a page cursor from this API (follow next as it is, or start again from the first page)"}
	if len(raw) > MaxCursorLength {
		return position{}, notOurs
	}
	buf, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(buf) < cursorHead+cursorMACLen {
		return position{}, notOurs
	}
	body, sig := buf[:len(buf)-cursorMACLen], buf[len(buf)-cursorMACLen:]
	if !hmac.Equal(sig, k.mac(body)) || body[0] != cursorVersion {
		return position{}, notOurs
	}
	if body[1] != kind || scope(body[18:cursorHead]) != s {
		return position{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/cursor",
			Detail: "this cursor continues another query (caller, endpoint, type, bucket, from or to differ); start again from the first page"}}}
	}
	return position{
		a:      time.UnixMicro(int64(binary.BigEndian.Uint64(body[2:]))).UTC(),
		b:      time.UnixMicro(int64(binary.BigEndian.Uint64(body[10:]))).UTC(),
		source: string(body[cursorHead:]),
	}, nil
}

func (k cursors) mac(b []byte) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write(b)
	return m.Sum(nil)[:cursorMACLen]
}
