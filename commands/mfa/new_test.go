package mfa_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/biosync/biosync/adapters/auth"
	"github.com/biosync/biosync/commands/commandstest"
	"github.com/biosync/biosync/commands/mfa"
)

// A missing MFA dependency used to surface as a 503 on the first MFA
// request; now the process does not start.
func TestNewNamesTheMissingDependency(t *testing.T) {
	full := mfa.Deps{Store: struct{ mfa.Store }{}, TOTP: auth.TOTP{}, Secrets: struct{ mfa.SecretSealer }{},
		RecoveryCodeKey: []byte("k"), Accounts: &commandstest.Accounts{}, Passwords: &commandstest.Passwords{}}
	for name, cut := range map[string]func(*mfa.Deps){
		"Store":           func(d *mfa.Deps) { d.Store = nil },
		"TOTP":            func(d *mfa.Deps) { d.TOTP = nil },
		"Secrets":         func(d *mfa.Deps) { d.Secrets = nil },
		"RecoveryCodeKey": func(d *mfa.Deps) { d.RecoveryCodeKey = nil },
		"Accounts":        func(d *mfa.Deps) { d.Accounts = nil },
		"Passwords":       func(d *mfa.Deps) { d.Passwords = nil },
	} {
		d := full
		cut(&d)
		_, err := mfa.New(d)
		assert.ErrorContains(t, err, name)
	}
	_, err := mfa.New(full)
	assert.NoError(t, err)
}
