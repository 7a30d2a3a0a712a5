package identity

import (
	"net/mail"
	"strings"
	"time"

	"github.com/biosync/biosync/domain"
)

// EventRegistered is the stable type name of Registered.
const EventRegistered = "user.registered"

// Registered is the body of user.registered (schema version 1). Email is
// personal data: like every payload it is encrypted with the user's key.
// Credentials are deliberately not in the log: an immutable log would keep
// every old password hash forever.
type Registered struct {
	Email        string    `json:"email"`
	Timezone     string    `json:"timezone"`
	RegisteredAt time.Time `json:"registered_at"`
}

// EventEmailVerified is the stable type name of EmailVerified.
const EventEmailVerified = "user.email_verified"

// EmailVerified is the body of user.email_verified (schema version 1): the
// user presented the single-use token mailed to the registered address.
// The token is not in the event; only the fact and its time are.
type EmailVerified struct {
	VerifiedAt time.Time `json:"verified_at"`
}

// NormalizeEmail lower-cases and trims an address so the uniqueness claim
// does not depend on spelling.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// ValidateRegistration checks the registration fields that are pure rules
// (password strength is checked by the hasher's policy).
func ValidateRegistration(email, timezone string, v *domain.ValidationError) {
	ValidateEmail(email, v)
	if err := ValidateTimezone(timezone); err != nil {
		v.Add("/timezone", "%v", err)
	}
}

// ValidateEmail checks the shape of an address (one mailbox, a dotted
// domain, at most 254 bytes) and reports it at /email.
func ValidateEmail(email string, v *domain.ValidationError) {
	e := NormalizeEmail(email)
	if a, err := mail.ParseAddress(e); err != nil || a.Address != e || len(e) > 254 || !strings.Contains(e[strings.LastIndex(e, "@")+1:], ".") {
		v.Add("/email", "must be a valid email address")
	}
}

// ValidateTimezone accepts IANA zone names only ("Europe/Berlin", "UTC"),
// never "Local" or an empty name, which would depend on the server.
func ValidateTimezone(tz string) error {
	if tz == "" || tz == "Local" || len(tz) > 64 {
		return errTimezone
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return errTimezone
	}
	return nil
}

var errTimezone = tzError{}

type tzError struct{}

// Error explains which timezone names are accepted.
func (tzError) Error() string { return "must be an IANA timezone name such as Europe/Berlin" }
