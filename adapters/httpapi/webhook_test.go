package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

const webhookBody = `{"user_id":"0b0c8d5e-8f1a-4e63-9d7c-1a2b3c4d5e6f","source":{"provider":"oura","device":"ring-3"},` +
	`"samples":[{"type":"heart_rate","start":"2026-11-20T07:00:00+09:00","end":"2026-11-20T07:01:00+09:00","value":61,"unit":"bpm"}],` +
	`"sleep_sessions":[{"start":"2026-11-19T23:00:00+09:00","end":"2026-11-20T06:30:00+09:00","stages":[{"stage":"deep","start":"2026-11-19T23:30:00+09:00","end":"2026-11-20T00:30:00+09:00"}]}]}`

var acceptedToken = eventstore.Token{{Partition: 3, Offset: 42}}

// signed builds a webhook request for body signed with key at ts.
func signed(body string, key []byte, id string, ts time.Time) *http.Request {
	r := req(http.MethodPost, "/v1/webhooks/push", body)
	webhooks.SetHeaders(r.Header, key, id, ts, []byte(body))
	return r
}

func acceptAll(h *harness) {
	h.ingestor.push = func(_ context.Context, cmd commands.PushSamples) (commands.Accepted, error) {
		return commands.Accepted{EventID: eventstore.DeterministicID("push", cmd.DeliveryID), Token: acceptedToken}, nil
	}
}

func TestWebhookValidDelivery(t *testing.T) {
	h := newHarness(t)
	acceptAll(h)
	rec := h.do(signed(webhookBody, newKey, "msg_1", testNow))
	require.Falsef(t, rec.Code != http.StatusAccepted, "status %d: %s", rec.Code, rec.Body)
	if got := rec.Header().Get(edge.HeaderConsistencyToken); got != acceptedToken.String() {
		require.FailNow(t, fmt.Sprintf("consistency token %q, want %q", got, acceptedToken.String()))
	}
	var out struct {
		EventID   uuid.UUID `json:"event_id"`
		Duplicate bool      `json:"duplicate"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.EventID != eventstore.DeterministicID("push", "msg_1") || out.Duplicate {
		require.FailNow(t, fmt.Sprintf("body %s (%v)", rec.Body, err))
	}
	cmd := h.ingestor.calls[0]
	require.Falsef(t, cmd.UserID != alice || cmd.DeliveryID != "msg_1" || cmd.Channel != "webhook" || len(cmd.Batch.Samples) != 1 || len(cmd.Batch.SleepSessions) != 1, "command %+v", cmd)
}

func TestWebhookBadInput(t *testing.T) {
	reserialised := func() string {
		var v any
		_ = json.Unmarshal([]byte(webhookBody), &v)
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	}()
	big := `{"user_id":"0b0c8d5e-8f1a-4e63-9d7c-1a2b3c4d5e6f","source":{"provider":"x"},"samples":[` +
		strings.Repeat(`{"type":"steps","start":"2026-11-20T07:00:00Z","end":"2026-11-20T07:01:00Z","value":1,"unit":"count"},`, 12000) + `]}`

	cases := []struct {
		name   string
		build  func() *http.Request
		status int
		slug   string
		field  string
	}{
		{"missing webhook-id", func() *http.Request {
			r := signed(webhookBody, newKey, "msg_1", testNow)
			r.Header.Del("webhook-id")
			return r
		}, 401, "webhook-headers-missing", ""},
		{"missing webhook-timestamp", func() *http.Request {
			r := signed(webhookBody, newKey, "msg_1", testNow)
			r.Header.Del("webhook-timestamp")
			return r
		}, 401, "webhook-headers-missing", ""},
		{"missing webhook-signature", func() *http.Request {
			r := signed(webhookBody, newKey, "msg_1", testNow)
			r.Header.Del("webhook-signature")
			return r
		}, 401, "webhook-headers-missing", ""},
		{"no headers at all", func() *http.Request {
			return req(http.MethodPost, "/v1/webhooks/push", webhookBody)
		}, 401, "webhook-headers-missing", ""},
		{"garbled timestamp", func() *http.Request {
			r := signed(webhookBody, newKey, "msg_1", testNow)
			r.Header.Set("webhook-timestamp", "17e8")
			return r
		}, 401, "webhook-headers-invalid", ""},
		{"webhook-id with a dot", func() *http.Request {
			return signed(webhookBody, newKey, "msg.1", testNow)
		}, 401, "webhook-headers-invalid", ""},
		{"garbled signature", func() *http.Request {
			r := signed(webhookBody, newKey, "msg_1", testNow)
			r.Header.Set("webhook-signature", "v1,!!!not-base64!!!")
			return r
		}, 401, "webhook-signature-invalid", ""},
		{"signature without version", func() *http.Request {
			r := signed(webhookBody, newKey, "msg_1", testNow)
			r.Header.Set("webhook-signature", strings.TrimPrefix(r.Header.Get("webhook-signature"), "v1,"))
			return r
		}, 401, "webhook-signature-invalid", ""},
		{"wrong secret", func() *http.Request {
			return signed(webhookBody, wrongKey, "msg_1", testNow)
		}, 401, "webhook-signature-invalid", ""},
		{"re-serialised body", func() *http.Request {
			r := req(http.MethodPost, "/v1/webhooks/push", reserialised)
			webhooks.SetHeaders(r.Header, newKey, "msg_1", testNow, []byte(webhookBody))
			return r
		}, 401, "webhook-signature-invalid", ""},
		{"signature of another delivery id", func() *http.Request {
			r := signed(webhookBody, newKey, "msg_1", testNow)
			r.Header.Set("webhook-id", "msg_2")
			return r
		}, 401, "webhook-signature-invalid", ""},
		{"timestamp 6 minutes old", func() *http.Request {
			return signed(webhookBody, newKey, "msg_1", testNow.Add(-6*time.Minute))
		}, 401, "webhook-timestamp-stale", ""},
		{"timestamp 6 minutes ahead", func() *http.Request {
			return signed(webhookBody, newKey, "msg_1", testNow.Add(6*time.Minute))
		}, 401, "webhook-timestamp-stale", ""},
		{"unsigned malformed JSON is rejected by the signature, not the parser", func() *http.Request {
			r := req(http.MethodPost, "/v1/webhooks/push", `{"user_id":`)
			webhooks.SetHeaders(r.Header, wrongKey, "msg_1", testNow, []byte(`{"user_id":`))
			return r
		}, 401, "webhook-signature-invalid", ""},
		{"oversized body", func() *http.Request {
			return signed(big, newKey, "msg_1", testNow)
		}, 413, "payload-too-large", ""},
		{"oversized body without Content-Length", func() *http.Request {
			r := signed(big, newKey, "msg_1", testNow)
			r.ContentLength = -1
			return r
		}, 413, "payload-too-large", ""},
		{"wrong content type", func() *http.Request {
			r := signed(webhookBody, newKey, "msg_1", testNow)
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, 415, "unsupported-media-type", ""},
		{"form content type", func() *http.Request {
			r := signed(webhookBody, newKey, "msg_1", testNow)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 415, "unsupported-media-type", ""},
		{"malformed JSON", func() *http.Request {
			return signed(`{"user_id": "0b0c8d5e`, newKey, "msg_1", testNow)
		}, 400, "malformed-request", ""},
		{"wrong JSON type", func() *http.Request {
			return signed(strings.Replace(webhookBody, `"value":61`, `"value":"61"`, 1), newKey, "msg_1", testNow)
		}, 400, "malformed-request", ""},
		{"unknown metric type", func() *http.Request {
			return signed(strings.Replace(webhookBody, `"heart_rate"`, `"heart_rat"`, 1), newKey, "msg_1", testNow)
		}, 422, "validation", "/samples/0/type"},
		{"unknown unit", func() *http.Request {
			return signed(strings.Replace(webhookBody, `"bpm"`, `"furlongs"`, 1), newKey, "msg_1", testNow)
		}, 422, "validation", "/samples/0/unit"},
		{"unknown field", func() *http.Request {
			return signed(strings.Replace(webhookBody, `{"user_id"`, `{"role":"admin","user_id"`, 1), newKey, "msg_1", testNow)
		}, 422, "validation", "/role"},
		{"missing user_id", func() *http.Request {
			return signed(strings.Replace(webhookBody, `"user_id":"0b0c8d5e-8f1a-4e63-9d7c-1a2b3c4d5e6f",`, ``, 1), newKey, "msg_1", testNow)
		}, 422, "validation", "/user_id"},
		{"bad sleep stage", func() *http.Request {
			return signed(strings.Replace(webhookBody, `"deep"`, `"dreaming"`, 1), newKey, "msg_1", testNow)
		}, 422, "validation", "/sleep_sessions/0/stages/0/stage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			acceptAll(h)
			p := problemOf(t, h.do(tc.build()), tc.status, tc.slug)
			if tc.field != "" {
				hasField(t, p, tc.field)
			}
			if n := h.ingestor.count(); n != 0 {
				require.FailNow(t, fmt.Sprintf("the command ran %d times for a rejected delivery", n))
			}
		})
	}
}

func TestWebhookSecretRotation(t *testing.T) {
	for name, build := range map[string]func() *http.Request{
		"old secret": func() *http.Request { return signed(webhookBody, oldKey, "msg_1", testNow) },
		"new secret": func() *http.Request { return signed(webhookBody, newKey, "msg_1", testNow) },
		"both signatures": func() *http.Request {
			r := signed(webhookBody, oldKey, "msg_1", testNow)
			r.Header.Set("webhook-signature", webhooks.Sign(newKey, "msg_1", testNow, []byte(webhookBody))+" "+r.Header.Get("webhook-signature"))
			return r
		},
		"one wrong and one right": func() *http.Request {
			r := signed(webhookBody, newKey, "msg_1", testNow)
			r.Header.Set("webhook-signature", webhooks.Sign(wrongKey, "msg_1", testNow, []byte(webhookBody))+" "+r.Header.Get("webhook-signature"))
			return r
		},
		"4 minutes skew": func() *http.Request { return signed(webhookBody, newKey, "msg_1", testNow.Add(-4*time.Minute)) },
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			acceptAll(h)
			if rec := h.do(build()); rec.Code != http.StatusAccepted {
				require.FailNow(t, fmt.Sprintf("status %d: %s", rec.Code, rec.Body))
			}
		})
	}
}

func TestWebhookReplayIsAcceptedWithoutEffect(t *testing.T) {
	h := newHarness(t)
	seen := map[string]bool{}
	h.ingestor.push = func(_ context.Context, cmd commands.PushSamples) (commands.Accepted, error) {
		dup := seen[cmd.DeliveryID]
		seen[cmd.DeliveryID] = true
		return commands.Accepted{EventID: eventstore.DeterministicID("push", cmd.DeliveryID), Token: acceptedToken, Duplicate: dup}, nil
	}
	for i, wantDup := range []bool{false, true, true} {
		rec := h.do(signed(webhookBody, newKey, "msg_7", testNow.Add(time.Duration(i)*time.Second)))
		require.Falsef(t, rec.Code != http.StatusAccepted, "delivery %d: status %d", i, rec.Code)
		if dup := strings.Contains(rec.Body.String(), `"duplicate":true`); dup != wantDup {
			require.FailNow(t, fmt.Sprintf("delivery %d: %s", i, rec.Body))
		}
		require.Falsef(t, rec.Header().Get(edge.HeaderConsistencyToken) == "", "delivery %d: a duplicate still returns a consistency token", i)
	}
}

func TestWebhookCommandFailures(t *testing.T) {
	cases := []struct {
		err    error
		status int
		slug   string
		field  string
	}{
		{domain.ErrUnavailable, 503, "unavailable", ""},
		{&domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/user_id", Detail: "unknown user"}}}, 422, "validation", "/user_id"},
	}
	for _, tc := range cases {
		t.Run(tc.slug, func(t *testing.T) {
			h := newHarness(t)
			h.ingestor.push = func(context.Context, commands.PushSamples) (commands.Accepted, error) {
				return commands.Accepted{}, tc.err
			}
			rec := h.do(signed(webhookBody, newKey, "msg_1", testNow))
			p := problemOf(t, rec, tc.status, tc.slug)
			if tc.field != "" {
				hasField(t, p, tc.field)
			}
			if tc.status == 503 {
				require.False(t, rec.Header().Get("Retry-After") == "", "503 without Retry-After")
				require.False(t, rec.Header().Get(edge.HeaderConsistencyToken) != "", "a failed append must not hand out a consistency token")
			}
		})
	}
}

func TestWebhookLimitIsConfigurable(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *Deps) { c.BodyLimit = 100 })
	acceptAll(h)
	problemOf(t, h.do(signed(webhookBody, newKey, "msg_1", testNow)), 413, "payload-too-large")
	require.False(t, !bytes.Contains([]byte(h.logs.String()), []byte(`"status":413`)), "the 413 was not access-logged")
}

// The signature check accepts signatures split over several
// webhook-signature header lines (as a proxy may send them); what it
// accepts, the rest of the request's path accepts too, instead of passing
// the signature check and then failing with 400.
func TestAWebhookSignatureSplitOverHeaderLinesIsOneDelivery(t *testing.T) {
	h := newHarness(t)
	acceptAll(h)
	r := signed(webhookBody, newKey, "msg_split", testNow)
	sig := r.Header.Get(webhooks.HeaderSignature)
	r.Header.Del(webhooks.HeaderSignature)
	r.Header.Add(webhooks.HeaderSignature, "v1,c2lnbmVkIGJ5IGFub3RoZXIga2V5")
	r.Header.Add(webhooks.HeaderSignature, sig)
	rec := h.do(r)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())

	// Split, but no line carries a valid signature: the signature check says no.
	bad := signed(webhookBody, []byte("a key nobody configured, 32 bytes!"), "msg_split_bad", testNow)
	bad.Header.Add(webhooks.HeaderSignature, "v1,c2lnbmVkIGJ5IGFub3RoZXIga2V5")
	problemOf(t, h.do(bad), http.StatusUnauthorized, "webhook-signature-invalid")
}
