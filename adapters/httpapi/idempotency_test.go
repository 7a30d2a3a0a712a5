package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	bredis "github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/projections/engine"
)

// idempotencyExempt are the only POSTs allowed to declare
// `x-biosync-idempotent: false`, each with the reason.
var idempotencyExempt = map[string]string{
	opLogin:          "its answer is an access token; credentials are never stored, and a repeated login has no effect to deduplicate",
	opPushWebhook:    "Standard Webhooks: webhook-id is the delivery's idempotency key (the event id derives from it)",
	"refreshSession": "its answer is a new token pair, which must never be stored; a repeated refresh is a reuse by design (RFC 9700)",
	// MFA: answers that carry secrets are never stored in Redis.
	"startTotpEnrolment":   "its answer is the TOTP secret; a repeat replaces the pending secret, which is harmless",
	"confirmTotpEnrolment": "its answer is the recovery codes; a repeat finds MFA on (409) and changes nothing",
	"renewRecoveryCodes":   "its answer is the new recovery codes; a repeat needs a fresh code and issues another set, voiding this one",
	// Provider connections.
	"startConnection": "its answer is a fresh single-use state; a repeat starts another authorization, which is harmless (the unused one expires)",
	"syncConnection":  "a repeat asks for the same sync again, which is harmless; the per-user rate limit bounds it",
	opProviderWebhook: "the provider's own identity of the delivery derives the event id, so a redelivery is the same event",
}

// TestEveryCommandPostDeclaresIdempotency walks the route table: every
// POST declares x-biosync-idempotent, so a new command route cannot ship
// without deciding; the exemptions are the listed ones; a marked operation
// documents the protocol's answers and returns no credentials (its
// response is stored in Redis).
func TestEveryCommandPostDeclaresIdempotency(t *testing.T) {
	h := newHarness(t)
	for _, r := range h.routes {
		if r.method != http.MethodPost {
			continue
		}
		if !r.idemDeclared {
			assert.Fail(t, fmt.Sprintf("%s %s (%s) does not declare %s: true, event-id, or false (exempt)", r.method, r.path, r.opID, idempotentExtension))
			continue
		}
		_, exempt := idempotencyExempt[r.opID]
		assert.Falsef(t, (r.idem == idemNone) != exempt, "%s %s: %s is %v, but the exemption list says exempt=%v", r.method, r.path, idempotentExtension, r.idem != idemNone, exempt)
		if r.idem == idemNone {
			continue
		}
		op := r.kin.Operation
		for _, code := range []string{"409", "422", "503"} {
			assert.Falsef(t, op.Responses.Value(code) == nil, "%s %s takes Idempotency-Key but does not document %s", r.method, r.path, code)
		}
		for code, resp := range op.Responses.Map() {
			if !strings.HasPrefix(code, "2") || resp.Value == nil {
				continue
			}
			for _, mt := range resp.Value.Content {
				if name := credentialProperty(mt.Schema, 0); name != "" {
					assert.Fail(t, fmt.Sprintf("%s %s: its %s response holds %q; a stored response must not carry credentials (declare the operation exempt)", r.method, r.path, code, name))
				}
			}
		}
	}
}

// credentialProperty finds a property that looks like a credential.
func credentialProperty(ref *openapi3.SchemaRef, depth int) string {
	if ref == nil || ref.Value == nil || depth > 8 {
		return ""
	}
	for name, p := range ref.Value.Properties {
		n := strings.ToLower(name)
		if strings.Contains(n, "token") || strings.Contains(n, "secret") || strings.Contains(n, "password") || strings.Contains(n, "recovery_code") {
			return name
		}
		if found := credentialProperty(p, depth+1); found != "" {
			return found
		}
	}
	return credentialProperty(ref.Value.Items, depth+1)
}

// countRegistrations makes register succeed and counts its calls.
func countRegistrations(h *harness) *int {
	var mu sync.Mutex
	n := new(int)
	h.accounts.register = func(_ context.Context, cmd commands.RegisterUser) (commands.Registered, error) {
		mu.Lock()
		*n++
		mu.Unlock()
		return commands.Registered{UserID: uuid.New(), Email: cmd.Email, Timezone: cmd.Timezone, Token: acceptedToken}, nil
	}
	return n
}

func TestARetryWithTheSameKeyGetsTheStoredResponseAndRunsOnce(t *testing.T) {
	h := newHarness(t)
	calls := countRegistrations(h)
	key := []string{HeaderIdempotencyKey, "7f0b3c1e-5d2a-4f8e-9b6c-1a2b3c4d5e6f"}
	first := h.do(req(http.MethodPost, "/v1/auth/register", registerBody, key...))
	require.Falsef(t, first.Code != http.StatusCreated || first.Header().Get(HeaderIdempotentReplayed) != "", "first: %d %v %s", first.Code, first.Header(), first.Body)
	again := h.do(req(http.MethodPost, "/v1/auth/register", registerBody, key...))
	require.Falsef(t, *calls != 1, "the command ran %d times", *calls)
	require.Falsef(t, again.Code != first.Code || again.Body.String() != first.Body.String(), "replay %d %s, original %d %s", again.Code, again.Body, first.Code, first.Body)
	for _, hdr := range []string{"Location", edge.HeaderConsistencyToken, "Content-Type"} {
		assert.Falsef(t, again.Header().Get(hdr) == "" || again.Header().Get(hdr) != first.Header().Get(hdr), "replayed %s = %q, original %q", hdr, again.Header().Get(hdr), first.Header().Get(hdr))
	}
	require.Falsef(t, again.Header().Get(HeaderIdempotentReplayed) != "true", "replay not marked: %v", again.Header())
	require.False(t, again.Header().Get(HeaderRequestID) == first.Header().Get(HeaderRequestID), "the replay must carry its own request id")
}

func TestTheSameKeyWithADifferentRequestGets422NamingTheHeader(t *testing.T) {
	h := newHarness(t)
	calls := countRegistrations(h)
	key := []string{HeaderIdempotencyKey, "k-1"}
	h.do(req(http.MethodPost, "/v1/auth/register", registerBody, key...))
	other := strings.Replace(registerBody, "Asia/Tokyo", "Europe/Berlin", 1)
	p := problemOf(t, h.do(req(http.MethodPost, "/v1/auth/register", other, key...)), 422, "idempotency-key-reused")
	hasField(t, p, HeaderIdempotencyKey)
	require.Falsef(t, *calls != 1, "the command ran %d times", *calls)
}

func TestAKeyWhoseFirstRequestIsStillRunningGets409(t *testing.T) {
	h := newHarness(t)
	entered, release := make(chan struct{}), make(chan struct{})
	h.ingestor.push = func(_ context.Context, cmd commands.PushSamples) (commands.Accepted, error) {
		entered <- struct{}{}
		<-release
		return commands.Accepted{EventID: uuid.New(), Token: acceptedToken}, nil
	}
	send := func() *httptest.ResponseRecorder {
		return h.do(req(http.MethodPost, "/v1/me/samples", appBody, append(bearer(aliceToken), HeaderIdempotencyKey, "slow-1")...))
	}
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- send() }()
	<-entered
	rec := send()
	p := problemOf(t, rec, 409, "idempotency-key-in-flight")
	hasField(t, p, HeaderIdempotencyKey)
	require.False(t, rec.Header().Get("Retry-After") == "", "409 without Retry-After")
	close(release)
	first := <-done
	require.Falsef(t, first.Code != http.StatusAccepted, "first: %d %s", first.Code, first.Body)
	if again := send(); again.Code != http.StatusAccepted || again.Header().Get(HeaderIdempotentReplayed) != "true" || again.Body.String() != first.Body.String() {
		require.FailNow(t, fmt.Sprintf("after completion: %d %v %s", again.Code, again.Header(), again.Body))
	}
	if n := h.ingestor.count(); n != 1 {
		require.FailNow(t, fmt.Sprintf("the command ran %d times", n))
	}
}

func TestIdempotencyKeysAreScopedToTheCaller(t *testing.T) {
	h := newHarness(t)
	acceptAll(h)
	for _, tok := range []string{aliceToken, bobToken} {
		rec := h.do(req(http.MethodPost, "/v1/me/samples", appBody, append(bearer(tok), HeaderIdempotencyKey, "shared-key")...))
		require.Falsef(t, rec.Code != http.StatusAccepted || rec.Header().Get(HeaderIdempotentReplayed) != "", "%s: %d %v", tok, rec.Code, rec.Header())
	}
	if n := h.ingestor.count(); n != 2 {
		require.FailNow(t, fmt.Sprintf("two users with one key ran %d commands, want 2", n))
	}
	// The generic layer sits in front of the command's own key-derived
	// event id: the key still reaches the command as the delivery id.
	for _, c := range h.ingestor.calls {
		require.Falsef(t, c.DeliveryID != "shared-key", "delivery id %q", c.DeliveryID)
	}
}

func TestCommandOutcomesAreStoredButServerErrorsAreNot(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var errs []error
	calls := 0
	h.accounts.register = func(context.Context, commands.RegisterUser) (commands.Registered, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		err := errs[0]
		errs = errs[1:]
		return commands.Registered{}, err
	}
	errs = []error{domain.ErrUnavailable, domain.ErrConflict, nil}
	key := []string{HeaderIdempotencyKey, "outcomes"}
	problemOf(t, h.do(req(http.MethodPost, "/v1/auth/register", registerBody, key...)), 503, "unavailable")
	// 5xx was not stored: the retry runs the command, which now decides 409.
	first := h.do(req(http.MethodPost, "/v1/auth/register", registerBody, key...))
	problemOf(t, first, 409, "conflict")
	// The 409 is the command's answer: it is replayed, not recomputed.
	again := h.do(req(http.MethodPost, "/v1/auth/register", registerBody, key...))
	problemOf(t, again, 409, "conflict")
	require.Falsef(t, again.Header().Get(HeaderIdempotentReplayed) != "true" || calls != 2, "replayed=%q calls=%d", again.Header().Get(HeaderIdempotentReplayed), calls)
}

func TestRequestsRejectedBeforeTheCommandDoNotUseTheKey(t *testing.T) {
	h := newHarness(t)
	calls := countRegistrations(h)
	key := []string{HeaderIdempotencyKey, "fix-and-retry"}
	bad := strings.Replace(registerBody, `"timezone"`, `"role":"admin","timezone"`, 1)
	problemOf(t, h.do(req(http.MethodPost, "/v1/auth/register", bad, key...)), 422, "validation")
	// The same key with the corrected body is not "reused": nothing ran.
	if rec := h.do(req(http.MethodPost, "/v1/auth/register", registerBody, key...)); rec.Code != http.StatusCreated || *calls != 1 {
		require.FailNow(t, fmt.Sprintf("%d %s calls=%d", rec.Code, rec.Body, *calls))
	}
}

func TestAMalformedIdempotencyKeyIs422(t *testing.T) {
	h := newHarness(t)
	for _, k := range []string{"has space", strings.Repeat("k", 256), "ümlaut"} {
		p := problemOf(t, h.do(req(http.MethodPost, "/v1/auth/register", registerBody, HeaderIdempotencyKey, k)), 422, "validation")
		hasField(t, p, HeaderIdempotencyKey)
	}
}

// downRedis is a client of a port nobody listens on: every command fails
// at once, like a Redis that is down.
func downRedis(t *testing.T) *goredis.Client {
	t.Helper()
	ln := httptest.NewUnstartedServer(nil).Listener // reserve, then free a port
	addr := ln.Addr().String()
	ln.Close()
	c, err := bredis.Open("redis://" + addr + "/0")
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestWithoutTheKeyStoreOnlyKeyDerivedCommandsRun: while Redis is down a
// command whose event id derives from the key (POST /v1/me/samples) still
// runs (a repeat is recognised downstream); any other keyed command gets
// 503 and does not run, rather than risk running twice. Without a key the
// request does not need the store.
func TestWithoutTheKeyStoreOnlyKeyDerivedCommandsRun(t *testing.T) {
	h := newHarness(t, func(_ *Config, d *Deps) { d.Edge.Idempotency = bredis.Idempotency{C: downRedis(t)} })
	acceptAll(h)
	calls := countRegistrations(h)
	rec := h.do(req(http.MethodPost, "/v1/auth/register", registerBody, HeaderIdempotencyKey, "k"))
	problemOf(t, rec, 503, "unavailable")
	require.Falsef(t, rec.Header().Get("Retry-After") == "" || *calls != 0, "Retry-After %q, command ran %d times", rec.Header().Get("Retry-After"), *calls)
	if rec := h.do(req(http.MethodPost, "/v1/auth/register", registerBody)); rec.Code != http.StatusCreated {
		require.FailNow(t, fmt.Sprintf("without a key: %d %s", rec.Code, rec.Body))
	}
	rec = h.do(req(http.MethodPost, "/v1/me/samples", appBody, append(bearer(aliceToken), HeaderIdempotencyKey, "k")...))
	require.Falsef(t, rec.Code != http.StatusAccepted || h.ingestor.calls[0].DeliveryID != "k", "key-derived push: %d %s", rec.Code, rec.Body)
	require.False(t, !strings.Contains(h.logs.String(), "idempotency store unavailable"), "running without the store is not logged")
}

func TestAdminCommandsTakeIdempotencyKeys(t *testing.T) {
	h := newHarness(t)
	var n int
	h.admin.retry = func(context.Context, string, uuid.UUID) (int64, error) { n++; return 3, nil }
	for range 2 {
		rec := h.do(req(http.MethodPost, "/v1/admin/dead-letters/retry", `{"projector":"metrics"}`, append(bearer(rootToken), HeaderIdempotencyKey, "ops-1")...))
		require.Falsef(t, rec.Code != http.StatusAccepted, "%d %s", rec.Code, rec.Body)
	}
	require.Falsef(t, n != 1, "retry ran %d times", n)
}

// TestAPanickingCommandFreesItsKey: a 500 (here a panic) stores nothing
// and leaves no lock behind, so the client's retry runs at once.
func TestAPanickingCommandFreesItsKey(t *testing.T) {
	h := newHarness(t)
	var n int
	h.admin.skip = func(context.Context, uuid.UUID) (engine.DeadLetter, error) {
		n++
		if n == 1 {
			panic("boom")
		}
		return engine.DeadLetter{EventID: uuid.MustParse("3f0e7a1c-2b4d-4c6e-8f9a-0b1c2d3e4f5a"), Projector: "metrics", State: "skipped"}, nil
	}
	send := func() *httptest.ResponseRecorder {
		return h.do(req(http.MethodPost, "/v1/admin/dead-letters/3f0e7a1c-2b4d-4c6e-8f9a-0b1c2d3e4f5a/skip", nil, append(bearer(rootToken), HeaderIdempotencyKey, "p-1")...))
	}
	problemOf(t, send(), 500, "internal")
	if rec := send(); rec.Code != http.StatusOK || rec.Header().Get(HeaderIdempotentReplayed) != "" || n != 2 {
		require.FailNow(t, fmt.Sprintf("retry after a panic: %d %s (calls %d)", rec.Code, rec.Body, n))
	}
}

// storedRecords returns this harness's stored Idempotency-Key records by
// Redis key.
func (h *harness) storedRecords() map[string]string {
	h.t.Helper()
	ctx := context.Background()
	keys, err := h.redis.Keys(ctx, h.redisPrefix+"idem:v1:*").Result()
	require.NoError(h.t, err)
	out := map[string]string{}
	for _, k := range keys {
		out[k] = h.redis.Get(ctx, k).Val()
	}
	return out
}

// A stored registration answer holds the address: Redis keeps the response
// sealed under a key that only a retry of the very same request (password
// included) derives with the server key, and the retry still gets the
// original answer.
func TestAStoredResponseIsSealedAndOnlyItsOwnRequestOpensIt(t *testing.T) {
	h := newHarness(t)
	calls := countRegistrations(h)
	first := h.do(req(http.MethodPost, "/v1/auth/register", registerBody, HeaderIdempotencyKey, "reg-1"))
	require.Equal(t, http.StatusCreated, first.Code, "register: %s", first.Body)
	require.Contains(t, first.Body.String(), "ada@example.org", "the answer carries the address")

	records := h.storedRecords()
	require.Len(t, records, 1, "stored records")
	var storeKey, record string
	for k, v := range records {
		storeKey, record = k, v
	}
	assert.NotContains(t, record, "ada@example.org", "Redis holds the address in plain text")
	assert.NotContains(t, record, "Asia/Tokyo", "Redis holds the timezone in plain text")
	assert.NotContains(t, record, `"status"`, "Redis holds the stored response in plain text")

	again := h.do(req(http.MethodPost, "/v1/auth/register", registerBody, HeaderIdempotencyKey, "reg-1"))
	assert.Equal(t, http.StatusCreated, again.Code)
	assert.Equal(t, first.Body.String(), again.Body.String(), "the replayed answer")
	assert.Equal(t, "true", again.Header().Get(HeaderIdempotentReplayed))
	assert.Equal(t, 1, *calls, "the command ran again")

	// The record copied under another key of the same caller: the request
	// matches its fingerprint, yet the record does not open there.
	sum := sha256.Sum256([]byte("reg-2"))
	moved := storeKey[:strings.LastIndex(storeKey, ":")+1] + hex.EncodeToString(sum[:])
	require.NoError(t, h.redis.Set(context.Background(), moved, record, time.Minute).Err())
	other := h.do(req(http.MethodPost, "/v1/auth/register", registerBody, HeaderIdempotencyKey, "reg-2"))
	assert.Equal(t, 1, *calls, "the command ran again")
	assert.Equal(t, http.StatusInternalServerError, other.Code, "a record moved to another key: %s", other.Body)
	assert.NotContains(t, other.Body.String(), "ada@example.org", "a record moved to another key opened")
}

// Responses stored as plain JSON before responses were sealed (at most one
// TTL before an upgrade) still replay.
func TestAResponseStoredInPlainTextBeforeSealingStillReplays(t *testing.T) {
	h := newHarness(t)
	calls := countRegistrations(h)
	first := h.do(req(http.MethodPost, "/v1/auth/register", registerBody, HeaderIdempotencyKey, "reg-old"))
	require.Equal(t, http.StatusCreated, first.Code)
	const before = `{"id":"0b7c2c9e-2f8e-4a39-9f62-8f3c4c3f7a10","email":"ada@example.org","timezone":"UTC"}`
	plain, err := json.Marshal(storedResponse{Status: http.StatusCreated, Header: map[string][]string{"Content-Type": {"application/json"}}, Body: before})
	require.NoError(t, err)
	for k, v := range h.storedRecords() {
		fp, _, ok := strings.Cut(v[1:], " ")
		require.True(t, ok, "record %q", v)
		require.NoError(t, h.redis.Set(context.Background(), k, "D"+fp+" "+string(plain), time.Minute).Err())
	}
	again := h.do(req(http.MethodPost, "/v1/auth/register", registerBody, HeaderIdempotencyKey, "reg-old"))
	assert.Equal(t, http.StatusCreated, again.Code)
	assert.JSONEq(t, before, again.Body.String())
	assert.Equal(t, 1, *calls, "the command ran again")
}
