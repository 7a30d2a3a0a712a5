package auth

import (
	"net/url"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestTOTPAcceptsOneStepOfSkewAndOnlyLaterSteps: a code matches its own
// step and the neighbours (clock drift), never a step at or before the
// last accepted one, and nothing but six digits.
func TestTOTPAcceptsOneStepOfSkewAndOnlyLaterSteps(t *testing.T) {
	tp := TOTP{Issuer: "BioSync"}
	secret, raw, err := tp.Generate("user-1")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	q := u.Query()
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || q.Get("secret") != secret || q.Get("issuer") != "BioSync" ||
		q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" || len(secret) != 32 {
		t.Fatalf("key URI %s (%v)", raw, err)
	}
	now := time.Date(2026, 11, 26, 9, 0, 10, 0, time.UTC)
	step := now.Unix() / 30
	codeAt := func(s int64) string {
		c, err := totp.GenerateCodeCustom(secret, time.Unix(s*30, 0), TOTPOpts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, d := range []int64{-1, 0, 1} {
		if got, ok := tp.Match(secret, codeAt(step+d), now, 0); !ok || got != step+d {
			t.Errorf("code of step %+d: got %d %v", d, got-step, ok)
		}
	}
	for _, d := range []int64{-2, 2} {
		if _, ok := tp.Match(secret, codeAt(step+d), now, 0); ok {
			t.Errorf("code of step %+d accepted", d)
		}
	}
	if _, ok := tp.Match(secret, codeAt(step), now, step); ok {
		t.Error("a code of the last accepted step matched again")
	}
	for _, bad := range []string{"", "12345", "1234567", codeAt(step) + " "} {
		if _, ok := tp.Match(secret, bad, now, 0); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
