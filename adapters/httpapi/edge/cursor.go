package edge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/url"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/domain"
)

// MaxCursorLength bounds a `cursor` before it is decoded; a longer value
// cannot be one of ours (the longest source name makes about 1,100
// characters).
const MaxCursorLength = 2048

// cursorVersion leads every cursor, so a later format can be told apart
// (and an old one refused with a 400 the client recovers from).
const cursorVersion = 1

// CursorKind names which paged read a cursor continues; each paged read
// declares its own (a byte unique in the API). A cursor of one kind is
// refused by every other read (422, another query).
type CursorKind byte

// Layout of a cursor before base64url: version, kind, the two instants of
// the position (Unix microseconds, as PostgreSQL keeps them), the query
// scope, the source, then the MAC over everything before it.
const (
	cursorHead   = 1 + 1 + 8 + 8 + scopeLen
	scopeLen     = 8
	cursorMACLen = 16
)

// Position is where a page ends, and the next one starts after: two
// instants and a string, the read model's natural key in read order
// (start, end, source for raw samples; end, start, source for sleep; day,
// zero, entry id for journal entries). Instants keep microseconds, as
// PostgreSQL does.
type Position struct {
	A, B   time.Time
	Source string
}

// Scope names the query a cursor continues: kind, caller, metric type and
// range. A cursor sent with any other query is refused, so a client cannot
// carry a position from one series into another.
type Scope [scopeLen]byte

// QueryScope digests what a paged read is bound to: its kind, the caller,
// a name within the read (a metric type; "" when none) and the range. The MAC covers it, so
// 64 bits are plenty: a wrong query passes only by a chance collision.
func QueryScope(kind CursorKind, user uuid.UUID, metricType string, from, to time.Time) Scope {
	h := sha256.New()
	var b [8 + 4 + 8 + 4]byte
	h.Write([]byte{byte(kind)})
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
	var s Scope
	copy(s[:], h.Sum(nil))
	return s
}

// Cursors signs and checks page cursors. Key is shared by every instance
// (derived from the master key), so a next page may be read from any of
// them.
type Cursors struct {
	Key []byte
}

// Encode makes the opaque cursor that continues the query of scope after
// pos: base64url without padding, signed with HMAC-SHA256 (128 bits), so
// it is tamper-evident and only this API can issue one.
func (k Cursors) Encode(kind CursorKind, s Scope, pos Position) string {
	buf := make([]byte, cursorHead, cursorHead+len(pos.Source)+cursorMACLen)
	buf[0], buf[1] = cursorVersion, byte(kind)
	binary.BigEndian.PutUint64(buf[2:], uint64(pos.A.UnixMicro()))
	binary.BigEndian.PutUint64(buf[10:], uint64(pos.B.UnixMicro()))
	copy(buf[18:], s[:])
	buf = append(buf, pos.Source...)
	buf = append(buf, k.mac(buf)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Decode returns the position of a cursor issued for kind and scope: a
// *domain.MalformedError (400) naming /cursor when the value is not an
// unaltered cursor of this API, a *domain.ValidationError (422) naming
// /cursor when it is one but continues another query.
func (k Cursors) Decode(raw string, kind CursorKind, s Scope) (Position, error) {
	notOurs := &domain.MalformedError{Field: "/cursor", Detail: "not a page cursor from this API (follow next as it is, or start again from the first page)"}
	if len(raw) > MaxCursorLength {
		return Position{}, notOurs
	}
	buf, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(buf) < cursorHead+cursorMACLen {
		return Position{}, notOurs
	}
	body, sig := buf[:len(buf)-cursorMACLen], buf[len(buf)-cursorMACLen:]
	if !hmac.Equal(sig, k.mac(body)) || body[0] != cursorVersion {
		return Position{}, notOurs
	}
	if body[1] != byte(kind) || Scope(body[18:cursorHead]) != s {
		return Position{}, &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/cursor",
			Detail: "this cursor continues another query (caller, endpoint, type, bucket, from or to differ); start again from the first page"}}}
	}
	return Position{
		A:      time.UnixMicro(int64(binary.BigEndian.Uint64(body[2:]))).UTC(),
		B:      time.UnixMicro(int64(binary.BigEndian.Uint64(body[10:]))).UTC(),
		Source: string(body[cursorHead:]),
	}, nil
}

func (k Cursors) mac(b []byte) []byte {
	m := hmac.New(sha256.New, k.Key)
	m.Write(b)
	return m.Sum(nil)[:cursorMACLen]
}

// NextPage is the URL of the page after this one: this request's path and
// query with the range fixed (fixed holds the parameters to set when the
// request left them to their defaults, which can move, e.g. a `to` of
// "now") and cursor set. It sets the RFC 8288 Link header and returns the
// URL for the body's `next`.
func NextPage(c echo.Context, fixed map[string]string, cursor string) *string {
	q := url.Values{}
	for k, v := range c.QueryParams() {
		q[k] = slices.Clone(v)
	}
	for k, v := range fixed {
		if !q.Has(k) {
			q.Set(k, v)
		}
	}
	q.Set("cursor", cursor)
	next := c.Request().URL.EscapedPath() + "?" + q.Encode()
	c.Response().Header().Set(HeaderLink, "<"+next+`>; rel="next"`)
	return &next
}

// HeaderLink carries the next page's URL (RFC 8288) on paged reads.
const HeaderLink = "Link"
