package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/accounts"
	"github.com/biosync/biosync/adapters/httpapi/admin"
	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/adapters/httpapi/ingest"
	"github.com/biosync/biosync/adapters/httpapi/queries"
	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	bredis "github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/biosync/biosync/projections/users"
)

// Fakes of the ports: function fields, nil means "must not be called".

type fakeAccounts struct {
	register     func(context.Context, commands.RegisterUser) (commands.Registered, error)
	login        func(context.Context, commands.Login) (commands.Session, error)
	registration func(context.Context, uuid.UUID) (eventstore.Token, error)
}

func (f *fakeAccounts) Register(ctx context.Context, cmd commands.RegisterUser) (commands.Registered, error) {
	if f.register == nil {
		return commands.Registered{}, errors.New("unexpected Register call")
	}
	return f.register(ctx, cmd)
}

func (f *fakeAccounts) Login(ctx context.Context, cmd commands.Login) (commands.Session, error) {
	if f.login == nil {
		return commands.Session{}, errors.New("unexpected Login call")
	}
	return f.login(ctx, cmd)
}

func (f *fakeAccounts) Registration(ctx context.Context, id uuid.UUID) (eventstore.Token, error) {
	if f.registration == nil {
		return nil, errors.New("unexpected Registration call")
	}
	return f.registration(ctx, id)
}

// The rest of the Accounts and Sessions ports: the harness serves both
// with one fake, and these must not be called.

func (f *fakeAccounts) ChangePassword(context.Context, commands.ChangePassword) error {
	return errors.New("unexpected ChangePassword call")
}

func (f *fakeAccounts) Refresh(context.Context, commands.Refresh) (commands.Session, error) {
	return commands.Session{}, errors.New("unexpected Refresh call")
}

func (f *fakeAccounts) Logout(context.Context, uuid.UUID, uuid.UUID) error {
	return errors.New("unexpected Logout call")
}

func (f *fakeAccounts) LogoutAll(context.Context, uuid.UUID, string) error {
	return errors.New("unexpected LogoutAll call")
}

func (f *fakeAccounts) ListSessions(context.Context, uuid.UUID, uuid.UUID) ([]commands.SessionInfo, error) {
	return nil, errors.New("unexpected ListSessions call")
}

type fakeIngestor struct {
	mu    sync.Mutex
	calls []commands.PushSamples
	push  func(context.Context, commands.PushSamples) (commands.Accepted, error)
}

func (f *fakeIngestor) Push(ctx context.Context, cmd commands.PushSamples) (commands.Accepted, error) {
	f.mu.Lock()
	f.calls = append(f.calls, cmd)
	f.mu.Unlock()
	if f.push == nil {
		return commands.Accepted{}, errors.New("unexpected Push call")
	}
	return f.push(ctx, cmd)
}

func (f *fakeIngestor) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// fakeDeleter counts its calls so tests can show refused deletions reach
// no port.
type fakeDeleter struct {
	mu     sync.Mutex
	calls  []commands.DeleteSamples
	delete func(context.Context, commands.DeleteSamples) (commands.Accepted, error)
}

func (f *fakeDeleter) DeleteSamples(ctx context.Context, cmd commands.DeleteSamples) (commands.Accepted, error) {
	f.mu.Lock()
	f.calls = append(f.calls, cmd)
	f.mu.Unlock()
	if f.delete == nil {
		return commands.Accepted{}, errors.New("unexpected DeleteSamples call")
	}
	return f.delete(ctx, cmd)
}

func (f *fakeDeleter) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

type fakeQueries struct {
	me        func(context.Context, uuid.UUID) (users.UserView, error)
	metrics   func(context.Context, metrics.MetricQuery) (metrics.MetricSeries, error)
	sleep     func(context.Context, metrics.SleepQuery) (metrics.SleepPage, error)
	nights    func(context.Context, metrics.NightsQuery) (metrics.NightsPage, error)
	dashboard func(context.Context, uuid.UUID, eventstore.Token) (metrics.Dashboard, error)
	waitFor   func(context.Context, eventstore.Token, ...string) error
}

func (f *fakeQueries) Me(ctx context.Context, id uuid.UUID) (users.UserView, error) {
	if f.me == nil {
		return users.UserView{}, errors.New("unexpected Me call")
	}
	return f.me(ctx, id)
}

func (f *fakeQueries) Metrics(ctx context.Context, q metrics.MetricQuery) (metrics.MetricSeries, error) {
	if f.metrics == nil {
		return metrics.MetricSeries{}, errors.New("unexpected Metrics call")
	}
	return f.metrics(ctx, q)
}

func (f *fakeQueries) SleepSessions(ctx context.Context, q metrics.SleepQuery) (metrics.SleepPage, error) {
	if f.sleep == nil {
		return metrics.SleepPage{}, errors.New("unexpected SleepSessions call")
	}
	return f.sleep(ctx, q)
}

func (f *fakeQueries) Nights(ctx context.Context, q metrics.NightsQuery) (metrics.NightsPage, error) {
	if f.nights == nil {
		return metrics.NightsPage{}, errors.New("unexpected Nights call")
	}
	return f.nights(ctx, q)
}

func (f *fakeQueries) Dashboard(ctx context.Context, id uuid.UUID, tok eventstore.Token) (metrics.Dashboard, error) {
	if f.dashboard == nil {
		return metrics.Dashboard{}, errors.New("unexpected Dashboard call")
	}
	return f.dashboard(ctx, id, tok)
}

func (f *fakeQueries) WaitFor(ctx context.Context, tok eventstore.Token, models ...string) error {
	if f.waitFor == nil {
		return errors.New("unexpected WaitFor call")
	}
	return f.waitFor(ctx, tok, models...)
}

// fakeTokens knows two users, so tests can show reads are scoped, and one
// administrator (root) for the admin routes.
type fakeTokens struct{}

var (
	alice = uuid.MustParse("0b0c8d5e-8f1a-4e63-9d7c-1a2b3c4d5e6f")
	bob   = uuid.MustParse("7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d")
	root  = uuid.MustParse("5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a")
)

const (
	aliceToken = "token-alice"
	bobToken   = "token-bob"
	rootToken  = "token-root"
	// rootPwdToken is root's token of a session opened without MFA.
	rootPwdToken = "token-root-pwd"
)

// VerifyAccess gives each user one session, derived from the user id.
func (fakeTokens) VerifyAccess(tok string) (uuid.UUID, uuid.UUID, error) {
	id, _, _, err := fakeTokens{}.VerifyRole(tok)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	return id, sessionOf(id), nil
}

// sessionOf is the session of a fake token's user.
func sessionOf(user uuid.UUID) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, user[:]) }

// VerifyRole gives alice and bob the user role and root the admin role;
// root's rootToken session was opened with MFA, its rootPwdToken one not.
func (fakeTokens) VerifyRole(tok string) (uuid.UUID, string, bool, error) {
	switch tok {
	case aliceToken:
		return alice, "user", false, nil
	case bobToken:
		return bob, "user", false, nil
	case rootToken:
		return root, RoleAdmin, true, nil
	case rootPwdToken:
		return root, RoleAdmin, false, nil
	}
	return uuid.Nil, "", false, domain.ErrUnauthorized
}

// fakeAdmin counts its calls so tests can show refused requests reach no
// port.
type fakeAdmin struct {
	mu          sync.Mutex
	calls       int
	projections func(context.Context) ([]engine.Status, error)
	rebuild     func(context.Context, string, bool) (engine.Version, error)
	rollback    func(context.Context, string) (engine.Version, error)
	drop        func(context.Context, string, int) error
	deadLetters func(context.Context, string) ([]engine.DeadLetter, error)
	retry       func(context.Context, string, uuid.UUID) (int64, error)
	skip        func(context.Context, uuid.UUID) (engine.DeadLetter, error)
}

func (f *fakeAdmin) called() {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
}

func (f *fakeAdmin) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeAdmin) Projections(ctx context.Context) ([]engine.Status, error) {
	f.called()
	if f.projections == nil {
		return nil, errors.New("unexpected Projections call")
	}
	return f.projections(ctx)
}

func (f *fakeAdmin) Rebuild(ctx context.Context, name string, promote bool) (engine.Version, error) {
	f.called()
	if f.rebuild == nil {
		return engine.Version{}, errors.New("unexpected Rebuild call")
	}
	return f.rebuild(ctx, name, promote)
}

func (f *fakeAdmin) Rollback(ctx context.Context, name string) (engine.Version, error) {
	f.called()
	if f.rollback == nil {
		return engine.Version{}, errors.New("unexpected Rollback call")
	}
	return f.rollback(ctx, name)
}

func (f *fakeAdmin) Drop(ctx context.Context, name string, gen int) error {
	f.called()
	if f.drop == nil {
		return errors.New("unexpected Drop call")
	}
	return f.drop(ctx, name, gen)
}

func (f *fakeAdmin) DeadLetters(ctx context.Context, projector string) ([]engine.DeadLetter, error) {
	f.called()
	if f.deadLetters == nil {
		return nil, errors.New("unexpected DeadLetters call")
	}
	return f.deadLetters(ctx, projector)
}

func (f *fakeAdmin) RetryDeadLetters(ctx context.Context, projector string, user uuid.UUID) (int64, error) {
	f.called()
	if f.retry == nil {
		return 0, errors.New("unexpected RetryDeadLetters call")
	}
	return f.retry(ctx, projector, user)
}

func (f *fakeAdmin) SkipDeadLetter(ctx context.Context, id uuid.UUID) (engine.DeadLetter, error) {
	f.called()
	if f.skip == nil {
		return engine.DeadLetter{}, errors.New("unexpected SkipDeadLetter call")
	}
	return f.skip(ctx, id)
}

// Webhook secrets: during rotation both are live.
var (
	oldKey   = []byte("old-secret-old-secret-old-secret")
	newKey   = []byte("new-secret-new-secret-new-secret")
	wrongKey = []byte("not-a-live-secret-not-a-live-sec")
	testNow  = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
)

type harness struct {
	t        *testing.T
	e        *echo.Echo
	accounts *fakeAccounts
	ingestor *fakeIngestor
	deleter  *fakeDeleter
	queries  *fakeQueries
	admin    *fakeAdmin
	registry *prometheus.Registry
	logs     *bytes.Buffer
	routes   map[string]*route
	spec     *openapi3.T
	// redisPrefix isolates this harness's idempotency keys and rate
	// counters in a shared (real) Redis.
	redisPrefix string
	// redis is that Redis, for tests that look at what is stored.
	redis *goredis.Client
}

type option func(*Config, *Deps)

func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	h := &harness{
		t:        t,
		accounts: &fakeAccounts{},
		ingestor: &fakeIngestor{},
		deleter:  &fakeDeleter{},
		queries:  &fakeQueries{},
		admin:    &fakeAdmin{},
		registry: prometheus.NewRegistry(),
		logs:     &bytes.Buffer{},
	}
	cfg := Config{ConsistencyWait: 200 * time.Millisecond}
	deps := Deps{
		Accounts: accounts.Deps{Accounts: h.accounts, Sessions: h.accounts},
		Ingest:   ingest.Deps{Ingestor: h.ingestor, Deleter: h.deleter},
		Queries:  queries.Deps{Reader: h.queries, Registrations: h.accounts, Now: func() time.Time { return testNow }, CursorKey: testCursorKey},
		Admin:    admin.Deps{ReadModels: h.admin},
		Edge: EdgeDeps{
			Tokens:      fakeTokens{},
			Roles:       fakeTokens{},
			Webhooks:    webhooks.Verifier{Keys: [][]byte{oldKey, newKey}, Now: func() time.Time { return testNow }},
			Consistency: h.queries,
		},
		Ops: OpsDeps{
			Logger:   slog.New(slog.NewJSONHandler(&syncWriter{w: h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Registry: h.registry,
		},
	}
	rc, err := bredis.Open(testbackend.Redis(t))
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	h.redisPrefix = testbackend.UniqueName(t, "httpapi") + ":"
	h.redis = rc
	deps.Edge.Idempotency = bredis.Idempotency{C: rc, Prefix: h.redisPrefix}
	deps.Edge.FingerprintKey = []byte("the test fingerprint key, 32+ bytes long")
	deps.Edge.Limiter = bredis.NewLimiter(rc, h.redisPrefix)
	deps.Edge.EmailKey = testEmailKey
	for _, o := range opts {
		o(&cfg, &deps)
	}
	e, err := New(cfg, deps)
	require.NoError(t, err)
	h.e = e
	if h.spec, err = gen.GetSpec(); err != nil {
		require.NoError(t, err)
	}
	if h.routes, err = buildRoutes(h.spec); err != nil {
		require.NoError(t, err)
	}
	return h
}

// minimalDeps are the required ports only (fakes that must not be
// called), changed by each of change.
func minimalDeps(change ...func(*Deps)) Deps {
	q := &fakeQueries{}
	d := Deps{
		Accounts: accounts.Deps{Accounts: &fakeAccounts{}},
		Ingest:   ingest.Deps{Ingestor: &fakeIngestor{}},
		Queries:  queries.Deps{Reader: q, Registrations: &fakeAccounts{}, CursorKey: testCursorKey},
		Edge:     EdgeDeps{Tokens: fakeTokens{}, Consistency: q},
	}
	for _, c := range change {
		c(&d)
	}
	return d
}

// testCursorKey signs the page cursors of the servers tests build.
var testCursorKey = []byte("the test page cursor key, 32+ bytes long")

// testEmailKey stands in for commands.EmailIndex.Key: a keyed hash of
// the normalized address.
func testEmailKey(email string) []byte {
	m := hmac.New(sha256.New, []byte("test-email-index-key"))
	m.Write([]byte(strings.ToLower(strings.TrimSpace(email))))
	return m.Sum(nil)
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// req builds a request; body may be nil, a string or []byte.
func req(method, target string, body any, headers ...string) *http.Request {
	var r io.Reader
	switch b := body.(type) {
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	}
	rq := httptest.NewRequest(method, target, r)
	if body != nil {
		rq.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		rq.Header.Set(headers[i], headers[i+1])
	}
	return rq
}

// do serves r and checks what must hold for every response: errors are
// problem+json documents whose status matches, and every response of a spec
// operation matches the spec (status documented, body schema, headers).
func (h *harness) do(r *http.Request) *httptest.ResponseRecorder {
	h.t.Helper()
	var reqBody []byte
	if r.Body != nil {
		reqBody, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	rec := httptest.NewRecorder()
	h.e.ServeHTTP(rec, r)

	if rec.Code >= 400 && r.URL.Path != "/readyz" { // /readyz answers 503 with its own document
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			assert.Fail(h.t, fmt.Sprintf("%s %s: status %d with Content-Type %q, want application/problem+json", r.Method, r.URL.Path, rec.Code, ct))
		}
		var p edge.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			assert.Fail(h.t, fmt.Sprintf("problem body does not decode: %v: %s", err, rec.Body))
		}
		assert.Falsef(h.t, p.Status != rec.Code || !strings.HasPrefix(p.Type, edge.ProblemTypePrefix) || p.Title == "" || p.RequestID == "", "incomplete problem: %+v", p)
	}
	assert.Falsef(h.t, rec.Header().Get(HeaderRequestID) == "", "no %s on the response", HeaderRequestID)
	h.validateResponse(r, reqBody, rec)
	return rec
}

func (h *harness) validateResponse(r *http.Request, reqBody []byte, rec *httptest.ResponseRecorder) {
	h.t.Helper()
	c := h.e.NewContext(r.Clone(context.Background()), httptest.NewRecorder())
	h.e.Router().Find(r.Method, r.URL.Path, c)
	rt, ok := h.routes[r.Method+" "+c.Path()]
	if !ok {
		return
	}
	params := map[string]string{}
	for i, n := range c.ParamNames() {
		params[n] = c.ParamValues()[i]
	}
	rq := r.Clone(context.Background())
	rq.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: rq, PathParams: params, Route: rt.kin},
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		assert.Fail(h.t, fmt.Sprintf("%s %s -> %d does not match the spec: %v\nbody: %s", r.Method, r.URL.Path, rec.Code, err, rec.Body))
	}
}

// problemOf decodes a problem response and checks status and type.
func problemOf(t *testing.T, rec *httptest.ResponseRecorder, status int, slug string) edge.Problem {
	t.Helper()
	require.Falsef(t, rec.Code != status, "status %d, want %d; body %s", rec.Code, status, rec.Body)
	var p edge.Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	require.Falsef(t, p.Type != edge.ProblemTypePrefix+slug, "problem type %q, want %q; %s", p.Type, edge.ProblemTypePrefix+slug, rec.Body)
	return p
}

// hasField checks that a problem names field.
func hasField(t *testing.T, p edge.Problem, field string) {
	t.Helper()
	for _, f := range p.Errors {
		if f.Field == field {
			return
		}
	}
	require.FailNow(t, fmt.Sprintf("problem does not name %q: %+v", field, p.Errors))
}

func specBytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../schemas/openapi.yaml")
	require.NoError(t, err)
	return b
}
