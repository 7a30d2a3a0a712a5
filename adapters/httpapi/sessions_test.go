package httpapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/auth"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/projections/users"
)

// The session tests run the real stack below the router (commands, the
// PostgreSQL session store, JWTs and the revocation view) against real
// PostgreSQL; only the read side stays a fake.

var (
	jwtKey         = []byte("session-tests-session-tests-key!")
	cheapPasswords = auth.Hasher{Params: auth.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}}
)

const (
	adaEmail    = "ada@example.com"
	adaPassword = "correct horse battery"
	jwtIssuer   = "biosync"
	jwtAudience = "biosync-api"
)

// cluster is PostgreSQL plus the shared token key: what server instances
// of one deployment have in common.
type cluster struct {
	t      *testing.T
	pool   *pgxpool.Pool
	dsn    string
	tokens *auth.Tokens
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	ctx := context.Background()
	dsn := testbackend.Postgres(t)
	if err := postgres.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(ctx, dsn, 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tokens, err := auth.NewTokens(jwtKey, jwtIssuer, jwtAudience, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, pool: pool, dsn: dsn, tokens: tokens}
}

// instance is one server process: its own command handlers, revocation
// view and router.
type instance struct {
	*harness
	cmd  *commands.Handlers
	revs *postgres.Revocations
}

// instance builds a server on the cluster. live starts its revocation feed
// and waits until the view is loaded; otherwise the view stays not live
// (as while its feed is down) and checks PostgreSQL per request.
func (c *cluster) instance(pool *pgxpool.Pool, live bool) *instance {
	t := c.t
	t.Helper()
	revs := postgres.NewRevocations(pool, c.tokens.TTL+auth.Leeway+time.Minute, nil)
	sessions := postgres.NewSessions(pool)
	sessions.OnRevoke = revs.Committed
	cmd := &commands.Handlers{
		Accounts: postgres.NewAccounts(pool), Passwords: cheapPasswords, Tokens: c.tokens, Sessions: sessions,
		EmailIndexKey: []byte("index-key"), CheckPassword: auth.CheckPassword,
	}
	verifier := auth.Verifier{Tokens: c.tokens, Revocations: revs}
	h := newHarness(t, func(_ *Config, d *Deps) {
		d.Accounts, d.Sessions, d.Tokens, d.Roles = cmd, cmd, verifier, verifier
		d.Now = time.Now
	})
	h.queries.me = func(_ context.Context, id uuid.UUID) (users.UserView, error) {
		return users.UserView{ID: id, Email: adaEmail, Timezone: "UTC", CreatedAt: time.Now().UTC().Truncate(time.Second)}, nil
	}
	if live {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = revs.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		deadline := time.Now().Add(5 * time.Second)
		for !revs.Live() {
			if time.Now().After(deadline) {
				t.Fatal("revocation view did not go live")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return &instance{harness: h, cmd: cmd, revs: revs}
}

// account registers Ada directly in the command-side table.
func (c *cluster) account(email string) uuid.UUID {
	c.t.Helper()
	ctx := context.Background()
	hash, err := cheapPasswords.Hash(adaPassword)
	if err != nil {
		c.t.Fatal(err)
	}
	id := uuid.New()
	accounts := postgres.NewAccounts(c.pool)
	key := (&commands.Handlers{EmailIndexKey: []byte("index-key")}).EmailKey(email)
	if err := accounts.Claim(ctx, commands.Account{UserID: id, EmailKey: key, PasswordHash: hash}); err != nil {
		c.t.Fatal(err)
	}
	if err := accounts.Complete(ctx, id); err != nil {
		c.t.Fatal(err)
	}
	return id
}

type pair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

func decodePair(t *testing.T, rec *httptest.ResponseRecorder) pair {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var p pair
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.AccessToken == "" || p.RefreshToken == "" || p.TokenType != "Bearer" || p.ExpiresIn != 900 {
		t.Fatalf("incomplete token pair %s", rec.Body)
	}
	return p
}

func (in *instance) login(t *testing.T, userAgent string) pair {
	t.Helper()
	r := req(http.MethodPost, "/v1/auth/login", `{"email":"`+adaEmail+`","password":"`+adaPassword+`"}`, "User-Agent", userAgent)
	return decodePair(t, in.do(r))
}

func (in *instance) refresh(tok string) *httptest.ResponseRecorder {
	return in.do(req(http.MethodPost, "/v1/auth/refresh", `{"refresh_token":"`+tok+`"}`))
}

func (in *instance) me(tok string) int {
	return in.do(req(http.MethodGet, "/v1/me", nil, bearer(tok)...)).Code
}

// sameProblem checks two 401 answers are indistinguishable apart from the
// request id: an attacker learns nothing from which one they got.
func sameProblem(t *testing.T, a, b *httptest.ResponseRecorder) {
	t.Helper()
	var pa, pb problem
	_ = json.Unmarshal(a.Body.Bytes(), &pa)
	_ = json.Unmarshal(b.Body.Bytes(), &pb)
	pa.RequestID, pb.RequestID = "", ""
	if a.Code != b.Code || pa.Type != pb.Type || pa.Title != pb.Title || pa.Detail != pb.Detail {
		t.Fatalf("answers differ (an oracle):\n%d %s\n%d %s", a.Code, a.Body, b.Code, b.Body)
	}
}

func TestRefreshRotatesAndAReplayRevokesTheSessionWithOneAnswerForEveryBadToken(t *testing.T) {
	c := newCluster(t)
	c.account(adaEmail)
	a := c.instance(c.pool, true)
	first := a.login(t, "Firefox")
	second := decodePair(t, a.refresh(first.RefreshToken))
	if second.RefreshToken == first.RefreshToken {
		t.Fatal("refresh token not rotated")
	}
	if a.me(second.AccessToken) != http.StatusOK {
		t.Fatal("refreshed access token refused")
	}

	reuse := a.refresh(first.RefreshToken)
	problemOf(t, reuse, 401, "invalid-refresh-token")
	// Reuse ended the session: its newest refresh token and its access
	// tokens are dead too.
	afterReuse := a.refresh(second.RefreshToken)
	unknown := a.refresh("bm90LWEtcmVhbC10b2tlbi1ub3QtYS1yZWFsLXRva2Vu")
	for _, other := range []*httptest.ResponseRecorder{afterReuse, unknown} {
		sameProblem(t, reuse, other)
	}
	if code := a.me(second.AccessToken); code != http.StatusUnauthorized {
		t.Fatalf("access token of a session revoked for reuse = %d, want 401", code)
	}
}

func TestTwoConcurrentRefreshesOverHTTPGiveExactlyOneNewPair(t *testing.T) {
	c := newCluster(t)
	c.account(adaEmail)
	a, b := c.instance(c.pool, true), c.instance(c.pool, true)
	p := a.login(t, "")
	codes := make([]int, 2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, in := range []*instance{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rec := httptest.NewRecorder()
			in.e.ServeHTTP(rec, req(http.MethodPost, "/v1/auth/refresh", `{"refresh_token":"`+p.RefreshToken+`"}`))
			codes[i] = rec.Code
		}()
	}
	close(start)
	wg.Wait()
	if !(codes[0] == 200 && codes[1] == 401 || codes[0] == 401 && codes[1] == 200) {
		t.Fatalf("concurrent refreshes answered %v, want one 200 and one 401", codes)
	}
}

// TestLogoutOnOneInstanceRejectsTheTokenOnTheOther: two server instances
// (two revocation views) share PostgreSQL; a session ended on one is
// refused by the other on the next request.
func TestLogoutOnOneInstanceRejectsTheTokenOnTheOther(t *testing.T) {
	c := newCluster(t)
	c.account(adaEmail)
	a, b := c.instance(c.pool, true), c.instance(c.pool, true)
	phone, laptop := a.login(t, "Phone"), a.login(t, "Laptop")
	if b.me(phone.AccessToken) != 200 || b.me(laptop.AccessToken) != 200 {
		t.Fatal("valid tokens refused by the other instance")
	}

	// Logout ends this session only.
	if rec := a.do(req(http.MethodPost, "/v1/auth/logout", nil, bearer(phone.AccessToken)...)); rec.Code != http.StatusNoContent {
		t.Fatalf("logout = %d %s", rec.Code, rec.Body)
	}
	if code := a.me(phone.AccessToken); code != 401 {
		t.Fatalf("instance a after its own logout = %d", code)
	}
	rejectedAtOnce(t, b, phone.AccessToken)
	if b.me(laptop.AccessToken) != 200 {
		t.Fatal("logout ended another session")
	}
	problemOf(t, b.refresh(phone.RefreshToken), 401, "invalid-refresh-token")

	// Logout-all on b ends every session; a refuses them.
	tablet := b.login(t, "Tablet")
	if rec := b.do(req(http.MethodPost, "/v1/auth/logout-all", nil, bearer(laptop.AccessToken)...)); rec.Code != http.StatusNoContent {
		t.Fatalf("logout-all = %d %s", rec.Code, rec.Body)
	}
	rejectedAtOnce(t, a, laptop.AccessToken)
	rejectedAtOnce(t, a, tablet.AccessToken)

	// A password change on a ends every session; b refuses them.
	desk := b.login(t, "Desk")
	rec := a.do(req(http.MethodPost, "/v1/me/password", `{"current_password":"`+adaPassword+`","new_password":"another fine passphrase"}`, bearer(desk.AccessToken)...))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("password change = %d %s", rec.Code, rec.Body)
	}
	rejectedAtOnce(t, b, desk.AccessToken)
	problemOf(t, b.refresh(desk.RefreshToken), 401, "invalid-refresh-token")
}

// rejectedAtOnce asserts in.me answers 401 for tok on the very next
// request: the revoking request answers only after every listening
// instance acknowledged the revocation.
func rejectedAtOnce(t *testing.T, in *instance, tok string) {
	t.Helper()
	if code := in.me(tok); code != http.StatusUnauthorized {
		t.Fatalf("the other instance answered %d for the token of a revoked session, want 401", code)
	}
}

func TestAnInstanceWhoseFeedIsDownChecksPostgreSQLAndFailsClosed(t *testing.T) {
	c := newCluster(t)
	c.account(adaEmail)
	a := c.instance(c.pool, true)
	ownPool, err := postgres.Open(context.Background(), c.dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	deaf := c.instance(ownPool, false) // never subscribed: not live
	p, q := a.login(t, ""), a.login(t, "")
	if deaf.me(p.AccessToken) != 200 {
		t.Fatal("valid token refused")
	}
	a.do(req(http.MethodPost, "/v1/auth/logout", nil, bearer(p.AccessToken)...))
	if code := deaf.me(p.AccessToken); code != 401 {
		t.Fatalf("not-live instance accepted a revoked session's token: %d", code)
	}
	ownPool.Close() // and now PostgreSQL is unreachable for it too
	rec := deaf.do(req(http.MethodGet, "/v1/me", nil, bearer(q.AccessToken)...))
	problemOf(t, rec, 503, "unavailable")
}

func TestTheSessionListShowsLiveSessionsAndMarksTheCurrentOne(t *testing.T) {
	c := newCluster(t)
	c.account(adaEmail)
	a := c.instance(c.pool, true)
	phone := a.login(t, "Phone/1.0")
	laptop := a.login(t, "Laptop/2.0 "+strings.Repeat("x", 1000))
	gone := a.login(t, "Gone")
	a.do(req(http.MethodPost, "/v1/auth/logout", nil, bearer(gone.AccessToken)...))

	rec := a.do(req(http.MethodGet, "/v1/auth/sessions", nil, bearer(laptop.AccessToken)...))
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var list struct {
		Sessions []struct {
			ID         uuid.UUID `json:"id"`
			UserAgent  string    `json:"user_agent"`
			IP         string    `json:"ip"`
			Current    bool      `json:"current"`
			CreatedAt  time.Time `json:"created_at"`
			LastUsedAt time.Time `json:"last_used_at"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Sessions) != 2 {
		t.Fatalf("want the 2 live sessions: %s", rec.Body)
	}
	laptopClaims, _ := c.tokens.Verify(laptop.AccessToken)
	phoneClaims, _ := c.tokens.Verify(phone.AccessToken)
	for _, s := range list.Sessions {
		switch s.ID {
		case laptopClaims.SessionID:
			if !s.Current || !strings.HasPrefix(s.UserAgent, "Laptop/2.0") || len(s.UserAgent) > 256 {
				t.Fatalf("laptop session %+v", s)
			}
		case phoneClaims.SessionID:
			if s.Current || s.UserAgent != "Phone/1.0" {
				t.Fatalf("phone session %+v", s)
			}
		default:
			t.Fatalf("unexpected session %+v", s)
		}
		if s.IP == "" || s.CreatedAt.IsZero() || s.LastUsedAt.IsZero() {
			t.Fatalf("session %+v", s)
		}
	}
}

func TestPasswordChangeOverHTTPNamesTheFieldThatIsWrong(t *testing.T) {
	c := newCluster(t)
	c.account(adaEmail)
	a := c.instance(c.pool, true)
	p := a.login(t, "")
	pw := func(body string) *httptest.ResponseRecorder {
		return a.do(req(http.MethodPost, "/v1/me/password", body, bearer(p.AccessToken)...))
	}
	hasField(t, problemOf(t, pw(`{"current_password":"wrong","new_password":"another fine passphrase"}`), 422, "validation"), "/current_password")
	hasField(t, problemOf(t, pw(`{"current_password":"`+adaPassword+`","new_password":"short"}`), 422, "validation"), "/new_password")
	hasField(t, problemOf(t, pw(`{"current_password":"`+adaPassword+`","new_password":"another fine passphrase","role":"admin"}`), 422, "validation"), "/role")
	if a.me(p.AccessToken) != 200 {
		t.Fatal("a refused password change ended the session")
	}
	if rec := pw(`{"current_password":"` + adaPassword + `","new_password":"another fine passphrase"}`); rec.Code != 204 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if a.me(p.AccessToken) != 401 {
		t.Fatal("the session that changed the password is still live")
	}
	problemOf(t, a.do(req(http.MethodPost, "/v1/auth/login", `{"email":"`+adaEmail+`","password":"`+adaPassword+`"}`)), 401, "invalid-credentials")
}

// TestJWTNegativeTable sends forged, tampered and revoked tokens through
// the real router and verifier: every one is a 401 problem with a bearer
// challenge, while the control token passes.
func TestJWTNegativeTable(t *testing.T) {
	c := newCluster(t)
	user := c.account(adaEmail)
	a := c.instance(c.pool, true)
	live := a.login(t, "")
	claims, err := c.tokens.Verify(live.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	revoked := a.login(t, "")
	a.do(req(http.MethodPost, "/v1/auth/logout", nil, bearer(revoked.AccessToken)...))

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	now := time.Now()
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": jwtIssuer, "aud": jwtAudience, "sub": user.String(), "sid": claims.SessionID.String(),
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": "x", "role": "user",
		}
	}
	with := func(k string, v any) jwt.MapClaims {
		m := valid()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	forge := func(m jwt.SigningMethod, key any, typ string, cl jwt.MapClaims) string {
		tok := jwt.NewWithClaims(m, cl)
		tok.Header["typ"] = typ
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	if code := a.me(forge(jwt.SigningMethodHS256, jwtKey, "at+jwt", valid())); code != 200 {
		t.Fatalf("control token (forged with the real key) = %d; the table would prove nothing", code)
	}
	cases := map[string]string{
		"alg none":                          forge(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "at+jwt", valid()),
		"wrong key":                         forge(jwt.SigningMethodHS256, []byte("some-other-32-byte-secret-key!!!"), "at+jwt", valid()),
		"RS256":                             forge(jwt.SigningMethodRS256, rsaKey, "at+jwt", valid()),
		"ES256":                             forge(jwt.SigningMethodES256, ecKey, "at+jwt", valid()),
		"HS256 keyed with a public key PEM": forge(jwt.SigningMethodHS256, rsaPubPEM, "at+jwt", valid()),
		"wrong iss":                         forge(jwt.SigningMethodHS256, jwtKey, "at+jwt", with("iss", "https://evil.example")),
		"wrong aud":                         forge(jwt.SigningMethodHS256, jwtKey, "at+jwt", with("aud", "another-api")),
		"typ JWT":                           forge(jwt.SigningMethodHS256, jwtKey, "JWT", valid()),
		"expired beyond the skew":           forge(jwt.SigningMethodHS256, jwtKey, "at+jwt", with("exp", now.Add(-auth.Leeway-30*time.Second).Unix())),
		"nbf in the future":                 forge(jwt.SigningMethodHS256, jwtKey, "at+jwt", with("nbf", now.Add(auth.Leeway+time.Minute).Unix())),
		"no session (sid)":                  forge(jwt.SigningMethodHS256, jwtKey, "at+jwt", with("sid", nil)),
		"refresh token as access token":     live.RefreshToken,
		"revoked session's token":           revoked.AccessToken,
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			rec := a.do(req(http.MethodGet, "/v1/me", nil, bearer(tok)...))
			problemOf(t, rec, 401, "unauthorized")
			if !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
	if a.me(live.AccessToken) != 200 {
		t.Fatal("the live session's token stopped working")
	}
}
