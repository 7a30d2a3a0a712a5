package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/gen"
)

// policy is who may call an operation, declared here for every operation of
// the spec: a new route without an entry fails TestAuthorizationMatrix.
type policy int

const (
	public         policy = iota // anyone: sign-up, login, mailed-token and infrastructure routes
	webhookSigned                // Standard Webhooks signature, no bearer token
	ownData                      // any user, on their own data only
	ownResource                  // any user, on a resource in the path that must be theirs (404 otherwise)
	adminOnly                    // the admin role
	providerSigned               // a provider's own signature or verification token, no bearer token (never 2xx without it)
)

var routePolicies = map[string]policy{
	"register": public, "login": public, "refreshSession": public, "verifyEmail": public,
	"requestPasswordReset": public, "confirmPasswordReset": public,
	"healthz": public, "readyz": public, "metrics": public, "getOpenAPISpec": public,
	"pushWebhook": webhookSigned,
	"logout":      ownData, "logoutAll": ownData, "listSessions": ownData, "changePassword": ownData,
	"getMe": ownData, "getSettings": ownData, "putSettings": ownData,
	"getNotificationPreferences": ownData, "putNotificationPreferences": ownData,
	"pushMySamples": ownData, "deleteMySamples": ownData, "requestErasure": ownData, "resendVerificationEmail": ownData,
	"getMetricSeries": ownData, "listSleepSessions": ownData, "listNights": ownData, "getDashboardSummary": ownData,
	"startTotpEnrolment": ownData, "confirmTotpEnrolment": ownData, "disableTotp": ownData, "renewRecoveryCodes": ownData,
	"getErasure": ownResource, "cancelErasure": ownResource,
	"createJournalEntry": ownData, "listJournalEntries": ownData, "listJournalTags": ownData,
	"getJournalEntry": ownResource, "replaceJournalEntry": ownResource, "deleteJournalEntry": ownResource,
	"listProjections": adminOnly, "rebuildProjection": adminOnly, "rollbackProjection": adminOnly,
	"dropProjectionGeneration": adminOnly, "listDeadLetters": adminOnly, "retryDeadLetters": adminOnly,
	"skipDeadLetter": adminOnly, "listAuditEntries": adminOnly,
	"listProviders": ownData, "listConnections": ownData, "startConnection": ownData, "deleteConnection": ownData, "syncConnection": ownData,
	"connectionCallback": public, // the single-use state names the user
	"providerWebhook":    providerSigned, "providerWebhookHandshake": providerSigned,
}

// TestAuthorizationMatrix calls every operation of the spec on a running
// server as the owner of some data, another user, an administrator and an
// anonymous caller. Anonymous callers get 401 everywhere but the public
// routes, users get 403 on admin routes, another user's resource is 404,
// and no answer to anyone but the owner contains any of the owner's data
// (0 cross-user reads). The policy of every operation is declared in
// routePolicies and must agree with the spec's security declaration.
func TestAuthorizationMatrix(t *testing.T) {
	env := backendEnv(t)
	env["BIOSYNC_ADMIN_REQUIRE_MFA"] = "false" // the matrix is about roles; MFA has its own tests
	for _, k := range []string{"AUTH", "EXPENSIVE", "WEBHOOK"} {
		env["BIOSYNC_RATE_LIMIT_"+k+"_IP"], env["BIOSYNC_RATE_LIMIT_"+k+"_ACCOUNT"] = "off", "off"
	}
	s := startServer(t, env)
	defer s.stop()
	getenv := func(k string) string { return env[k] }
	const password = "correct horse battery"
	stamp := time.Now().UnixNano()
	marker := fmt.Sprintf("mrk%x", stamp)

	// The owner: every free-text field carries the marker.
	ownerEmail := marker + "@example.com"
	anon := &client{t: t, base: s.url}
	code, rh, reg := anon.do("POST", "/v1/auth/register", map[string]string{"email": ownerEmail, "password": password, "timezone": "Europe/Oslo"}, nil)
	require.Equal(t, 201, code, "register owner: %v", reg)
	ownerID := reg["id"].(string)
	for _, e := range []string{"other-" + marker[3:], "admin-" + marker[3:]} {
		code, _, _ := anon.do("POST", "/v1/auth/register", map[string]string{"email": e + "@example.org", "password": password, "timezone": "UTC"}, nil)
		require.Equal(t, 201, code, "register %s", e)
	}
	require.NoError(t, run(context.Background(), []string{"users", "grant-admin", "admin-" + marker[3:] + "@example.org"}, getenv, io.Discard, io.Discard), "biosync users grant-admin")
	login := func(email string) *client {
		t.Helper()
		c := &client{t: t, base: s.url}
		code, _, l := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, nil)
		require.Equal(t, 200, code, "login %s: %v", email, l)
		c.token = l["access_token"].(string)
		return c
	}
	owner := login(ownerEmail)
	code, _, p := owner.do("PUT", "/v1/me/settings", map[string]string{"display_name": "Name " + marker, "timezone": "Europe/Oslo", "units": "metric"},
		map[string]string{"If-Match": `"0"`, "X-Consistency-Token": rh.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "owner settings: %v", p)
	body := []byte(`{"source":{"provider":"prov-` + marker + `","device":"dev-` + marker + `"},"samples":[` +
		`{"type":"heart_rate","start":"2026-11-20T08:00:00Z","end":"2026-11-20T08:00:00Z","value":61,"unit":"bpm"}],` +
		`"sleep_sessions":[{"start":"2026-11-19T23:00:00Z","end":"2026-11-20T06:30:00Z","stages":[{"stage":"deep","start":"2026-11-19T23:00:00Z","end":"2026-11-20T00:30:00Z"}]}]}`)
	code, ph, _ := owner.do("POST", "/v1/me/samples", body, map[string]string{"Idempotency-Key": "seed-" + marker})
	require.Equal(t, 202, code, "owner push")
	code, _, del := owner.do("POST", "/v1/me/deletion-requests", map[string]string{"password": password}, nil)
	require.Equal(t, 202, code, "owner deletion request: %v", del)
	deletionID := del["id"].(string)
	code, jh, entry := owner.do("POST", "/v1/journal/entries", map[string]any{"date": "2026-11-19", "note": "Note " + marker,
		"tags": []map[string]any{{"name": "tag_" + marker, "amount": 2}}}, nil)
	require.Equal(t, 201, code, "owner journal entry: %v", entry)
	entryID := entry["id"].(string)
	// Wait until the owner's data is readable, so a leak would show.
	code, _, _ = owner.do("GET", "/v1/dashboard/summary", nil, map[string]string{"X-Consistency-Token": ph.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "owner dashboard")
	code, _, _ = owner.do("GET", "/v1/journal/entries/"+entryID, nil, map[string]string{"X-Consistency-Token": jh.Get("X-Consistency-Token")})
	require.Equal(t, 200, code, "owner journal entry")
	secrets := []string{marker, ownerEmail}

	spec, err := gen.GetSpec()
	require.NoError(t, err)
	type op struct{ id, method, path string }
	var ops []op
	for path, item := range spec.Paths.Map() {
		for method, o := range item.Operations() {
			// The embedded spec capitalises operation ids (oapi-codegen).
			id := strings.ToLower(o.OperationID[:1]) + o.OperationID[1:]
			ops = append(ops, op{id, method, path})
			if !assert.Contains(t, routePolicies, id, "%s %s (%s) has no declared policy in routePolicies", method, path, id) {
				continue
			}
			pol := routePolicies[id]
			anonymous := o.Security != nil && len(*o.Security) == 0
			signed := o.Security != nil && len(*o.Security) == 1 && (*o.Security)[0]["webhookSignature"] != nil
			role, _ := o.Extensions["x-biosync-role"].(string)
			assert.Equal(t, anonymous, pol == public || pol == providerSigned, "%s: declared policy %d disagrees with the spec on anonymous access (security [])", id, pol)
			assert.Equal(t, signed, pol == webhookSigned, "%s: declared policy %d disagrees with the spec on the webhook signature", id, pol)
			assert.Equal(t, role == "admin", pol == adminOnly, "%s: declared policy %d disagrees with the spec's role %q", id, pol, role)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })

	target := func(o op) string {
		id := deletionID
		if strings.HasPrefix(o.path, "/v1/journal/") {
			id = entryID
		}
		p := strings.NewReplacer("{provider}", "oura", "{type}", "heart_rate", "{name}", "metrics", "{generation}", "99",
			"{event_id}", "3f0e7a1c-2b4d-4c6e-8f9a-0b1c2d3e4f5a", "{id}", id).Replace(o.path)
		switch o.id {
		case "listJournalEntries":
			p += "?from=2026-11-01&to=2026-11-30"
		case "getMetricSeries":
			p += "?bucket=raw&from=2026-11-19T00:00:00Z&to=2026-11-21T00:00:00Z"
		case "listSleepSessions":
			p += "?from=2026-11-18T00:00:00Z&to=2026-11-22T00:00:00Z"
		case "listNights":
			p += "?from=2026-11-18&to=2026-11-22"
		case "deleteMySamples":
			// A range without the owner's data: every caller deletes
			// only their own, and the owner's stays for the other reads.
			p += "?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z"
		}
		return p
	}
	call := func(c *client, o op) (int, string) {
		t.Helper()
		var rd io.Reader
		if o.method == http.MethodPost || o.method == http.MethodPut {
			rd = strings.NewReader(`{}`)
		}
		if o.id == "replaceJournalEntry" {
			// A valid entry, so the entry's owner decides the answer:
			// 404 for anyone else, a stale 409 for the owner (who keeps
			// the entry for the other reads).
			rd = strings.NewReader(`{"date":"2026-11-19"}`)
		}
		req, _ := http.NewRequest(o.method, c.base+target(o), rd)
		if rd != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if o.id == "replaceJournalEntry" || o.id == "deleteJournalEntry" {
			req.Header.Set("If-Match", `"99"`)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err, "%s %s", o.method, o.path)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	leaks := func(who string, o op, body string) {
		t.Helper()
		for _, s := range secrets {
			assert.NotContains(t, body, s, "%s %s as %s: the answer contains the owner's data", o.method, o.path, who)
		}
	}
	var ownerSaw bytes.Buffer
	for _, o := range ops {
		pol := routePolicies[o.id]
		// Fresh sessions per operation: logout and friends end them.
		principals := map[string]*client{
			"anonymous": anon,
			"owner":     login(ownerEmail),
			"other":     login("other-" + marker[3:] + "@example.org"),
			"admin":     login("admin-" + marker[3:] + "@example.org"),
		}
		for _, who := range []string{"anonymous", "other", "admin", "owner"} {
			code, body := call(principals[who], o)
			denied := code == 401 || code == 403
			switch {
			case pol == providerSigned:
				assert.NotEqual(t, 2, code/100, "%s %s as %s without the provider's signature answered %d", o.method, o.path, who, code)
			case pol == webhookSigned:
				assert.Equal(t, 401, code, "%s %s as %s without a signature", o.method, o.path, who)
			case pol == public:
				assert.False(t, denied, "%s %s is public; as %s it answered %d", o.method, o.path, who, code)
			case who == "anonymous":
				assert.Equal(t, 401, code, "%s %s anonymously", o.method, o.path)
			case pol == adminOnly && who != "admin":
				assert.Equal(t, 403, code, "%s %s as %s", o.method, o.path, who)
			case pol == ownResource && who != "owner":
				assert.Equal(t, 404, code, "%s %s (the owner's resource) as %s", o.method, o.path, who)
			default:
				assert.False(t, denied, "%s %s as %s = %d; the policy allows it", o.method, o.path, who, code)
			}
			if who == "owner" {
				ownerSaw.WriteString(body)
			} else {
				leaks(who, o, body)
			}
		}
	}
	// The owner's own answers did carry the markers: the leak check looked
	// for data that really was there.
	for _, s := range secrets {
		assert.Contains(t, ownerSaw.String(), s, "no answer to the owner contained the marker; the leak check would prove nothing")
	}
	_ = ownerID
}
