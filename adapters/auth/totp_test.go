package auth

import (
	"net/url"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTOTPAcceptsOneStepOfSkewAndOnlyLaterSteps: a code matches its own
// step and the neighbours (clock drift), never a step at or before the
// last accepted one, and nothing but six digits.
func TestTOTPAcceptsOneStepOfSkewAndOnlyLaterSteps(t *testing.T) {
	tp := TOTP{Issuer: "BioSync"}
	secret, raw, err := tp.Generate("user-1")
	require.NoError(t, err)
	u, err := url.Parse(raw)
	q := u.Query()
	require.NoError(t, err, "key URI %s (%v)", raw, err)
	require.Equal(t, "otpauth", u.Scheme, "key URI %s (%v)", raw, err)
	require.Equal(t, "totp", u.Host, "key URI %s (%v)", raw, err)
	require.Equal(t, secret, q.Get("secret"), "key URI %s (%v)", raw, err)
	require.Equal(t, "BioSync", q.Get("issuer"), "key URI %s (%v)", raw, err)
	require.Equal(t, "SHA1", q.Get("algorithm"), "key URI %s (%v)", raw, err)
	require.Equal(t, "6", q.Get("digits"), "key URI %s (%v)", raw, err)
	require.Equal(t, "30", q.Get("period"), "key URI %s (%v)", raw, err)
	require.Len(t, secret, 32, "key URI %s (%v)", raw, err)
	now := time.Date(2026, 11, 26, 9, 0, 10, 0, time.UTC)
	step := now.Unix() / 30
	codeAt := func(s int64) string {
		c, err := totp.GenerateCodeCustom(secret, time.Unix(s*30, 0), TOTPOpts)
		require.NoError(t, err)
		return c
	}
	for _, d := range []int64{-1, 0, 1} {
		got, ok := tp.Match(secret, codeAt(step+d), now, 0)
		assert.True(t, ok, "code of step %+d rejected", d)
		assert.Equal(t, step+d, got, "matched step for the code of step %+d", d)
	}
	for _, d := range []int64{-2, 2} {
		_, ok := tp.Match(secret, codeAt(step+d), now, 0)
		assert.False(t, ok, "code of step %+d accepted", d)
	}
	_, ok := tp.Match(secret, codeAt(step), now, step)
	assert.False(t, ok, "a code of the last accepted step matched again")
	for _, bad := range []string{"", "12345", "1234567", codeAt(step) + " "} {
		_, ok := tp.Match(secret, bad, now, 0)
		assert.False(t, ok, "%q accepted", bad)
	}
}
