package commands

import "context"

// IdempotencyStore keeps the outcome of commands sent with an
// Idempotency-Key, so a client that retries (a lost answer, a reconnect)
// gets the first answer instead of running the command twice. The HTTP edge
// uses it; adapters/redis implements it. Errors mean the store is
// unreachable: the caller decides whether to run without it.
type IdempotencyStore interface {
	// Claim takes key for a request with fingerprint, or reports the
	// request holding it (in flight or completed, with its response).
	Claim(ctx context.Context, key, fingerprint string) (Claim, error)
	// Complete stores the response of a request that claimed key.
	Complete(ctx context.Context, key string, c Claim, response []byte) error
	// Release frees key after a request whose outcome is not stored.
	Release(ctx context.Context, key string, c Claim) error
}

// ClaimState says what IdempotencyStore.Claim found under a key.
type ClaimState int

// The outcomes of a claim.
const (
	// Claimed: the key was free and now belongs to the caller, who runs
	// the command and then calls Complete or Release.
	Claimed ClaimState = iota + 1
	// InFlight: another request holds the key and has not finished.
	InFlight
	// Completed: a request finished under the key; Response is its answer.
	Completed
)

// Claim is the state of one idempotency key. Fingerprint is the request
// fingerprint stored with it (the caller's own after a successful claim),
// so the caller can tell a retry from a different request reusing the key.
type Claim struct {
	State       ClaimState
	Fingerprint string
	Response    []byte // Completed only: the stored response, opaque here
	// Lock is the store's proof that the caller owns the key (Claimed
	// only); opaque to callers, handed back to Complete and Release.
	Lock string
}
