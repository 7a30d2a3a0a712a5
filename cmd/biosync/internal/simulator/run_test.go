package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wirePayload is the push contract as the server sees it, decoded strictly
// and independently of the simulator's own types.
type wirePayload struct {
	UserID string `json:"user_id"`
	Source struct {
		Provider string `json:"provider"`
		Device   string `json:"device"`
	} `json:"source"`
	Samples []struct {
		Type  string   `json:"type"`
		Start string   `json:"start"`
		End   string   `json:"end"`
		Value *float64 `json:"value"`
		Unit  string   `json:"unit"`
	} `json:"samples"`
	SleepSessions []struct {
		Start  string `json:"start"`
		End    string `json:"end"`
		Stages []struct {
			Stage string `json:"stage"`
			Start string `json:"start"`
			End   string `json:"end"`
		} `json:"stages"`
	} `json:"sleep_sessions"`
}

var wireUnits = map[string]string{
	"heart_rate": "bpm", "resting_heart_rate": "bpm", "hrv_rmssd": "ms", "steps": "count",
	"active_energy": "kcal", "distance": "m", "spo2": "%", "respiratory_rate": "breaths/min",
	"skin_temperature_deviation": "degC", "weight": "kg",
}

type fakeUser struct {
	id, email, password string
	loc                 *time.Location
}

type delivery struct {
	webhookID string
	body      []byte
	payload   wirePayload
}

// fakeServer is a test double of the BioSync HTTP API: it implements the
// contract the simulator codes against and records what it receives.
type fakeServer struct {
	t        *testing.T
	verifier webhooks.Verifier

	mu         sync.Mutex
	users      map[string]*fakeUser // by email
	byID       map[string]*fakeUser
	deliveries []delivery
	logins     int
	registers  int
	pushCalls  int
	entries    map[string][]JournalEntry // by user id

	conflictFirstRegister bool // answer the first register with 409
	unavailableFirstPush  bool // answer the first push with 503
	pushStatus            int  // if set, answer every push with this status
}

func newFake(t *testing.T, secret string) (*fakeServer, *httptest.Server) {
	key, err := webhooks.ParseSecret(secret)
	require.NoError(t, err)
	f := &fakeServer{
		t:        t,
		verifier: webhooks.Verifier{Keys: [][]byte{key}},
		users:    map[string]*fakeUser{},
		byID:     map[string]*fakeUser{},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func problem(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"about:blank","title":%q,"status":%d}`, title, status)
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// A handler runs on the server's goroutine: assert, never require.
	post := assert.Equal(f.t, http.MethodPost, r.Method, "method of %s", r.URL.Path)
	jsonBody := assert.Equal(f.t, "application/json", r.Header.Get("Content-Type"), "content type of %s %s", r.Method, r.URL.Path)
	if !post || !jsonBody {
		problem(w, http.StatusUnsupportedMediaType, "bad request")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if !assert.NoError(f.t, err, "%s: body over 1 MiB", r.URL.Path) {
		problem(w, http.StatusRequestEntityTooLarge, "too large")
		return
	}
	switch r.URL.Path {
	case "/v1/auth/register":
		f.register(w, body)
	case "/v1/auth/login":
		f.login(w, body)
	case "/v1/webhooks/push":
		f.push(w, r.Header, body)
	case "/v1/journal/entries":
		f.journal(w, r.Header, body)
	default:
		problem(w, http.StatusNotFound, "not found")
	}
}

func (f *fakeServer) register(w http.ResponseWriter, body []byte) {
	f.registers++
	var req struct{ Email, Password, Timezone string }
	if err := json.Unmarshal(body, &req); err != nil {
		problem(w, http.StatusBadRequest, "bad json")
		return
	}
	loc, err := time.LoadLocation(req.Timezone)
	if !assert.NoError(f.t, err, "register: unknown timezone %q", req.Timezone) ||
		!assert.NotContains(f.t, []string{"", "Local"}, req.Timezone, "register: want a named timezone") {
		problem(w, http.StatusUnprocessableEntity, "bad timezone")
		return
	}
	simAddress := assert.True(f.t, strings.HasPrefix(req.Email, "sim-"), "register: email %q is not a simulator's", req.Email)
	simAddress = assert.True(f.t, strings.HasSuffix(req.Email, "@example.com"), "register: email %q is not at example.com", req.Email) && simAddress
	longPassword := assert.GreaterOrEqual(f.t, len(req.Password), 12, "register: password %q too short", req.Password)
	if !simAddress || !longPassword {
		problem(w, http.StatusUnprocessableEntity, "bad credentials")
		return
	}
	if f.conflictFirstRegister && f.registers == 1 || f.users[req.Email] != nil {
		problem(w, http.StatusConflict, "email taken")
		return
	}
	u := &fakeUser{id: fmt.Sprintf("00000000-0000-4000-8000-%012d", len(f.users)+1), email: req.Email, password: req.Password, loc: loc}
	f.users[u.email], f.byID[u.id] = u, u
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]string{"id": u.id, "email": u.email, "timezone": req.Timezone})
}

func (f *fakeServer) login(w http.ResponseWriter, body []byte) {
	var req struct{ Email, Password string }
	_ = json.Unmarshal(body, &req)
	u := f.users[req.Email]
	if u == nil || u.password != req.Password {
		problem(w, http.StatusUnauthorized, "invalid credentials")
		return
	}
	f.logins++
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-" + u.id, "token_type": "Bearer", "expires_in": 900})
}

// journal takes a journal entry as the real API does: bearer token of a
// registered user, a local day, lower_snake_case tags, ratings 1-10, one
// entry per day.
func (f *fakeServer) journal(w http.ResponseWriter, h http.Header, body []byte) {
	u := f.byID[strings.TrimPrefix(h.Get("Authorization"), "Bearer tok-")]
	if !assert.NotNil(f.t, u, "journal entry without a user's bearer token: %q", h.Get("Authorization")) {
		problem(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	var e JournalEntry
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if !assert.NoError(f.t, dec.Decode(&e), "journal entry %s", body) {
		problem(w, http.StatusBadRequest, "bad json")
		return
	}
	_, err := time.Parse(time.DateOnly, e.Date)
	ok := assert.NoError(f.t, err, "journal date %q", e.Date)
	for _, t := range e.Tags {
		ok = assert.Regexp(f.t, `^[a-z][a-z0-9]*(_[a-z0-9]+)*$`, t.Name) && assert.GreaterOrEqual(f.t, t.Amount, 0.0, t.Name) && ok
	}
	for _, r := range []int{e.Mood, e.Energy, e.Stress} {
		ok = assert.True(f.t, r >= 1 && r <= 10, "rating %d", r) && ok
	}
	if !ok {
		problem(w, http.StatusUnprocessableEntity, "invalid entry")
		return
	}
	for _, prev := range f.entries[u.id] {
		if prev.Date == e.Date {
			problem(w, http.StatusConflict, "day taken")
			return
		}
	}
	if f.entries == nil {
		f.entries = map[string][]JournalEntry{}
	}
	f.entries[u.id] = append(f.entries[u.id], e)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"00000000-0000-4000-8000-%012d","version":1}`, len(f.entries[u.id]))
}

func (f *fakeServer) push(w http.ResponseWriter, h http.Header, body []byte) {
	f.pushCalls++
	d, err := f.verifier.Verify(h, body)
	if err != nil {
		problem(w, http.StatusUnauthorized, "signature: "+err.Error())
		return
	}
	if f.pushStatus != 0 {
		problem(w, f.pushStatus, "sample value out of range")
		return
	}
	if f.unavailableFirstPush && f.pushCalls == 1 {
		w.Header().Set("Retry-After", "0")
		problem(w, http.StatusServiceUnavailable, "warming up")
		return
	}
	var p wirePayload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); !assert.NoError(f.t, err, "push: payload does not match the contract") {
		problem(w, http.StatusBadRequest, "bad payload")
		return
	}
	if err := f.checkPayload(p); !assert.NoError(f.t, err, "push") {
		problem(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	f.deliveries = append(f.deliveries, delivery{webhookID: d.ID, body: body, payload: p})
	w.Header().Set("X-Consistency-Token", fmt.Sprintf("ct-%d", len(f.deliveries)))
	w.WriteHeader(http.StatusAccepted)
}

// checkPayload validates a delivery against the contract.
func (f *fakeServer) checkPayload(p wirePayload) error {
	u := f.byID[p.UserID]
	if u == nil {
		return fmt.Errorf("unknown user %q", p.UserID)
	}
	if p.Source.Provider != "simulator" || (p.Source.Device != "watch" && p.Source.Device != "ring") {
		return fmt.Errorf("bad source %+v", p.Source)
	}
	localTime := func(s string) (time.Time, error) {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return t, err
		}
		_, got := t.Zone()
		_, want := t.In(u.loc).Zone()
		if got != want {
			return t, fmt.Errorf("%s: offset %d, user's zone %s has %d", s, got, u.loc, want)
		}
		return t, nil
	}
	for _, s := range p.Samples {
		if wireUnits[s.Type] == "" || wireUnits[s.Type] != s.Unit || s.Value == nil {
			return fmt.Errorf("bad sample %+v", s)
		}
		start, err := localTime(s.Start)
		if err != nil {
			return err
		}
		end, err := localTime(s.End)
		if err != nil {
			return err
		}
		if end.Before(start) {
			return fmt.Errorf("sample ends before it starts: %+v", s)
		}
	}
	for _, ss := range p.SleepSessions {
		if _, err := localTime(ss.Start); err != nil {
			return err
		}
		if len(ss.Stages) == 0 || ss.Stages[0].Start != ss.Start || ss.Stages[len(ss.Stages)-1].End != ss.End {
			return fmt.Errorf("stages do not span session %s", ss.Start)
		}
	}
	return nil
}

func testSecret(t *testing.T) string {
	s, err := webhooks.NewSecret()
	require.NoError(t, err)
	return s
}

var testNow = time.Date(2025, 6, 10, 15, 4, 5, 0, time.UTC)

func TestRunEndToEnd(t *testing.T) {
	secret := testSecret(t)
	f, srv := newFake(t, secret)
	f.conflictFirstRegister = true
	f.unavailableFirstPush = true

	var out bytes.Buffer
	err := Run(context.Background(), Config{
		BaseURL: srv.URL + "/", PushSecret: secret + "\n", Users: 3, Days: 4, Seed: 1,
		HTTPClient: srv.Client(), Now: testNow,
	}, &out)
	require.NoError(t, err, "Run: %v\n%s", err, out.String())

	require.Len(t, f.users, 3, "%d users from %d register calls, want 3 from 4 (one 409)", len(f.users), f.registers)
	require.EqualValues(t, 4, f.registers, "%d users from %d register calls, want 3 from 4 (one 409)", len(f.users), f.registers)
	assert.EqualValues(t, 3, f.logins, "%d logins, want 3", f.logins)
	require.Len(t, f.deliveries, 12, "%d deliveries from %d push calls, want 12 from 13 (one 503 retried)", len(f.deliveries), f.pushCalls)
	require.EqualValues(t, 13, f.pushCalls, "%d deliveries from %d push calls, want 12 from 13 (one 503 retried)", len(f.deliveries), f.pushCalls)
	ids := map[string]bool{}
	perUser := map[string]int{}
	zones := map[string]bool{}
	for _, d := range f.deliveries {
		ids[d.webhookID] = true
		perUser[d.payload.UserID]++
		assert.LessOrEqual(t, len(d.body), 512<<10, "delivery of %d bytes; want well under 1 MiB", len(d.body))
		for _, s := range d.payload.Samples {
			end, _ := time.Parse(time.RFC3339, s.End)
			assert.False(t, end.After(testNow), "sample ends at %s, after Now", s.End)
		}
	}
	assert.Len(t, ids, 12, "%d distinct webhook ids over 12 deliveries", len(ids))
	for _, u := range f.users {
		zones[u.loc.String()] = true
		assert.EqualValues(t, 4, perUser[u.id], "user %s got %d deliveries, want 4", u.email, perUser[u.id])
		for _, want := range []string{u.email, u.password, u.id, u.loc.String()} {
			assert.Contains(t, out.String(), want, "output lacks %q", want)
		}
	}
	assert.Len(t, zones, 3, "time zones %v, want 3 different", zones)
	tags := map[string]int{}
	for _, u := range f.users {
		require.Len(t, f.entries[u.id], 4, "journal entries of %s: one per day", u.email)
		for i, e := range f.entries[u.id] {
			want := testNow.In(u.loc).AddDate(0, 0, i-3).Format(time.DateOnly)
			assert.Equal(t, want, e.Date, "entry %d of %s is for its local day", i, u.email)
			for _, tag := range e.Tags {
				tags[tag.Name]++
			}
		}
	}
	assert.NotZero(t, tags["caffeine"], "tags written: %v", tags)
	for _, want := range []string{"EMAIL", "PASSWORD", "USER ID", "TIMEZONE", "curl", srv.URL + "/v1/auth/login", "Bearer", "consistency token ct-"} {
		assert.Contains(t, out.String(), want, "output lacks %q:\n%s", want, out.String())
	}
	assert.NotContains(t, out.String(), secret, "output leaks the push secret")
	t.Logf("output:\n%s", out.String())
}

// TestRunDeterministic checks the same seed pushes the same data.
func TestRunDeterministic(t *testing.T) {
	run := func(seed int64) [][]byte {
		secret := testSecret(t)
		f, srv := newFake(t, secret)
		err := Run(context.Background(), Config{
			BaseURL: srv.URL, PushSecret: secret, Users: 2, Days: 2, Seed: seed,
			HTTPClient: srv.Client(), Now: testNow,
		}, io.Discard)
		require.NoError(t, err)
		var bodies [][]byte
		for _, d := range f.deliveries {
			bodies = append(bodies, d.body)
		}
		return bodies
	}
	a, b, c := run(9), run(9), run(10)
	require.Len(t, a, 4, "deliveries: %d and %d", len(a), len(b))
	require.Len(t, a, len(b), "deliveries: %d and %d", len(a), len(b))
	for i := range a {
		require.Equal(t, b[i], a[i], "delivery %d differs between runs with the same seed", i)
	}
	require.False(t, bytes.Equal(a[0], c[0]), "different seeds pushed identical data")
}

func TestRunPushErrorShowsProblem(t *testing.T) {
	secret := testSecret(t)
	f, srv := newFake(t, secret)
	f.pushStatus = http.StatusUnprocessableEntity
	err := Run(context.Background(), Config{
		BaseURL: srv.URL, PushSecret: secret, Users: 1, Days: 1, HTTPClient: srv.Client(), Now: testNow,
	}, io.Discard)
	require.Error(t, err, "err = %v, want the 422 and its problem body", err)
	require.Contains(t, err.Error(), "422", "err = %v, want the 422 and its problem body", err)
	require.Contains(t, err.Error(), `"title":"sample value out of range"`, "err = %v, want the 422 and its problem body", err)
}

func TestRunWrongSecretRejected(t *testing.T) {
	_, srv := newFake(t, testSecret(t))
	err := Run(context.Background(), Config{
		BaseURL: srv.URL, PushSecret: testSecret(t), Users: 1, Days: 1, HTTPClient: srv.Client(), Now: testNow,
	}, io.Discard)
	require.Error(t, err, "err = %v, want 401 signature problem", err)
	require.Contains(t, err.Error(), "401", "err = %v, want 401 signature problem", err)
	require.Contains(t, err.Error(), "no matching signature", "err = %v, want 401 signature problem", err)
}

func TestRunGivesUpAfterRetries(t *testing.T) {
	secret := testSecret(t)
	f, srv := newFake(t, secret)
	f.pushStatus = http.StatusServiceUnavailable
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/webhooks/push" {
			w.Header().Set("Retry-After", "0")
		}
		f.ServeHTTP(w, r)
	})
	err := Run(context.Background(), Config{
		BaseURL: srv.URL, PushSecret: secret, Users: 1, Days: 1, HTTPClient: srv.Client(), Now: testNow,
	}, io.Discard)
	require.Error(t, err, "err = %v, want 503", err)
	require.Contains(t, err.Error(), "503", "err = %v, want 503", err)
	assert.Equal(t, maxAttempts, f.pushCalls, "%d push attempts, want %d", f.pushCalls, maxAttempts)
}

func TestRunCancelled(t *testing.T) {
	secret := testSecret(t)
	_, srv := newFake(t, secret)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, Config{BaseURL: srv.URL, PushSecret: secret, Users: 1, Days: 1, HTTPClient: srv.Client()}, io.Discard)
	require.ErrorIs(t, err, context.Canceled, "err = %v, want context.Canceled", err)
}

func TestRunBadConfig(t *testing.T) {
	secret := testSecret(t)
	for name, cfg := range map[string]Config{
		"no secret":     {BaseURL: "http://127.0.0.1:1", Users: 1, Days: 1},
		"bad secret":    {BaseURL: "http://127.0.0.1:1", PushSecret: "hunter2", Users: 1, Days: 1},
		"no url":        {PushSecret: secret, Users: 1, Days: 1},
		"relative url":  {BaseURL: "127.0.0.1:8080", PushSecret: secret, Users: 1, Days: 1},
		"no users":      {BaseURL: "http://127.0.0.1:1", PushSecret: secret, Users: 0, Days: 1},
		"negative days": {BaseURL: "http://127.0.0.1:1", PushSecret: secret, Users: 1, Days: -1},
	} {
		assert.Error(t, Run(context.Background(), cfg, io.Discard), "%s: Run accepted %+v", name, cfg)
	}
}

func TestRunServerDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := Run(context.Background(), Config{BaseURL: url, PushSecret: testSecret(t), Users: 1, Days: 1}, io.Discard)
	require.Error(t, err, "err = %v, want a hint that the server is not reachable", err)
	require.Contains(t, err.Error(), "reachable", "err = %v, want a hint that the server is not reachable", err)
}

func TestBackoff(t *testing.T) {
	d := backoff(1, "2")
	assert.Equal(t, 2*time.Second, d, "Retry-After 2 -> %v", d)
	d = backoff(1, "3600")
	assert.Equal(t, maxBackoff, d, "Retry-After 3600 -> %v, want cap", d)
	d = backoff(1, "")
	assert.GreaterOrEqual(t, d, 250*time.Millisecond, "first backoff")
	assert.LessOrEqual(t, d, 375*time.Millisecond, "first backoff")
	d = backoff(30, "soon")
	assert.Equal(t, maxBackoff, d, "late backoff %v, want cap", d)
}
