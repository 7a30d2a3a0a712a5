package eventstore

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Token is a consistency token: the log positions a command's events were
// appended at. Clients treat it as opaque; a query that gets it back waits
// until the projections it reads have passed every position in it.
type Token []Position

// ErrBadToken is returned for a token that does not decode.
var ErrBadToken = errors.New("malformed consistency token")

// String encodes the token as "v1." + base64url("partition:offset,...").
func (t Token) String() string {
	if len(t) == 0 {
		return ""
	}
	parts := make([]string, len(t))
	for i, p := range t {
		parts[i] = strconv.FormatInt(int64(p.Partition), 10) + ":" + strconv.FormatInt(p.Offset, 10)
	}
	return "v1." + base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, ",")))
}

// ParseToken decodes a token from a client; "" is the empty token (no wait).
func ParseToken(s string) (Token, error) {
	if s == "" {
		return nil, nil
	}
	rest, ok := strings.CutPrefix(s, "v1.")
	if !ok || len(s) > 4096 {
		return nil, ErrBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(raw) == 0 {
		return nil, ErrBadToken
	}
	var t Token
	for _, part := range strings.Split(string(raw), ",") {
		ps, os, ok := strings.Cut(part, ":")
		if !ok {
			return nil, ErrBadToken
		}
		p, err1 := strconv.ParseInt(ps, 10, 32)
		o, err2 := strconv.ParseInt(os, 10, 64)
		if err1 != nil || err2 != nil || p < 0 || o < 0 {
			return nil, fmt.Errorf("%w: bad position %q", ErrBadToken, part)
		}
		t = append(t, Position{Partition: int32(p), Offset: o})
	}
	return t.normalize(), nil
}

// Merge combines tokens, keeping the highest offset per partition.
func (t Token) Merge(other Token) Token {
	return append(slices.Clone(t), other...).normalize()
}

func (t Token) normalize() Token {
	best := map[int32]int64{}
	for _, p := range t {
		if o, ok := best[p.Partition]; !ok || p.Offset > o {
			best[p.Partition] = p.Offset
		}
	}
	out := make(Token, 0, len(best))
	for p, o := range best {
		out = append(out, Position{Partition: p, Offset: o})
	}
	slices.SortFunc(out, func(a, b Position) int { return int(a.Partition - b.Partition) })
	return out
}
