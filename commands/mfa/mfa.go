// Package mfa runs TOTP multi-factor authentication: enrolment and its
// confirmation, turning it off, renewing recovery codes, and the second
// factor of a login (CheckLogin, which commands/sessions reaches through
// its SecondFactor port). It keeps synchronous command-side state in
// PostgreSQL (secrets sealed with the user's data key, spent time steps,
// hashed recovery codes) and appends no events.
package mfa

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/domain"
)

// RecoveryCodeCount is how many recovery codes a set has.
const RecoveryCodeCount = 10

// recoveryAlphabet has 32 letters and digits without 0/o, 1/l: 5 bits a
// character, read aloud or typed from paper without confusion.
const recoveryAlphabet = "abcdefghijkmnpqrstuvwxyz23456789"

// recoveryCodeChars is the length of a recovery code without its hyphen:
// 50 random bits.
const recoveryCodeChars = 10

// totpSecretType is the associated data under which a TOTP secret is
// sealed with the user's data key; it can never be confused with an event
// payload (event types differ) and the user id is bound in too.
const totpSecretType = "mfa.totp_secret"

// maxCodeLen bounds what is normalised and hashed at all.
const maxCodeLen = 64

// Store keeps TOTP enrolments and recovery codes (PostgreSQL in
// adapters/postgres). Turning MFA on or off revokes every session of the
// user and retires their unused password-reset tokens in the same
// transaction, like a password change, so no session opened and no reset
// link mailed under the old rule survives.
type Store interface {
	// TOTPState returns the enrolment of userID; domain.ErrNotFound when
	// there is none.
	TOTPState(ctx context.Context, userID uuid.UUID) (commands.TOTPState, error)
	// StartTOTP stores a pending secret, replacing a pending one;
	// domain.ErrConflict when MFA is already on.
	StartTOTP(ctx context.Context, userID uuid.UUID, sealed []byte) error
	// EnableTOTP confirms the pending secret sealed (domain.ErrConflict
	// when MFA is already on or the pending secret is no longer sealed),
	// records step as used, replaces the recovery codes, revokes every
	// session and retires the unused PurposeResetPassword tokens.
	EnableTOTP(ctx context.Context, userID uuid.UUID, sealed []byte, step int64, codeHashes [][]byte) error
	// DisableTOTP removes the enrolment and the recovery codes, revokes
	// every session and retires the unused PurposeResetPassword tokens;
	// domain.ErrConflict when MFA is off.
	DisableTOTP(ctx context.Context, userID uuid.UUID) error
	// AcceptStep records step as the last used one if it is later than the
	// stored one (a conditional UPDATE: of two concurrent uses of one code
	// exactly one gets true).
	AcceptStep(ctx context.Context, userID uuid.UUID, step int64) (bool, error)
	// UseRecoveryCode spends the unused code hashed as hash; false when
	// there is none (unknown or already used).
	UseRecoveryCode(ctx context.Context, userID uuid.UUID, hash []byte) (bool, error)
	// ReplaceRecoveryCodes voids every recovery code and stores the new
	// set; domain.ErrConflict when MFA is off.
	ReplaceRecoveryCodes(ctx context.Context, userID uuid.UUID, codeHashes [][]byte) error
}

// TOTP generates secrets and checks codes (RFC 6238: SHA-1, 6 digits, 30 s
// steps; pquerna/otp in adapters/auth).
type TOTP interface {
	// Generate returns a new base32 secret and its otpauth:// URL.
	Generate(accountName string) (secret, url string, err error)
	// Match returns the earliest time step later than after, within one
	// step of at, whose code is code; false when there is none.
	Match(secret, code string, at time.Time, after int64) (step int64, ok bool)
}

// SecretSealer encrypts small per-user secrets with the user's data key
// (eventstore.Keyring), so destroying the key on erasure makes them
// unreadable everywhere at once, backups included.
type SecretSealer interface {
	Seal(ctx context.Context, userID, id uuid.UUID, typ string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, userID, id uuid.UUID, typ string, sealed []byte) ([]byte, error)
}

// Deps are what MFA needs; all but Audit, Logger and Now are required
// (without MFA, cmd wires no Service: the MFA routes answer 503 and logins
// need no second factor).
type Deps struct {
	// Store keeps enrolments, spent steps and recovery codes.
	Store Store
	// TOTP generates secrets and checks codes.
	TOTP TOTP
	// Secrets seals TOTP secrets at rest with the user's data key.
	Secrets SecretSealer
	// RecoveryCodeKey keys the HMAC under which recovery codes are stored.
	RecoveryCodeKey []byte
	// Accounts and Passwords re-check the password before a change.
	Accounts  commands.Accounts
	Passwords commands.PasswordHasher
	// Audit records MFA changes and failed re-checks; nil means auditing
	// is not configured.
	Audit commands.Audit
	// Logger reports audit entries that could not be stored; nil discards.
	Logger *slog.Logger
	// Now is the clock codes are checked against.
	Now commands.Clock
}

// Service runs the MFA commands.
type Service struct{ d Deps }

// New checks d and returns the service; a missing required dependency is
// an error naming it.
func New(d Deps) (*Service, error) {
	if err := commands.Required("mfa", "Store", d.Store, "TOTP", d.TOTP, "Secrets", d.Secrets,
		"RecoveryCodeKey", d.RecoveryCodeKey, "Accounts", d.Accounts, "Passwords", d.Passwords); err != nil {
		return nil, err
	}
	return &Service{d: d}, nil
}

// audit records a security event (see commands.RecordAudit).
func (s *Service) audit(ctx context.Context, e commands.AuditEntry) {
	commands.RecordAudit(ctx, s.d.Audit, s.d.Logger, s.d.Now.Now(), e)
}

// StartTOTP creates a new TOTP secret for the caller, pending until
// ConfirmTOTP; a second call replaces a pending secret. domain.ErrConflict
// when MFA is already on (disable it first).
func (s *Service) StartTOTP(ctx context.Context, userID uuid.UUID, ip string) (commands.TOTPEnrolment, error) {
	if st, err := s.d.Store.TOTPState(ctx, userID); err == nil && st.Enabled {
		return commands.TOTPEnrolment{}, fmt.Errorf("mfa is already on: %w", domain.ErrConflict)
	} else if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return commands.TOTPEnrolment{}, err
	}
	// The label is the user id: the command side keeps no plaintext email.
	secret, url, err := s.d.TOTP.Generate(userID.String())
	if err != nil {
		return commands.TOTPEnrolment{}, err
	}
	sealed, err := s.d.Secrets.Seal(ctx, userID, userID, totpSecretType, []byte(secret))
	if err != nil {
		return commands.TOTPEnrolment{}, err
	}
	if err := s.d.Store.StartTOTP(ctx, userID, sealed); err != nil {
		return commands.TOTPEnrolment{}, err
	}
	s.audit(ctx, commands.AuditEntry{Action: commands.AuditMFAEnrolmentStarted, Actor: userID, Subject: userID, IP: ip})
	return commands.TOTPEnrolment{Secret: secret, URL: url}, nil
}

// ConfirmTOTP re-checks the password, checks a code of the pending secret,
// turns MFA on, ends every session (the client logs in again, with a code)
// and returns the recovery codes, shown this once. A wrong or missing
// password is a *domain.ValidationError on /password (checked first, and
// audited); a wrong code or no pending enrolment is one on /code;
// domain.ErrConflict when MFA is on.
func (s *Service) ConfirmTOTP(ctx context.Context, cmd commands.ConfirmTOTP) ([]string, error) {
	if err := s.reauthenticate(ctx, cmd.UserID, cmd.Password, cmd.IP, "mfa enrolment"); err != nil {
		return nil, err
	}
	st, err := s.d.Store.TOTPState(ctx, cmd.UserID)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, codeProblem("no enrolment is pending: start one first")
	}
	if err != nil {
		return nil, err
	}
	if st.Enabled {
		return nil, fmt.Errorf("mfa is already on: %w", domain.ErrConflict)
	}
	secret, err := s.openSecret(ctx, cmd.UserID, st)
	if err != nil {
		return nil, err
	}
	step, ok := s.d.TOTP.Match(secret, cmd.Code, s.d.Now.Now(), st.LastStep)
	if !ok {
		return nil, codeProblem("does not match the pending secret")
	}
	codes, hashes, err := s.newRecoveryCodes(cmd.UserID)
	if err != nil {
		return nil, err
	}
	if err := s.d.Store.EnableTOTP(ctx, cmd.UserID, st.Secret, step, hashes); err != nil {
		return nil, err
	}
	s.audit(ctx, commands.AuditEntry{Action: commands.AuditMFAEnabled, Actor: cmd.UserID, Subject: cmd.UserID, IP: cmd.IP})
	return codes, nil
}

// DisableTOTP turns MFA off after re-checking the password (422 on
// /password) and a TOTP or recovery code (422 on /code), and ends every
// session. domain.ErrConflict when MFA is off.
func (s *Service) DisableTOTP(ctx context.Context, cmd commands.MFAChange) error {
	if err := s.reauthenticateMFA(ctx, cmd); err != nil {
		return err
	}
	if err := s.d.Store.DisableTOTP(ctx, cmd.UserID); err != nil {
		return err
	}
	s.audit(ctx, commands.AuditEntry{Action: commands.AuditMFADisabled, Actor: cmd.UserID, Subject: cmd.UserID, IP: cmd.IP})
	return nil
}

// RenewRecoveryCodes replaces the recovery codes (the old ones stop
// working) after the same re-checks as DisableTOTP.
func (s *Service) RenewRecoveryCodes(ctx context.Context, cmd commands.MFAChange) ([]string, error) {
	if err := s.reauthenticateMFA(ctx, cmd); err != nil {
		return nil, err
	}
	codes, hashes, err := s.newRecoveryCodes(cmd.UserID)
	if err != nil {
		return nil, err
	}
	if err := s.d.Store.ReplaceRecoveryCodes(ctx, cmd.UserID, hashes); err != nil {
		return nil, err
	}
	s.audit(ctx, commands.AuditEntry{Action: commands.AuditMFARecoveryCodesRenewed, Actor: cmd.UserID, Subject: cmd.UserID, IP: cmd.IP})
	return codes, nil
}

// reauthenticateMFA checks the password and a second factor of an account
// with MFA on. The caller is authenticated, so wrong answers are 422 on the
// field, not 401 (which would say the access token is bad).
func (s *Service) reauthenticateMFA(ctx context.Context, cmd commands.MFAChange) error {
	if err := s.reauthenticate(ctx, cmd.UserID, cmd.Password, cmd.IP, "mfa change"); err != nil {
		return err
	}
	st, err := s.d.Store.TOTPState(ctx, cmd.UserID)
	if errors.Is(err, domain.ErrNotFound) || err == nil && !st.Enabled {
		return fmt.Errorf("mfa is off: %w", domain.ErrConflict)
	}
	if err != nil {
		return err
	}
	ok, err := s.checkCode(ctx, cmd.UserID, st, cmd.Code, "", cmd.IP)
	if err != nil {
		return err
	}
	if !ok {
		return codeProblem("is not a current one-time code or an unused recovery code")
	}
	return nil
}

// reauthenticate checks that password is the current password of the
// authenticated user before a change a stolen access token must not be
// able to make. A wrong (or empty) password is a *domain.ValidationError
// on /password (422: the token is fine, so not 401) and is audited as a
// failed login, as for erasure, so guessing through a stolen token shows
// in the log.
func (s *Service) reauthenticate(ctx context.Context, userID uuid.UUID, password, ip, what string) error {
	acc, err := s.d.Accounts.ByID(ctx, userID)
	if errors.Is(err, domain.ErrNotFound) {
		return fmt.Errorf("account: %w", domain.ErrUnauthorized)
	}
	if err != nil {
		return err
	}
	if ok, _, err := s.d.Passwords.Verify(password, acc.PasswordHash); err != nil || !ok {
		s.audit(ctx, commands.AuditEntry{Action: commands.AuditLoginFailed, Subject: userID, IP: ip, Detail: map[string]string{"reason": "re-authentication for " + what + " failed"}})
		return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/password", Detail: "does not match the current password"}}}
	}
	return nil
}

// CheckLogin decides the MFA part of a login whose password was right
// (sessions.SecondFactor): accounts without MFA pass (false); with MFA the
// login needs a current, unused TOTP code or an unused recovery code
// (true), else commands.ErrMFARequired or commands.ErrInvalidSecondFactor.
func (s *Service) CheckLogin(ctx context.Context, userID uuid.UUID, otp, recoveryCode, ip string) (bool, error) {
	st, err := s.d.Store.TOTPState(ctx, userID)
	if errors.Is(err, domain.ErrNotFound) || err == nil && !st.Enabled {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if otp == "" && recoveryCode == "" {
		return false, commands.ErrMFARequired
	}
	ok, err := s.checkCode(ctx, userID, st, otp, recoveryCode, ip)
	if err != nil {
		return false, err
	}
	if !ok {
		s.audit(ctx, commands.AuditEntry{Action: commands.AuditLoginFailed, Subject: userID, IP: ip, Detail: map[string]string{"reason": "wrong_second_factor"}})
		return false, commands.ErrInvalidSecondFactor
	}
	return true, nil
}

// checkCode accepts otp as a TOTP code (spending its time step) or, when
// it is not six digits, as a recovery code; recovery (from the login's
// own field) is always a recovery code. A spent recovery code is audited.
func (s *Service) checkCode(ctx context.Context, userID uuid.UUID, st commands.TOTPState, otp, recovery, ip string) (bool, error) {
	if otp != "" && isTOTPCode(otp) {
		secret, err := s.openSecret(ctx, userID, st)
		if err != nil {
			return false, err
		}
		step, ok := s.d.TOTP.Match(secret, otp, s.d.Now.Now(), st.LastStep)
		if !ok {
			return false, nil
		}
		return s.d.Store.AcceptStep(ctx, userID, step)
	}
	if recovery == "" {
		recovery = otp
	}
	norm, ok := normalizeRecoveryCode(recovery)
	if !ok {
		return false, nil
	}
	used, err := s.d.Store.UseRecoveryCode(ctx, userID, s.recoveryCodeHash(userID, norm))
	if err != nil || !used {
		return false, err
	}
	s.audit(ctx, commands.AuditEntry{Action: commands.AuditMFARecoveryCodeUsed, Actor: userID, Subject: userID, IP: ip})
	return true, nil
}

func (s *Service) openSecret(ctx context.Context, userID uuid.UUID, st commands.TOTPState) (string, error) {
	pt, err := s.d.Secrets.Open(ctx, userID, userID, totpSecretType, st.Secret)
	if err != nil {
		return "", fmt.Errorf("open totp secret: %w", err)
	}
	return string(pt), nil
}

// newRecoveryCodes returns a fresh set as shown to the user and as stored.
func (s *Service) newRecoveryCodes(userID uuid.UUID) ([]string, [][]byte, error) {
	codes := make([]string, RecoveryCodeCount)
	hashes := make([][]byte, RecoveryCodeCount)
	b := make([]byte, recoveryCodeChars)
	for i := range codes {
		if _, err := rand.Read(b); err != nil {
			return nil, nil, fmt.Errorf("recovery code: %w", err)
		}
		for j := range b {
			b[j] = recoveryAlphabet[b[j]&31] // 256 is a multiple of 32: no bias
		}
		norm := string(b)
		codes[i] = norm[:recoveryCodeChars/2] + "-" + norm[recoveryCodeChars/2:]
		hashes[i] = s.recoveryCodeHash(userID, norm)
	}
	return codes, hashes, nil
}

// recoveryCodeHash is HMAC-SHA256 under RecoveryCodeKey of the user id and
// the normalised code. A code has 50 bits: too few to store under a plain
// fast hash (a stolen table could be brute-forced offline), but with a key
// that lives outside the database a table dump alone reveals nothing, and
// a lookup stays one indexed equality (Argon2id would cost 10 slow hashes
// per attempt, one per stored code, on a rate-limited but public route).
func (s *Service) recoveryCodeHash(userID uuid.UUID, norm string) []byte {
	m := hmac.New(sha256.New, s.d.RecoveryCodeKey)
	m.Write(userID[:])
	m.Write([]byte(norm))
	return m.Sum(nil)
}

// normalizeRecoveryCode accepts a code with or without its hyphen, any
// case, surrounding spaces.
func normalizeRecoveryCode(s string) (string, bool) {
	if len(s) > maxCodeLen {
		return "", false
	}
	s = strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(s)))
	if len(s) != recoveryCodeChars {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(recoveryAlphabet, rune(s[i])) {
			return "", false
		}
	}
	return s, true
}

func isTOTPCode(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func codeProblem(detail string) error {
	return &domain.ValidationError{Problems: []domain.FieldProblem{{Field: "/code", Detail: detail}}}
}
