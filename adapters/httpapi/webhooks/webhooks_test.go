package webhooks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Reference vector shared by the Standard Webhooks libraries
// (github.com/standard-webhooks/standard-webhooks, libraries/go/webhook_test.go
// TestWebhookSign, libraries/python/tests/test_webhooks.py test_sign_function,
// libraries/javascript/src/webhook.test.ts "sign function works").
const (
	refSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	refMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	refTimestamp = 1614265330
	refPayload   = `{"test": 2432232314}`
	refSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	// refBadSignature is the reference suites' "invalid signature" value: the
	// valid one with its last data character changed.
	refBadSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
	// refOtherSignature is the unrelated signature the reference suites mix
	// into multi-signature headers.
	refOtherSignature = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
)

var refTime = time.Unix(refTimestamp, 0)

func mustKey(t testing.TB, s string) []byte {
	t.Helper()
	k, err := ParseSecret(s)
	require.NoError(t, err, "ParseSecret(%q)", s)
	return k
}

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

func refHeaders() http.Header {
	h := http.Header{}
	h.Set(HeaderID, refMsgID)
	h.Set(HeaderTimestamp, strconv.Itoa(refTimestamp))
	h.Set(HeaderSignature, refSignature)
	return h
}

func TestSignReferenceVector(t *testing.T) {
	key := mustKey(t, refSecret)
	got := Sign(key, refMsgID, refTime, []byte(refPayload))
	require.Equal(t, refSignature, got, "Sign = %q, want %q", got, refSignature)
}

func TestVerifyReferenceVector(t *testing.T) {
	v := Verifier{Keys: [][]byte{mustKey(t, refSecret)}, Now: fixedNow(refTime)}
	d, err := v.Verify(refHeaders(), []byte(refPayload))
	require.NoError(t, err, "Verify")
	require.Equal(t, refMsgID, d.ID, "Delivery = %+v", d)
	require.True(t, d.Timestamp.Equal(refTime), "Delivery = %+v", d)
	require.Equal(t, time.UTC, d.Timestamp.Location(), "Delivery = %+v", d)
}

func TestVerifyReferenceFailures(t *testing.T) {
	v := Verifier{Keys: [][]byte{mustKey(t, refSecret)}, Now: fixedNow(refTime)}
	cases := []struct {
		name    string
		edit    func(http.Header)
		wantErr error
	}{
		{"invalid signature", func(h http.Header) { h.Set(HeaderSignature, refBadSignature) }, ErrNoMatchingSignature},
		{"partial signature", func(h http.Header) { h.Set(HeaderSignature, refSignature[:8]) }, ErrNoMatchingSignature},
		{"empty v1 signature", func(h http.Header) { h.Set(HeaderSignature, "v1,") }, ErrNoMatchingSignature},
		{"garbage signature", func(h http.Header) { h.Set(HeaderSignature, "v1,dawfeoifkpqwoekfpqoekf") }, ErrNoMatchingSignature},
		{"text timestamp", func(h http.Header) { h.Set(HeaderTimestamp, "hello") }, ErrInvalidTimestamp},
		{"missing id", func(h http.Header) { h.Del(HeaderID) }, ErrMissingHeader},
		{"missing timestamp", func(h http.Header) { h.Del(HeaderTimestamp) }, ErrMissingHeader},
		{"missing signature", func(h http.Header) { h.Del(HeaderSignature) }, ErrMissingHeader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := refHeaders()
			tc.edit(h)
			_, err := v.Verify(h, []byte(refPayload))
			require.ErrorIs(t, err, tc.wantErr, "err = %v, want %v", err, tc.wantErr)
		})
	}
}

func TestVerifyReferenceMultiSignature(t *testing.T) {
	v := Verifier{Keys: [][]byte{mustKey(t, refSecret)}, Now: fixedNow(refTime)}
	h := refHeaders()
	h.Set(HeaderSignature, strings.Join([]string{
		"v1," + refOtherSignature,
		"v2," + refOtherSignature,
		refSignature,
		"v1," + refOtherSignature,
	}, " "))
	_, err := v.Verify(h, []byte(refPayload))
	require.NoError(t, err, "Verify")
}

func TestParseSecret(t *testing.T) {
	key := mustKey(t, refSecret)
	require.Len(t, key, 24, "reference key length = %d, want 24", len(key))
	for _, bad := range []string{
		"",
		"whsec_",
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", // prefix required here
		"whsec_not base64!",
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16)), // too short
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)), // too long
		" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	} {
		_, err := ParseSecret(bad)
		assert.ErrorIs(t, err, ErrInvalidSecret, "ParseSecret(%q) err = %v, want ErrInvalidSecret", bad, err)
	}
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	require.NoError(t, err)
	b, err := NewSecret()
	require.NoError(t, err)
	require.NotEqual(t, b, a, "two NewSecret calls returned the same secret")
	key := mustKey(t, a)
	require.Len(t, key, 32, "key length = %d, want 32", len(key))
}

func TestNewMessageID(t *testing.T) {
	a, err := NewMessageID()
	require.NoError(t, err)
	b, _ := NewMessageID()
	require.NotEqual(t, b, a, "ids %q %q", a, b)
	require.True(t, strings.HasPrefix(a, "msg_"), "ids %q %q", a, b)
	require.NotContains(t, a, ".", "ids %q %q", a, b)
}

// sample is a signed delivery built with SetHeaders for the scenario tests.
type sample struct {
	key  []byte
	now  time.Time
	body []byte
	h    http.Header
}

func newSample(t *testing.T, signedAt time.Time) sample {
	t.Helper()
	secret, err := NewSecret()
	require.NoError(t, err)
	s := sample{
		key:  mustKey(t, secret),
		now:  time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
		body: []byte(`{"user_id":"4f0c","samples":[{"type":"steps","value":120}]}`),
		h:    http.Header{},
	}
	if signedAt.IsZero() {
		signedAt = s.now
	}
	SetHeaders(s.h, s.key, "msg_1", signedAt, s.body)
	return s
}

func (s sample) verifier(keys ...[]byte) Verifier {
	if len(keys) == 0 {
		keys = [][]byte{s.key}
	}
	return Verifier{Keys: keys, Now: fixedNow(s.now)}
}

func TestVerifyValid(t *testing.T) {
	s := newSample(t, time.Time{})
	d, err := s.verifier().Verify(s.h, s.body)
	require.NoError(t, err, "Verify")
	require.Equal(t, "msg_1", d.ID, "Delivery = %+v", d)
	require.True(t, d.Timestamp.Equal(s.now), "Delivery = %+v", d)
}

func TestVerifyGarbledHeaders(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(http.Header)
		wantErr error
	}{
		{"empty id", func(h http.Header) { h.Set(HeaderID, "") }, ErrMissingHeader},
		{"id with dot", func(h http.Header) { h.Set(HeaderID, "msg.1") }, ErrInvalidID},
		{"blank signature", func(h http.Header) { h.Set(HeaderSignature, "   ") }, ErrMissingHeader},
		{"negative timestamp", func(h http.Header) { h.Set(HeaderTimestamp, "-1741944413") }, ErrInvalidTimestamp},
		{"signed timestamp", func(h http.Header) { h.Set(HeaderTimestamp, "+1741944413") }, ErrInvalidTimestamp},
		{"float timestamp", func(h http.Header) { h.Set(HeaderTimestamp, "1741944413.0") }, ErrInvalidTimestamp},
		{"huge timestamp", func(h http.Header) { h.Set(HeaderTimestamp, "99999999999999999999999") }, ErrInvalidTimestamp},
		{"millisecond timestamp", func(h http.Header) { h.Set(HeaderTimestamp, "1741944413000") }, ErrInvalidTimestamp},
		{"no version", func(h http.Header) { h.Set(HeaderSignature, strings.TrimPrefix(h.Get(HeaderSignature), "v1,")) }, ErrNoMatchingSignature},
		{"unknown version only", func(h http.Header) {
			h.Set(HeaderSignature, "v1a,"+strings.TrimPrefix(h.Get(HeaderSignature), "v1,"))
		}, ErrNoMatchingSignature},
		{"url-safe base64", func(h http.Header) {
			sig := strings.NewReplacer("+", "-", "/", "_").Replace(h.Get(HeaderSignature))
			if sig == h.Get(HeaderSignature) {
				sig = "v1,%%%"
			}
			h.Set(HeaderSignature, sig)
		}, ErrNoMatchingSignature},
		{"changed id", func(h http.Header) { h.Set(HeaderID, "msg_2") }, ErrNoMatchingSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSample(t, time.Time{})
			tc.edit(s.h)
			_, err := s.verifier().Verify(s.h, s.body)
			require.ErrorIs(t, err, tc.wantErr, "err = %v, want %v", err, tc.wantErr)
		})
	}
}

func TestVerifyWrongSecret(t *testing.T) {
	s := newSample(t, time.Time{})
	other, _ := NewSecret()
	_, err := s.verifier(mustKey(t, other)).Verify(s.h, s.body)
	require.ErrorIs(t, err, ErrNoMatchingSignature, "err = %v, want ErrNoMatchingSignature", err)
}

func TestVerifyNoKeys(t *testing.T) {
	s := newSample(t, time.Time{})
	for _, keys := range [][][]byte{nil, {{}}} {
		v := Verifier{Keys: keys, Now: fixedNow(s.now)}
		_, err := v.Verify(s.h, s.body)
		require.ErrorIs(t, err, ErrNoMatchingSignature, "keys %v: err = %v, want ErrNoMatchingSignature", keys, err)
	}
}

func TestVerifyReserialisedBodyFails(t *testing.T) {
	s := newSample(t, time.Time{})
	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, s.body, "", "  "))
	var a, b any
	_ = json.Unmarshal(s.body, &a)
	_ = json.Unmarshal(pretty.Bytes(), &b)
	require.True(t, jsonEqual(a, b), "test setup: indented JSON is not the same document")
	_, err := s.verifier().Verify(s.h, pretty.Bytes())
	require.ErrorIs(t, err, ErrNoMatchingSignature, "err = %v, want ErrNoMatchingSignature", err)
	_, err = s.verifier().Verify(s.h, append(s.body, '\n'))
	require.ErrorIs(t, err, ErrNoMatchingSignature, "trailing newline: err = %v, want ErrNoMatchingSignature", err)
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestVerifyTolerance(t *testing.T) {
	now := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	cases := []struct {
		name   string
		offset time.Duration
		tol    time.Duration
		ok     bool
	}{
		{"6 minutes in the past", -6 * time.Minute, 0, false},
		{"6 minutes in the future", 6 * time.Minute, 0, false},
		{"5m01s in the past", -5*time.Minute - time.Second, 0, false},
		{"5m01s in the future", 5*time.Minute + time.Second, 0, false},
		{"exactly 5 minutes in the past", -5 * time.Minute, 0, true},
		{"exactly 5 minutes in the future", 5 * time.Minute, 0, true},
		{"4 minutes in the past", -4 * time.Minute, 0, true},
		{"custom tolerance rejects", -2 * time.Minute, time.Minute, false},
		{"custom tolerance accepts", -10 * time.Minute, 15 * time.Minute, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSample(t, now.Add(tc.offset))
			s.now = now
			v := s.verifier()
			v.Tolerance = tc.tol
			_, err := v.Verify(s.h, s.body)
			if tc.ok && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrTimestampOutOfTolerance) {
				t.Fatalf("err = %v, want ErrTimestampOutOfTolerance", err)
			}
		})
	}
}

func TestVerifyDefaultClock(t *testing.T) {
	s := newSample(t, time.Now())
	_, err := (Verifier{Keys: [][]byte{s.key}}).Verify(s.h, s.body)
	require.NoError(t, err, "Verify with real clock")
}

func TestVerifyKeyRotation(t *testing.T) {
	s := newSample(t, time.Time{}) // signed with the old key only
	newSecret, _ := NewSecret()
	newKey := mustKey(t, newSecret)

	_, err := s.verifier(newKey, s.key).Verify(s.h, s.body)
	require.NoError(t, err, "old signature with both keys live")
	_, err = s.verifier(newKey).Verify(s.h, s.body)
	require.ErrorIs(t, err, ErrNoMatchingSignature, "old signature after old key retired: err = %v", err)

	// Sender signs with the new key: verifies while both keys are live and
	// after the old key is retired.
	h := http.Header{}
	SetHeaders(h, newKey, "msg_1", s.now, s.body)
	_, err = s.verifier(s.key, newKey).Verify(h, s.body)
	require.NoError(t, err, "new signature with both keys live")
	_, err = s.verifier(newKey).Verify(h, s.body)
	require.NoError(t, err, "new signature with new key only")
}

func TestVerifySeveralSignatures(t *testing.T) {
	s := newSample(t, time.Time{})
	newSecret, _ := NewSecret()
	newKey := mustKey(t, newSecret)
	oldSig := s.h.Get(HeaderSignature)
	newSig := Sign(newKey, "msg_1", s.now, s.body)

	// Sender mid-rotation: both signatures in one header; a receiver that
	// knows only one of the keys accepts.
	s.h.Set(HeaderSignature, "v1a,aGVsbG8= "+oldSig+"  "+newSig)
	for name, v := range map[string]Verifier{"old": s.verifier(), "new": s.verifier(newKey)} {
		_, err := v.Verify(s.h, s.body)
		assert.NoError(t, err, "receiver with %s key", name)
	}

	// Signatures split over several header fields by a proxy.
	h := http.Header{}
	h.Set(HeaderID, "msg_1")
	h.Set(HeaderTimestamp, s.h.Get(HeaderTimestamp))
	h.Add(HeaderSignature, "v1,"+refOtherSignature)
	h.Add(HeaderSignature, newSig)
	_, err := s.verifier(newKey).Verify(h, s.body)
	assert.NoError(t, err, "multi-field header")
}

func TestVerifyHeaderCaseInsensitive(t *testing.T) {
	s := newSample(t, time.Time{})
	// Header names arrive in canonical form from net/http; check both
	// spellings resolve to the same field.
	h := http.Header{}
	h.Set("Webhook-Id", s.h.Get(HeaderID))
	h.Set("WEBHOOK-TIMESTAMP", s.h.Get(HeaderTimestamp))
	h.Set("webhook-signature", s.h.Get(HeaderSignature))
	_, err := s.verifier().Verify(h, s.body)
	require.NoError(t, err, "Verify")
}
