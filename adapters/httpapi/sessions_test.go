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
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/auth"
	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/accounts"
	"github.com/biosync/biosync/commands/sessions"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/eventstore"
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
	require.NoError(t, postgres.Migrate(ctx, dsn))
	pool, err := postgres.Open(ctx, dsn, 10)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	tokens, err := auth.NewTokens(jwtKey, jwtIssuer, jwtAudience, 15*time.Minute)
	require.NoError(t, err)
	return &cluster{t: t, pool: pool, dsn: dsn, tokens: tokens}
}

// instance is one server process: its own command handlers, revocation
// view and router.
type instance struct {
	*harness
	cmd  *sessions.Service
	revs *postgres.Revocations
}

// instance builds a server on the cluster. live starts its revocation feed
// and waits until the view is loaded; otherwise the view stays not live
// (as while its feed is down) and checks PostgreSQL per request.
func (c *cluster) instance(pool *pgxpool.Pool, live bool) *instance {
	t := c.t
	t.Helper()
	revs := postgres.NewRevocations(pool, c.tokens.TTL+auth.Leeway+time.Minute, nil)
	store := postgres.NewSessions(pool)
	store.OnRevoke = revs.Committed
	accts := postgres.NewAccounts(pool)
	cmd, err := sessions.New(sessions.Deps{
		Accounts: accts, Passwords: cheapPasswords, Tokens: c.tokens, Store: store, EmailIndex: testEmailIndex,
	})
	require.NoError(t, err)
	// The password change is an accounts command; it appends nothing, so
	// its log is one that is never reached.
	acc, err := accounts.New(accounts.Deps{
		Log: noLog{}, Accounts: accts, Passwords: cheapPasswords, PasswordPolicy: auth.CheckPassword,
		EmailIndex: testEmailIndex, Credentials: store,
	})
	require.NoError(t, err)
	verifier := auth.Verifier{Tokens: c.tokens, Revocations: revs}
	h := newHarness(t, func(_ *Config, d *Deps) {
		d.Accounts.Accounts, d.Accounts.Sessions, d.Queries.Registrations = acc, cmd, acc
		d.Edge.Tokens, d.Edge.Roles = verifier, verifier
		d.Queries.Now = time.Now
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
			require.False(t, time.Now().After(deadline), "revocation view did not go live")
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
	require.NoError(c.t, err)
	id := uuid.New()
	accounts := postgres.NewAccounts(c.pool)
	key := testEmailIndex.Key(email)
	require.NoError(c.t, accounts.Claim(ctx, commands.Account{UserID: id, EmailKey: key, PasswordHash: hash}))
	require.NoError(c.t, accounts.Complete(ctx, id, nil))
	return id
}

// testEmailIndex keys the email claims of the instances' accounts.
var testEmailIndex = commands.EmailIndex("index-key")

// noLog is an event log that is never reached: the session commands
// append nothing.
type noLog struct{}

func (noLog) Append(context.Context, eventstore.Event) (eventstore.Position, error) {
	return eventstore.Position{}, errors.New("unexpected append")
}

type pair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

func decodePair(t *testing.T, rec *httptest.ResponseRecorder) pair {
	t.Helper()
	require.Falsef(t, rec.Code != http.StatusOK, "status %d: %s", rec.Code, rec.Body)
	var p pair
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	require.Falsef(t, p.AccessToken == "" || p.RefreshToken == "" || p.TokenType != "Bearer" || p.ExpiresIn != 900, "incomplete token pair %s", rec.Body)
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
	var pa, pb edge.Problem
	_ = json.Unmarshal(a.Body.Bytes(), &pa)
	_ = json.Unmarshal(b.Body.Bytes(), &pb)
	pa.RequestID, pb.RequestID = "", ""
	require.Falsef(t, a.Code != b.Code || pa.Type != pb.Type || pa.Title != pb.Title || pa.Detail != pb.Detail, "answers differ (an oracle):\n%d %s\n%d %s", a.Code, a.Body, b.Code, b.Body)
}

func TestRefreshRotatesAndAReplayRevokesTheSessionWithOneAnswerForEveryBadToken(t *testing.T) {
	c := newCluster(t)
	c.account(adaEmail)
	a := c.instance(c.pool, true)
	first := a.login(t, "Firefox")
	second := decodePair(t, a.refresh(first.RefreshToken))
	require.False(t, second.RefreshToken == first.RefreshToken, "refresh token not rotated")
	require.False(t, a.me(second.AccessToken) != http.StatusOK, "refreshed access token refused")

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
		require.FailNow(t, fmt.Sprintf("access token of a session revoked for reuse = %d, want 401", code))
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
	require.Falsef(t, !(codes[0] == 200 && codes[1] == 401 || codes[0] == 401 && codes[1] == 200), "concurrent refreshes answered %v, want one 200 and one 401", codes)
}

// TestLogoutOnOneInstanceRejectsTheTokenOnTheOther: two server instances
// (two revocation views) share PostgreSQL; a session ended on one is
// refused by the other on the next request.
func TestLogoutOnOneInstanceRejectsTheTokenOnTheOther(t *testing.T) {
	c := newCluster(t)
	c.account(adaEmail)
	a, b := c.instance(c.pool, true), c.instance(c.pool, true)
	phone, laptop := a.login(t, "Phone"), a.login(t, "Laptop")
	require.False(t, b.me(phone.AccessToken) != 200 || b.me(laptop.AccessToken) != 200, "valid tokens refused by the other instance")

	// Logout ends this session only.
	if rec := a.do(req(http.MethodPost, "/v1/auth/logout", nil, bearer(phone.AccessToken)...)); rec.Code != http.StatusNoContent {
		require.FailNow(t, fmt.Sprintf("logout = %d %s", rec.Code, rec.Body))
	}
	if code := a.me(phone.AccessToken); code != 401 {
		require.FailNow(t, fmt.Sprintf("instance a after its own logout = %d", code))
	}
	rejectedAtOnce(t, b, phone.AccessToken)
	require.False(t, b.me(laptop.AccessToken) != 200, "logout ended another session")
	problemOf(t, b.refresh(phone.RefreshToken), 401, "invalid-refresh-token")

	// Logout-all on b ends every session; a refuses them.
	tablet := b.login(t, "Tablet")
	if rec := b.do(req(http.MethodPost, "/v1/auth/logout-all", nil, bearer(laptop.AccessToken)...)); rec.Code != http.StatusNoContent {
		require.FailNow(t, fmt.Sprintf("logout-all = %d %s", rec.Code, rec.Body))
	}
	rejectedAtOnce(t, a, laptop.AccessToken)
	rejectedAtOnce(t, a, tablet.AccessToken)

	// A password change on a ends every session; b refuses them.
	desk := b.login(t, "Desk")
	rec := a.do(req(http.MethodPost, "/v1/me/password", `{"current_password":"`+adaPassword+`","new_password":"another fine passphrase"}`, bearer(desk.AccessToken)...))
	require.Falsef(t, rec.Code != http.StatusNoContent, "password change = %d %s", rec.Code, rec.Body)
	rejectedAtOnce(t, b, desk.AccessToken)
	problemOf(t, b.refresh(desk.RefreshToken), 401, "invalid-refresh-token")
}

// rejectedAtOnce asserts in.me answers 401 for tok on the very next
// request: the revoking request answers only after every listening
// instance acknowledged the revocation.
func rejectedAtOnce(t *testing.T, in *instance, tok string) {
	t.Helper()
	if code := in.me(tok); code != http.StatusUnauthorized {
		require.FailNow(t, fmt.Sprintf("the other instance answered %d for the token of a revoked session, want 401", code))
	}
}

func TestAnInstanceWhoseFeedIsDownChecksPostgreSQLAndFailsClosed(t *testing.T) {
	c := newCluster(t)
	c.account(adaEmail)
	a := c.instance(c.pool, true)
	ownPool, err := postgres.Open(context.Background(), c.dsn, 4)
	require.NoError(t, err)
	deaf := c.instance(ownPool, false) // never subscribed: not live
	p, q := a.login(t, ""), a.login(t, "")
	require.False(t, deaf.me(p.AccessToken) != 200, "valid token refused")
	a.do(req(http.MethodPost, "/v1/auth/logout", nil, bearer(p.AccessToken)...))
	if code := deaf.me(p.AccessToken); code != 401 {
		require.FailNow(t, fmt.Sprintf("not-live instance accepted a revoked session's token: %d", code))
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
	require.Falsef(t, rec.Code != 200, "%d %s", rec.Code, rec.Body)
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
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Falsef(t, len(list.Sessions) != 2, "want the 2 live sessions: %s", rec.Body)
	laptopClaims, _ := c.tokens.Verify(laptop.AccessToken)
	phoneClaims, _ := c.tokens.Verify(phone.AccessToken)
	for _, s := range list.Sessions {
		switch s.ID {
		case laptopClaims.SessionID:
			require.Falsef(t, !s.Current || !strings.HasPrefix(s.UserAgent, "Laptop/2.0") || len(s.UserAgent) > 256, "laptop session %+v", s)
		case phoneClaims.SessionID:
			require.Falsef(t, s.Current || s.UserAgent != "Phone/1.0", "phone session %+v", s)
		default:
			require.FailNow(t, fmt.Sprintf("unexpected session %+v", s))
		}
		require.Falsef(t, s.IP == "" || s.CreatedAt.IsZero() || s.LastUsedAt.IsZero(), "session %+v", s)
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
	require.False(t, a.me(p.AccessToken) != 200, "a refused password change ended the session")
	if rec := pw(`{"current_password":"` + adaPassword + `","new_password":"another fine passphrase"}`); rec.Code != 204 {
		require.FailNow(t, fmt.Sprintf("%d %s", rec.Code, rec.Body))
	}
	require.False(t, a.me(p.AccessToken) != 401, "the session that changed the password is still live")
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
	require.NoError(t, err)
	revoked := a.login(t, "")
	a.do(req(http.MethodPost, "/v1/auth/logout", nil, bearer(revoked.AccessToken)...))

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
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
		require.NoError(t, err)
		return s
	}

	if code := a.me(forge(jwt.SigningMethodHS256, jwtKey, "at+jwt", valid())); code != 200 {
		require.FailNow(t, fmt.Sprintf("control token (forged with the real key) = %d; the table would prove nothing", code))
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
			require.Falsef(t, !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`), "WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
		})
	}
	require.False(t, a.me(live.AccessToken) != 200, "the live session's token stopped working")
}

// A token signed with the server's key is refused unless its session is a
// live session of its subject: a made-up session id, or another user's,
// gets 401 (the session check is the second line behind the signature).
func TestAnAccessTokenIsBoundToItsSessionsUser(t *testing.T) {
	c := newCluster(t)
	ada := c.account(adaEmail)
	bob := c.account("bob@example.org")
	for _, live := range []bool{true, false} {
		a := c.instance(c.pool, live)
		p := a.login(t, "")
		claims, err := c.tokens.Verify(p.AccessToken)
		require.NoError(t, err)
		require.Equal(t, ada, claims.UserID)
		assert.Equal(t, 200, a.me(p.AccessToken), "live view %v: Ada's own token", live)

		foreign, _, err := c.tokens.Issue(bob, "user", claims.SessionID, false)
		require.NoError(t, err)
		assert.Equal(t, 401, a.me(foreign), "live view %v: Bob's token naming Ada's session", live)
		madeUp, _, err := c.tokens.Issue(ada, "user", uuid.New(), false)
		require.NoError(t, err)
		assert.Equal(t, 401, a.me(madeUp), "live view %v: a token naming a session that does not exist", live)
	}
}
