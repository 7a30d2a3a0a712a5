package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/providers/oura"
	"github.com/biosync/biosync/adapters/providers/oura/ouratest"
)

const (
	ouraClientID     = "biosync-e2e"
	ouraClientSecret = "oura-e2e-client-secret"
	ouraVerify       = "oura-e2e-verification-token"
	appURL           = "https://app.example"
)

// ouraWorld is a running server with Oura configured against a fake Oura,
// and one BioSync user (Europe/Berlin) logged in.
type ouraWorld struct {
	fake   *ouratest.Server
	server *server
	c      *client
	// ouraUser is the Oura account that consents.
	ouraUser string
	// day is the local date the recorded documents were moved to
	// (yesterday, so it lies inside the backfill window).
	day time.Time
	// env is the server's configuration; userID the BioSync user.
	env    map[string]string
	userID string
	// stop stops the current server (once).
	stop func()
}

// start starts a server on w.env (again, after stop: same PostgreSQL and
// Kafka topic) and points the client at it.
func (w *ouraWorld) start(t *testing.T) {
	t.Helper()
	w.server = startServer(t, w.env)
	w.stop = sync.OnceFunc(w.server.stop)
	t.Cleanup(w.stop)
	if w.c != nil {
		w.c.base = w.server.url
	}
}

// noRedirect is a client that shows a redirect instead of following it.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func newOuraWorld(t *testing.T, extra ...string) *ouraWorld {
	t.Helper()
	fake := ouratest.Start(ouraClientID, ouraClientSecret)
	t.Cleanup(fake.Close)
	w := &ouraWorld{fake: fake, ouraUser: fmt.Sprintf("oura-%d", time.Now().UnixNano())}
	fake.AddUser(w.ouraUser)
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	y, m, d := time.Now().In(berlin).AddDate(0, 0, -1).Date()
	w.day = time.Date(y, m, d, 0, 0, 0, 0, berlin)
	w.addRecordedDocuments(t)

	env := backendEnv(t)
	env["BIOSYNC_OURA_CLIENT_ID"] = ouraClientID
	env["BIOSYNC_OURA_CLIENT_SECRET"] = ouraClientSecret
	env["BIOSYNC_OURA_AUTH_URL"] = fake.AuthURL()
	env["BIOSYNC_OURA_TOKEN_URL"] = fake.TokenURL()
	env["BIOSYNC_OURA_API_URL"] = fake.APIURL()
	env["BIOSYNC_OURA_VERIFICATION_TOKEN"] = ouraVerify
	env["BIOSYNC_APP_URL"] = appURL
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	w.env = env
	w.start(t)

	w.c = &client{t: t, base: w.server.url}
	email := fmt.Sprintf("oura-%d@example.com", time.Now().UnixNano())
	code, _, body := w.c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": "correct horse battery", "timezone": "Europe/Berlin"}, nil)
	require.Equal(t, 201, code, "register: %v", body)
	w.userID = body["id"].(string)
	code, _, login := w.c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	require.Equal(t, 200, code, "login: %v", login)
	w.c.token = login["access_token"].(string)
	return w
}

// date formats the world's day shifted by n days.
func (w *ouraWorld) date(n int) string { return w.day.AddDate(0, 0, n).Format(time.DateOnly) }

// addRecordedDocuments stores the recorded shapes (domain/provider/oura's
// testdata), moved to the world's day.
func (w *ouraWorld) addRecordedDocuments(t *testing.T) {
	t.Helper()
	day, prev := w.date(0), w.date(-1)
	w.fake.AddDocument(w.ouraUser, "daily_activity", []byte(`{"id":"act-`+day+`","day":"`+day+`","timestamp":"`+day+`T04:00:00+01:00","score":82,"active_calories":412,"steps":9386,"total_calories":2456,"class_5_min":"0"}`))
	w.fake.AddDocument(w.ouraUser, "daily_spo2", []byte(`{"id":"spo2-`+day+`","day":"`+day+`","spo2_percentage":{"average":96.5}}`))
	w.fake.AddDocument(w.ouraUser, "daily_readiness", []byte(`{"id":"rd-`+day+`","day":"`+day+`","score":83,"temperature_deviation":-0.09,"temperature_trend_deviation":0.05,"timestamp":"`+day+`T00:00:00+01:00"}`))
	w.fake.AddDocument(w.ouraUser, "sleep", w.sleepDoc("sleep-"+day, prev+"T23:01:59+01:00", day+"T07:01:59+01:00", day))
	for i, bpm := range []int{61, 64, 58} {
		ts := w.day.Add(time.Duration(9+i) * time.Hour).UTC().Format(time.RFC3339)
		w.fake.AddDocument(w.ouraUser, "heartrate", []byte(fmt.Sprintf(`{"bpm":%d,"source":"awake","timestamp":"%s"}`, bpm, ts)))
	}
}

// sleepDoc is a long_sleep document of 8 hours with a 96-phase hypnogram.
func (w *ouraWorld) sleepDoc(id, start, end, day string) []byte {
	phases := strings.Repeat("4", 2) + strings.Repeat("2", 30) + strings.Repeat("1", 24) + strings.Repeat("3", 24) + strings.Repeat("2", 16)
	return []byte(`{"id":"` + id + `","type":"long_sleep","day":"` + day + `","bedtime_start":"` + start + `","bedtime_end":"` + end +
		`","average_hrv":48,"lowest_heart_rate":49,"average_breath":14.625,"awake_time":600,"light_sleep_duration":13800,"deep_sleep_duration":7200,"rem_sleep_duration":7200,"sleep_phase_5_min":"` + phases + `"}`)
}

// connect runs the real flow: POST /v1/connections/oura, the user's
// browser at Oura's authorize page, and back to the callback.
func (w *ouraWorld) connect(t *testing.T) (callback string, location string) {
	t.Helper()
	code, _, auth := w.c.do("POST", "/v1/connections/oura", nil, nil)
	require.Equal(t, 201, code, "start connection: %v", auth)
	au, err := url.Parse(auth["authorize_url"].(string))
	require.NoError(t, err)
	assert.Equal(t, ouraClientID, au.Query().Get("client_id"))
	assert.Equal(t, w.server.url+"/v1/connections/oura/callback", au.Query().Get("redirect_uri"))
	assert.Equal(t, auth["state"], au.Query().Get("state"))
	assert.Empty(t, au.Query().Get("code_challenge"), "Oura does not support PKCE")
	callback, err = ouratest.Consent(auth["authorize_url"].(string))
	require.NoError(t, err)
	return callback, w.callback(t, callback)
}

// callback calls the callback URL as the browser would and returns where
// it was sent.
func (w *ouraWorld) callback(t *testing.T, u string) string {
	t.Helper()
	res, err := noRedirect.Get(u)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	return res.Header.Get("Location")
}

// connection polls GET /v1/connections until ok accepts Oura's row.
func (w *ouraWorld) connection(t *testing.T, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var last map[string]any
	require.Eventually(t, func() bool {
		code, _, list := w.c.do("GET", "/v1/connections", nil, nil)
		if code != 200 {
			return false
		}
		for _, x := range list["connections"].([]any) {
			if row := x.(map[string]any); row["provider"] == "oura" {
				last = row
				return ok(row)
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "%s; last: %v", what, last)
	return last
}

// eventually polls a GET until ok accepts its body.
func (w *ouraWorld) eventually(t *testing.T, path string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var last map[string]any
	require.Eventually(t, func() bool {
		code, _, body := w.c.do("GET", path, nil, nil)
		last = body
		return code == 200 && ok(body)
	}, 30*time.Second, 100*time.Millisecond, "GET %s never became as expected; last: %v", path, last)
	return last
}

func (w *ouraWorld) notify(t *testing.T, n ouratest.Notification) int {
	t.Helper()
	code, err := w.fake.Notify(w.server.url+"/v1/webhooks/oura", n)
	require.NoError(t, err)
	return code
}

func points(body map[string]any) []map[string]any {
	var out []map[string]any
	raw, _ := body["points"].([]any)
	for _, p := range raw {
		out = append(out, p.(map[string]any))
	}
	return out
}

func sleepSessions(body map[string]any) []map[string]any {
	var out []map[string]any
	raw, _ := body["sessions"].([]any)
	for _, p := range raw {
		out = append(out, p.(map[string]any))
	}
	return out
}

func (w *ouraWorld) window() string {
	return "from=" + url.QueryEscape(w.day.AddDate(0, 0, -3).Format(time.RFC3339)) + "&to=" + url.QueryEscape(w.day.AddDate(0, 0, 3).Format(time.RFC3339))
}

// TestOuraConnectsThroughAuthorizeAndCallbackAndItsHistoryShowsInMetricsSleepAndTheDashboard
// walks issue 10's Oura path: providers listed, the authorize/callback
// flow against the fake Oura, the backfill (paged: two documents a page),
// and the normalized values in /v1/metrics, /v1/sleep/sessions and the
// dashboard with source oura and Berlin's local days.
func TestOuraConnectsThroughAuthorizeAndCallbackAndItsHistoryShowsInMetricsSleepAndTheDashboard(t *testing.T) {
	w := newOuraWorld(t)

	code, _, providers := w.c.do("GET", "/v1/providers", nil, nil)
	require.Equal(t, 200, code, "providers: %v", providers)
	listed := map[string]bool{}
	for _, p := range providers["providers"].([]any) {
		row := p.(map[string]any)
		listed[row["name"].(string)] = row["configured"].(bool)
	}
	assert.Equal(t, map[string]bool{"oura": true, "whoop": false, "polar": false, "withings": false, "fitbit": false, "garmin": false}, listed)
	code, _, prob := w.c.do("POST", "/v1/connections/whoop", nil, nil)
	assert.Equal(t, 404, code, "a provider that is not configured: %v", prob)

	callback, back := w.connect(t)
	assert.Equal(t, appURL+"/connections?provider=oura&status=connected", back)
	again := w.callback(t, callback)
	assert.Equal(t, appURL+"/connections?provider=oura&reason=invalid_state&status=error", again, "a state works once")

	row := w.connection(t, "the backfill reaches its end", func(r map[string]any) bool {
		b := r["backfill"].(map[string]any)
		return r["status"] == "connected" && b["done_until"] == b["to"]
	})
	assert.NotEmpty(t, row["connected_at"])
	assert.NotEmpty(t, row["last_sync_at"])
	assert.NotEmpty(t, row["last_data_at"])
	assert.Nil(t, row["last_error"])

	steps := w.eventually(t, "/v1/metrics/steps?bucket=day&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 1 })
	p := points(steps)[0]
	assert.Equal(t, 9386.0, p["value"])
	assert.Equal(t, w.day.Format(time.RFC3339), p["start"], "Oura's day is the user's local day")
	assert.Equal(t, "oura", p["source"])
	energy := w.eventually(t, "/v1/metrics/active_energy?bucket=day&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 1 })
	assert.Equal(t, 412.0, points(energy)[0]["value"])
	assert.Equal(t, "kcal", energy["unit"])
	hrv := w.eventually(t, "/v1/metrics/hrv_rmssd?bucket=raw&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 1 })
	assert.Equal(t, 48.0, points(hrv)[0]["value"])
	resting := w.eventually(t, "/v1/metrics/resting_heart_rate?bucket=raw&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 1 })
	assert.Equal(t, 49.0, points(resting)[0]["value"])
	spo2 := w.eventually(t, "/v1/metrics/spo2?bucket=raw&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 1 })
	assert.Equal(t, 96.5, points(spo2)[0]["value"])
	hr := w.eventually(t, "/v1/metrics/heart_rate?bucket=raw&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 3 })
	assert.Equal(t, 61.0, points(hr)[0]["value"])

	sleep := w.eventually(t, "/v1/sleep/sessions?"+w.window(), func(b map[string]any) bool { return len(sleepSessions(b)) == 1 })
	s := sleepSessions(sleep)[0]
	raw, _ := json.Marshal(s)
	assert.Contains(t, string(raw), `"oura"`, "the session names its source: %s", raw)
	assert.Contains(t, string(raw), w.date(0), "a night counts toward the date you wake up: %s", raw)
	assert.Contains(t, string(raw), `"deep_minutes":120`, "24 deep phases of 5 minutes: %s", raw)

	dash := w.eventually(t, "/v1/dashboard/summary", func(b map[string]any) bool {
		raw, _ := json.Marshal(b)
		return strings.Contains(string(raw), `"oura"`)
	})
	assert.Equal(t, "Europe/Berlin", dash["timezone"])
}

// TestOuraWebhooksHandshakeAndSignedNotificationsFetchTheRecord checks the
// handshake, a signed pointer that is fetched and normalized, the
// deliveries Oura would never send (tampered, stale, wrongly signed), and
// a notification for an Oura user nobody connected.
func TestOuraWebhooksHandshakeAndSignedNotificationsFetchTheRecord(t *testing.T) {
	w := newOuraWorld(t)
	_, back := w.connect(t)
	require.Contains(t, back, "status=connected")
	w.connection(t, "backfilled", func(r map[string]any) bool { return r["status"] == "connected" })

	res, err := http.Get(w.server.url + "/v1/webhooks/oura?verification_token=" + ouraVerify + "&challenge=ch4ll3nge")
	require.NoError(t, err)
	var challenge map[string]string
	require.NoError(t, json.NewDecoder(res.Body).Decode(&challenge))
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
	assert.Equal(t, map[string]string{"challenge": "ch4ll3nge"}, challenge)
	res, err = http.Get(w.server.url + "/v1/webhooks/oura?verification_token=guess&challenge=ch4ll3nge")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 403, res.StatusCode, "a handshake with the wrong token")

	// Oura records a new night and says so.
	today := w.date(1)
	w.fake.AddDocument(w.ouraUser, "sleep", w.sleepDoc("sleep-"+today, w.date(0)+"T23:30:00+01:00", today+"T07:30:00+01:00", today))
	note := ouratest.Notification{EventType: "create", DataType: "sleep", ObjectID: "sleep-" + today, EventTime: today + "T07:35:00+01:00", UserID: w.ouraUser}
	assert.Equal(t, 200, w.notify(t, note))
	w.eventually(t, "/v1/sleep/sessions?"+w.window(), func(b map[string]any) bool { return len(sleepSessions(b)) == 2 })
	assert.Contains(t, w.fake.Requests(), "GET /v2/usercollection/sleep/sleep-"+today, "the pointer was followed")

	send := func(req *http.Request) int {
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	hook := w.server.url + "/v1/webhooks/oura"
	req, err := w.fake.SignedRequest(hook, note, time.Now())
	require.NoError(t, err)
	tampered, _ := http.NewRequest(http.MethodPost, hook, strings.NewReader(strings.Replace(mustJSON(t, note), w.ouraUser, "oura-someone-else", 1)))
	tampered.Header = req.Header.Clone()
	assert.Equal(t, 401, send(tampered), "a tampered body")
	stale, err := w.fake.SignedRequest(hook, note, time.Now().Add(-10*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 401, send(stale), "a stale timestamp")
	forged, err := w.fake.SignedRequest(hook, note, time.Now())
	require.NoError(t, err)
	forged.Header.Set(oura.HeaderSignature, oura.Sign("not-the-client-secret", forged.Header.Get(oura.HeaderTimestamp), []byte(mustJSON(t, note))))
	assert.Equal(t, 401, send(forged), "signed with another secret")
	assert.Equal(t, 200, send(req), "a redelivery of the same notification is acknowledged (the same event)")

	unknown := note
	unknown.UserID = "oura-nobody-connected"
	assert.Equal(t, 200, w.notify(t, unknown), "an unknown Oura user is acknowledged, never retried forever")
	res, err = http.Get(w.server.url + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Contains(t, string(metrics), "biosync_provider_notifications_unknown_user_total 1", "and counted")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestOuraTokensAreRefreshedOnA401AndARefusedRefreshRevokesTheConnection
// expires every access token at Oura: the next fetch gets 401, refreshes
// (storing the rotated single-use refresh token) and succeeds; then the
// user revokes access at Oura: the refresh answers invalid_grant and the
// connection shows revoked. Disconnecting with delete_data then removes
// what Oura delivered.
func TestOuraTokensAreRefreshedOnA401AndARefusedRefreshRevokesTheConnection(t *testing.T) {
	w := newOuraWorld(t)
	_, back := w.connect(t)
	require.Contains(t, back, "status=connected")
	w.connection(t, "backfilled", func(r map[string]any) bool { return r["status"] == "connected" })

	w.fake.ExpireAccessTokens()
	today := w.date(1)
	w.fake.AddDocument(w.ouraUser, "daily_spo2", []byte(`{"id":"spo2-`+today+`","day":"`+today+`","spo2_percentage":{"average":95}}`))
	assert.Equal(t, 200, w.notify(t, ouratest.Notification{EventType: "create", DataType: "daily_spo2", ObjectID: "spo2-" + today, EventTime: today + "T08:00:00+01:00", UserID: w.ouraUser}))
	w.eventually(t, "/v1/metrics/spo2?bucket=raw&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 2 })
	assert.Equal(t, 1, w.fake.Refreshes(), "one refresh after the 401")

	w.fake.RevokeUser(w.ouraUser)
	w.fake.AddDocument(w.ouraUser, "daily_spo2", []byte(`{"id":"spo2-x","day":"`+today+`","spo2_percentage":{"average":94}}`))
	assert.Equal(t, 200, w.notify(t, ouratest.Notification{EventType: "update", DataType: "daily_spo2", ObjectID: "spo2-x", EventTime: today + "T09:00:00+01:00", UserID: w.ouraUser}))
	row := w.connection(t, "revoked after invalid_grant", func(r map[string]any) bool { return r["status"] == "revoked" })
	assert.Contains(t, row["last_error"], "revoked")

	code, _, prob := w.c.do("DELETE", "/v1/connections/oura?delete_data=true", nil, nil)
	assert.Equal(t, 204, code, "%v", prob)
	w.eventually(t, "/v1/metrics/spo2?bucket=raw&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 0 })
	w.eventually(t, "/v1/sleep/sessions?"+w.window(), func(b map[string]any) bool { return len(sleepSessions(b)) == 0 })
}

// TestDisconnectingOuraRevokesAtOuraAndKeepsTheData disconnects a live
// connection: Oura's revoke endpoint is called, the row shows revoked, the
// data already received stays, and later notifications fetch nothing.
func TestDisconnectingOuraRevokesAtOuraAndKeepsTheData(t *testing.T) {
	w := newOuraWorld(t)
	_, back := w.connect(t)
	require.Contains(t, back, "status=connected")
	w.connection(t, "backfilled", func(r map[string]any) bool { return r["status"] == "connected" })
	w.eventually(t, "/v1/metrics/steps?bucket=day&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 1 })

	code, _, _ := w.c.do("DELETE", "/v1/connections/oura", nil, nil)
	require.Equal(t, 204, code)
	assert.Contains(t, w.fake.Requests(), "GET /oauth/revoke")
	w.connection(t, "revoked by the user", func(r map[string]any) bool { return r["status"] == "revoked" })
	w.eventually(t, "/v1/metrics/steps?bucket=day&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 1 })
	code, _, _ = w.c.do("POST", "/v1/connections/oura/sync", nil, nil)
	assert.Equal(t, 404, code, "no sync without a connection")
}

// TestOuraAnswering429And500ForAWhileDelaysDataAndLosesNone makes the fake
// Oura refuse every call for a while (429 with Retry-After, then 500s)
// while a notification arrives: the record lands once Oura answers again.
func TestOuraAnswering429And500ForAWhileDelaysDataAndLosesNone(t *testing.T) {
	w := newOuraWorld(t)
	_, back := w.connect(t)
	require.Contains(t, back, "status=connected")
	w.connection(t, "backfilled", func(r map[string]any) bool { return r["status"] == "connected" })

	today := w.date(1)
	w.fake.AddDocument(w.ouraUser, "sleep", w.sleepDoc("sleep-"+today, w.date(0)+"T23:30:00+01:00", today+"T07:30:00+01:00", today))
	w.fake.Answer429(1)
	w.fake.Answer500(2)
	assert.Equal(t, 200, w.notify(t, ouratest.Notification{EventType: "create", DataType: "sleep", ObjectID: "sleep-" + today, EventTime: today + "T07:35:00+01:00", UserID: w.ouraUser}))
	w.eventually(t, "/v1/sleep/sessions?"+w.window(), func(b map[string]any) bool { return len(sleepSessions(b)) == 2 })
	row := w.connection(t, "healthy again", func(r map[string]any) bool { return r["status"] == "connected" })
	assert.Nil(t, row["last_error"], "a success clears the error")
}

// TestErasingAUserShredsTheirOuraConnection erases a user with a live
// Oura connection: the connection row with the sealed tokens and every
// pending state are deleted with the account (and the data key that sealed
// the tokens is destroyed, so a backup of the row is unreadable too).
func TestErasingAUserShredsTheirOuraConnection(t *testing.T) {
	w := newOuraWorld(t, "BIOSYNC_ERASURE_GRACE_PERIOD", "1500ms", "BIOSYNC_ERASURE_REPURGE_AFTER", "1s")
	_, back := w.connect(t)
	require.Contains(t, back, "status=connected")
	w.connection(t, "backfilled", func(r map[string]any) bool { return r["status"] == "connected" })
	code, _, pending := w.c.do("POST", "/v1/connections/oura", nil, nil) // a state left pending
	require.Equal(t, 201, code, "%v", pending)

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, w.env["BIOSYNC_DATABASE_URL"])
	require.NoError(t, err)
	defer pool.Close()
	rows := func() (n int) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM provider_connections WHERE user_id = $1) + (SELECT count(*) FROM provider_states WHERE user_id = $1)`, w.userID).Scan(&n))
		return n
	}
	require.Equal(t, 2, rows())

	code, _, req := w.c.do("POST", "/v1/me/deletion-requests", map[string]string{"password": "correct horse battery"}, nil)
	require.Equal(t, 202, code, "erasure request: %v", req)
	require.Eventually(t, func() bool {
		var status string
		require.NoError(t, pool.QueryRow(ctx, `SELECT status FROM deletion_requests WHERE id = $1`, req["id"]).Scan(&status))
		return status == "completed"
	}, 30*time.Second, 200*time.Millisecond, "erasure never completed")
	assert.Zero(t, rows(), "the connection (sealed tokens) and pending states are gone")
	assert.Equal(t, 200, w.notify(t, ouratest.Notification{EventType: "create", DataType: "sleep", ObjectID: "x", EventTime: "t", UserID: w.ouraUser}),
		"a notification for the erased user's Oura account is acknowledged, and nothing is recorded")
}

// TestARestartDuringTheBackfillResumesItWhereItStopped lists one document
// a page; Oura fails after a few calls, the server is stopped mid-backfill
// and started again once Oura answers: the backfill goes on from the
// stored data type and page (the types done before are not listed again)
// and every value arrives.
func TestARestartDuringTheBackfillResumesItWhereItStopped(t *testing.T) {
	w := newOuraWorld(t)
	w.fake.PageSize = 1
	w.fake.FailAfter(3) // personal_info, daily_activity, daily_readiness; then an outage
	_, back := w.connect(t)
	require.Contains(t, back, "status=connected")
	row := w.connection(t, "the outage shows", func(r map[string]any) bool { return r["last_error"] != nil })
	b := row["backfill"].(map[string]any)
	assert.NotEqual(t, b["to"], b["done_until"], "not done")
	assert.Equal(t, "syncing", row["status"])

	w.stop()
	w.fake.Recover()
	w.start(t)
	w.connection(t, "the backfill finishes after the restart", func(r map[string]any) bool {
		b := r["backfill"].(map[string]any)
		return r["status"] == "connected" && b["done_until"] == b["to"] && r["last_error"] == nil
	})
	listed := map[string]int{}
	for _, r := range w.fake.Requests() {
		listed[r]++
	}
	assert.Equal(t, 1, listed["GET /v2/usercollection/daily_activity"], "listed before the outage, not again")
	assert.Equal(t, 1, listed["GET /v2/usercollection/daily_readiness"], "listed before the outage, not again")
	w.eventually(t, "/v1/metrics/steps?bucket=day&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 1 })
	w.eventually(t, "/v1/sleep/sessions?"+w.window(), func(b map[string]any) bool { return len(sleepSessions(b)) == 1 })
	w.eventually(t, "/v1/metrics/heart_rate?bucket=raw&"+w.window(), func(b map[string]any) bool { return len(points(b)) == 3 })
}

// TestSimulateProviderOuraConnectsAUserThroughTheRunningServer runs
// `biosync simulate --provider oura` against a server configured with the
// simulator's fake Oura: the user is connected through the real OAuth flow
// and the history shows up.
func TestSimulateProviderOuraConnectsAUserThroughTheRunningServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	env := backendEnv(t)
	for _, kv := range strings.Fields(ouraServeEnv(addr)) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	s := startServer(t, env)
	defer s.stop()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"simulate", "--provider", "oura", "--users", "1", "--days", "3", "--url", s.url, "--oura-addr", addr},
		func(string) string { return "" }, &out, io.Discard))
	assert.Contains(t, out.String(), "connected Oura for sim-oura-")
	assert.Contains(t, out.String(), "3 days backfilled")
}

func TestSimulateProviderOuraSaysHowToConfigureAServerWithoutOura(t *testing.T) {
	s := startServer(t, backendEnv(t))
	defer s.stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	err = run(context.Background(), []string{"simulate", "--provider", "oura", "--users", "1", "--url", s.url, "--oura-addr", addr},
		func(string) string { return "" }, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "BIOSYNC_OURA_CLIENT_ID="+simOuraClientID)
}
