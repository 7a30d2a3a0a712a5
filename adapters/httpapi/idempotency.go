package httpapi

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// Header names of the Idempotency-Key protocol (IETF httpapi draft "The
// Idempotency-Key HTTP Header Field").
const (
	// HeaderIdempotencyKey names a command request so a retry of it has
	// its effect at most once.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderIdempotentReplayed marks a response replayed from the store
	// (the same status, body and headers as the original answer).
	HeaderIdempotentReplayed = "Idempotent-Replayed"
)

// idempotentExtension declares how an operation treats Idempotency-Key:
// `true` (responses stored and replayed; without the store the request is
// refused with 503 rather than risk running the command twice),
// `event-id` (the same, but the command also derives its event id from the
// key, so without the store it runs: a repeat is recognised downstream),
// or `false` (exempt; only for operations whose response carries
// credentials that must never be stored). Every POST must declare it
// (TestEveryCommandPostDeclaresIdempotency).
const idempotentExtension = "x-biosync-idempotent"

// idemMode is the parsed x-biosync-idempotent of a route.
type idemMode int

const (
	idemNone    idemMode = iota // exempt or not declared
	idemStored                  // true
	idemEventID                 // event-id
)

// parseIdempotent reads x-biosync-idempotent; declared tells the route
// table test whether the operation made a choice at all.
func parseIdempotent(op *openapi3.Operation) (mode idemMode, declared bool, err error) {
	v, ok := op.Extensions[idempotentExtension]
	if !ok {
		return idemNone, false, nil
	}
	switch v {
	case true:
		return idemStored, true, nil
	case false:
		return idemNone, true, nil
	case "event-id":
		return idemEventID, true, nil
	}
	return idemNone, true, fmt.Errorf("unknown %s %v (want true, false or event-id)", idempotentExtension, v)
}

// Problem kinds of the Idempotency-Key protocol (titles as in the draft).
var (
	kindIdempotencyInFlight = edge.Kind{Status: http.StatusConflict, Slug: "idempotency-key-in-flight", Title: "A request is outstanding for this Idempotency-Key"}
)

// storedHeaders are the response headers replayed with a stored response:
// the ones that carry the command's result. Per-request headers
// (X-Request-Id, security headers, CORS) are set afresh.
var storedHeaders = []string{echo.HeaderContentType, echo.HeaderLocation, "ETag", edge.HeaderConsistencyToken}

// storedResponse is what the store keeps for one key, sealed (see
// responseSealer).
type storedResponse struct {
	Status int                 `json:"status"`
	Header map[string][]string `json:"header,omitempty"`
	Body   string              `json:"body,omitempty"`
}

// responseSealPurpose labels the key stored responses are sealed under,
// derived from the fingerprint key (a key of its own: fingerprints are
// stored beside the responses, so they must not open them).
const responseSealPurpose = "biosync stored response seal v1"

// sealedResponseMark starts a sealed record; a record stored as plain JSON
// (before responses were sealed, at most one TTL ago) starts with '{'.
const sealedResponseMark = 0x01

// responseSealer seals one request's stored response. Its key is
// HMAC-SHA256, under a server key, of the request as the fingerprint sees
// it (method, path with query, body): only a retry of the very same
// request, credentials in the body included, can derive it, so Redis holds
// no response readable without both the server key and that request (a
// stored registration holds the address). The record's store key is the
// associated data: a record moved to another key does not open.
type responseSealer struct {
	aead     cipher.AEAD
	storeKey string
}

// newResponseSealer derives the sealer of one request.
func newResponseSealer(serverKey []byte, req *http.Request, body []byte, storeKey string) (responseSealer, error) {
	base := hmac.New(sha256.New, serverKey)
	base.Write([]byte(responseSealPurpose))
	h := hmac.New(sha256.New, base.Sum(nil))
	fmt.Fprintf(h, "%s\n%s\n", req.Method, req.URL.RequestURI())
	h.Write(body)
	block, err := aes.NewCipher(h.Sum(nil))
	if err != nil {
		return responseSealer{}, err
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return responseSealer{}, err
	}
	return responseSealer{aead: a, storeKey: storeKey}, nil
}

// seal encrypts a stored response record (random nonce).
func (r responseSealer) seal(record []byte) ([]byte, error) {
	n := r.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(record)+r.aead.Overhead())
	out[0] = sealedResponseMark
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return r.aead.Seal(out, out[1:], record, []byte(r.storeKey)), nil
}

// open decrypts a record sealed by seal. A plain JSON record, stored
// before responses were sealed, is returned as it is, so retries across an
// upgrade still replay; once the last of them has expired (one TTL after
// the upgrade) that branch only serves records someone wrote into Redis
// by hand.
func (r responseSealer) open(stored []byte) ([]byte, error) {
	if len(stored) > 0 && stored[0] == '{' {
		return stored, nil
	}
	n := r.aead.NonceSize()
	if len(stored) < 1+n || stored[0] != sealedResponseMark {
		return nil, errors.New("not a sealed response")
	}
	return r.aead.Open(nil, stored[1:1+n], stored[1+n:], []byte(r.storeKey))
}

// storable: only outcomes of the command itself are replayed. A 5xx (or a
// client that went away) may have done nothing, so the client may retry
// and run the command again.
func storable(status int) bool {
	switch {
	case status >= 200 && status < 300:
		return true
	case status == edge.StatusClientClosedRequest, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return false
	}
	return status >= 400 && status < 500
}

// validIdempotencyKey accepts 1-255 visible ASCII characters (a UUID, or a
// structured-field string in quotes as the draft writes it; the key is
// compared as sent).
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// idempotencyScope keeps keys of different callers apart: the token's user
// on bearer routes; on anonymous routes with an address (register, reset)
// the keyed hash of that address, else one namespace per operation. The
// fingerprint covers the body, which holds the credentials, so a stranger
// who reuses a key gets 422, never the original's response; a client IP
// would be a worse scope because a phone that retries after switching
// networks has a new one. Both scopes name the account in the Redis key,
// so an erasure finds and deletes the stored responses (a stored
// registration holds the address).
func (s *server) idempotencyScope(c echo.Context, r *route) string {
	if k := s.accountKey(c); k != "" {
		return k
	}
	return "anon:" + r.opID
}

// idempotency implements Idempotency-Key on the operations that declare
// it. It runs last, after authentication and validation, so a request the
// API rejects before the command runs is never stored. Without the header
// the request runs as usual.
func (s *server) idempotency(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := routeOf(c)
		if r == nil || r.idem == idemNone {
			return next(c)
		}
		req := c.Request()
		key := req.Header.Get(HeaderIdempotencyKey)
		if key == "" {
			return next(c)
		}
		if !validIdempotencyKey(key) {
			return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: HeaderIdempotencyKey, Detail: "must be 1 to 255 visible ASCII characters, e.g. a UUID"}}}
		}
		ctx := req.Context()
		sum := sha256.Sum256([]byte(key))
		storeKey := s.idempotencyScope(c, r) + ":" + hex.EncodeToString(sum[:])
		fp := fingerprint(s.deps.Edge.FingerprintKey, req, edge.Body(c))
		sealer, err := newResponseSealer(s.deps.Edge.FingerprintKey, req, edge.Body(c), storeKey)
		if err != nil {
			return err
		}

		var claim commands.Claim
		err = errNoIdempotencyStore
		if s.deps.Edge.Idempotency != nil {
			claim, err = s.deps.Edge.Idempotency.Claim(ctx, storeKey, fp)
		}
		if err != nil {
			if r.idem == idemEventID {
				// The command derives its event id from the key: a repeat
				// is recognised by the log's consumers, so availability wins.
				s.log.LogAttrs(ctx, slog.LevelWarn, "idempotency store unavailable; running a key-derived command without it",
					slog.String("request_id", edge.CorrelationID(ctx)), slog.String("route", r.path), slog.String("error", err.Error()))
				return next(c)
			}
			return &edge.Error{Kind: edge.KindUnavailable, Detail: "the Idempotency-Key store is unavailable; nothing was done, retry later",
				Header: http.Header{"Retry-After": {edge.RetryAfterSeconds}}, Cause: err}
		}
		reused := &edge.Error{Kind: edge.KindIdempotencyReused, Detail: "this Idempotency-Key was used for a different request; send a new key",
			Fields: []domain.FieldProblem{{Field: HeaderIdempotencyKey, Detail: "already used with another method, path or body"}}}
		switch claim.State {
		case commands.InFlight:
			if claim.Fingerprint != fp {
				return reused
			}
			return &edge.Error{Kind: kindIdempotencyInFlight, Detail: "the first request with this Idempotency-Key is still running; retry shortly",
				Fields: []domain.FieldProblem{{Field: HeaderIdempotencyKey, Detail: "a request with this key is in progress"}},
				Header: http.Header{"Retry-After": {"1"}}}
		case commands.Completed:
			if claim.Fingerprint != fp {
				return reused
			}
			return s.replay(c, sealer, claim.Response)
		}
		return s.runOnce(c, next, storeKey, sealer, claim)
	}
}

// errNoIdempotencyStore stands for a store that is not configured: the
// same as one that is down.
var errNoIdempotencyStore = fmt.Errorf("no idempotency store configured: %w", domain.ErrUnavailable)

// fingerprint identifies the request a key was first used for: method,
// path with query, and the body, under HMAC-SHA256 with a server key. Keyed,
// because bodies hold passwords and the fingerprint is stored in Redis for
// a day: a plain hash would let anyone who reads Redis test password
// guesses at SHA-256 speed.
func fingerprint(key []byte, req *http.Request, body []byte) string {
	h := hmac.New(sha256.New, key)
	fmt.Fprintf(h, "%s\n%s\n", req.Method, req.URL.RequestURI())
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// runOnce runs the command holding the claim, records the response as it
// is written, and stores it (or frees the key for a retry).
func (s *server) runOnce(c echo.Context, next echo.HandlerFunc, storeKey string, sealer responseSealer, claim commands.Claim) (err error) {
	ctx := c.Request().Context()
	resp := c.Response()
	tee := &teeWriter{ResponseWriter: resp.Writer}
	resp.Writer = tee
	// Storing must not depend on the client still waiting.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	done := false
	defer func() {
		resp.Writer = tee.ResponseWriter
		if !done { // a panic: free the key, the retry runs again
			_ = s.deps.Edge.Idempotency.Release(bg, storeKey, claim)
		}
	}()
	herr := next(c)
	if herr != nil {
		s.writeError(c, herr) // written here so the problem is recorded too
	}
	done = true
	status := resp.Status
	// A command that found the key already used (its durable record knew
	// the key after this store forgot it) answered for another request:
	// storing that answer under this request's fingerprint would refuse
	// the key's true retries.
	var he *edge.Error
	keyTaken := errors.As(herr, &he) && he.Kind == edge.KindIdempotencyReused
	if !resp.Committed || !storable(status) || keyTaken {
		if rerr := s.deps.Edge.Idempotency.Release(bg, storeKey, claim); rerr != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "idempotency key not released", slog.String("request_id", edge.CorrelationID(ctx)), slog.String("error", rerr.Error()))
		}
		return nil
	}
	rec := storedResponse{Status: status, Header: map[string][]string{}, Body: string(tee.body)}
	for _, h := range storedHeaders {
		if v := resp.Header().Values(h); len(v) > 0 {
			rec.Header[h] = v
		}
	}
	b, merr := json.Marshal(rec)
	if merr == nil {
		b, merr = sealer.seal(b)
	}
	if merr == nil {
		merr = s.deps.Edge.Idempotency.Complete(bg, storeKey, claim, b)
	}
	if merr != nil {
		// The command ran and the client has its answer; a retry within
		// the lock's lifetime gets 409, later it runs again.
		s.log.LogAttrs(ctx, slog.LevelWarn, "idempotent response not stored", slog.String("request_id", edge.CorrelationID(ctx)), slog.String("error", merr.Error()))
	}
	return nil
}

// replay answers with a stored response.
func (s *server) replay(c echo.Context, sealer responseSealer, stored []byte) error {
	record, err := sealer.open(stored)
	if err != nil {
		return fmt.Errorf("httpapi: stored idempotent response does not open: %w", err)
	}
	var rec storedResponse
	if err := json.Unmarshal(record, &rec); err != nil {
		return fmt.Errorf("httpapi: stored idempotent response unreadable: %w", err)
	}
	h := c.Response().Header()
	for k, vs := range rec.Header {
		h.Del(k)
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	h.Set(HeaderIdempotentReplayed, "true")
	c.Response().WriteHeader(rec.Status)
	_, err = c.Response().Write([]byte(rec.Body))
	return err
}

// teeWriter keeps a copy of the body written through it.
type teeWriter struct {
	http.ResponseWriter
	body []byte
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.body = append(w.body, p...)
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
