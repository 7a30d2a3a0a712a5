package auth

import (
	"crypto/subtle"
	"errors"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/biosync/biosync/commands/mfa"
)

// TOTP parameters. They are the defaults every authenticator app supports
// (RFC 6238 with Google Authenticator's key URI): changing them would
// break every enrolled device, so they are constants.
const (
	// TOTPPeriod is the length of a time step.
	TOTPPeriod = 30 * time.Second
	// TOTPDigits is the length of a code.
	TOTPDigits = otp.DigitsSix
	// TOTPSkew is how many steps before and after now are accepted, for
	// clock drift and typing time (one step, RFC 6238 §5.2).
	TOTPSkew = 1
	// totpSecretBytes is 160 bits, the HMAC-SHA1 block RFC 4226 recommends.
	totpSecretBytes = 20
)

// TOTPOpts are the code options shared by generation and checking (tests
// generate codes with totp.GenerateCodeCustom and these).
var TOTPOpts = totp.ValidateOpts{Period: uint(TOTPPeriod / time.Second), Digits: TOTPDigits, Algorithm: otp.AlgorithmSHA1}

// TOTP implements mfa.TOTP with pquerna/otp. Issuer is the name the
// authenticator app shows for the entry.
type TOTP struct {
	Issuer string
}

var _ mfa.TOTP = TOTP{}

// Generate returns a new random secret (base32, 160 bits) and its
// otpauth:// key URI for a QR code.
func (t TOTP) Generate(accountName string) (string, string, error) {
	issuer := t.Issuer
	if issuer == "" {
		issuer = "BioSync"
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: accountName, Period: TOTPOpts.Period,
		SecretSize: totpSecretBytes, Digits: TOTPOpts.Digits, Algorithm: TOTPOpts.Algorithm,
	})
	if err != nil {
		return "", "", errors.Join(errors.New("auth: generating a TOTP secret"), err)
	}
	return key.Secret(), key.URL(), nil
}

// Match returns the earliest time step in [now-TOTPSkew, now+TOTPSkew] that
// is later than after and whose code equals code (compared in constant
// time). Returning the step lets the caller refuse it next time, so a
// code works once.
func (t TOTP) Match(secret, code string, at time.Time, after int64) (int64, bool) {
	if len(code) != TOTPDigits.Length() {
		return 0, false
	}
	period := int64(TOTPOpts.Period)
	now := at.Unix() / period
	for step := now - TOTPSkew; step <= now+TOTPSkew; step++ {
		if step <= after || step < 0 {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*period, 0), TOTPOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}
