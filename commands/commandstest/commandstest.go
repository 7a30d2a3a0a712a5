// Package commandstest holds function-field fakes of the kernel's ports
// (the event log, Accounts, PasswordHasher, Audit) for the fast unit tests
// of the command concepts: no PostgreSQL, no Kafka. A nil function field
// means the call was not expected and answers an error saying so. Only
// tests import it.
package commandstest

import (
	"context"
	"errors"
	"sync"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/eventstore"
)

// Log is an eventstore.Appender that keeps what was appended. A nil
// AppendFunc accepts every event at the next offset of partition 0.
type Log struct {
	AppendFunc func(ctx context.Context, e eventstore.Event) (eventstore.Position, error)

	mu       sync.Mutex
	appended []eventstore.Event
}

// Append records e and answers with AppendFunc.
func (l *Log) Append(ctx context.Context, e eventstore.Event) (eventstore.Position, error) {
	l.mu.Lock()
	l.appended = append(l.appended, e)
	n := len(l.appended)
	l.mu.Unlock()
	if l.AppendFunc != nil {
		return l.AppendFunc(ctx, e)
	}
	return eventstore.Position{Partition: 0, Offset: int64(n - 1)}, nil
}

// Appended returns every event Append was called with, in order.
func (l *Log) Appended() []eventstore.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]eventstore.Event(nil), l.appended...)
}

// Accounts fakes commands.Accounts.
type Accounts struct {
	ClaimFunc              func(ctx context.Context, a commands.Account) error
	CompleteFunc           func(ctx context.Context, userID uuid.UUID, registration eventstore.Token) error
	ReleaseFunc            func(ctx context.Context, userID uuid.UUID) error
	ByEmailKeyFunc         func(ctx context.Context, key []byte) (commands.Account, error)
	ByIDFunc               func(ctx context.Context, id uuid.UUID) (commands.Account, error)
	UpdatePasswordHashFunc func(ctx context.Context, id uuid.UUID, old, hash string) error
}

var _ commands.Accounts = (*Accounts)(nil)

func unexpected(call string) error { return errors.New("commandstest: unexpected " + call + " call") }

// Claim calls ClaimFunc.
func (f *Accounts) Claim(ctx context.Context, a commands.Account) error {
	if f.ClaimFunc == nil {
		return unexpected("Claim")
	}
	return f.ClaimFunc(ctx, a)
}

// Complete calls CompleteFunc.
func (f *Accounts) Complete(ctx context.Context, userID uuid.UUID, registration eventstore.Token) error {
	if f.CompleteFunc == nil {
		return unexpected("Complete")
	}
	return f.CompleteFunc(ctx, userID, registration)
}

// Release calls ReleaseFunc.
func (f *Accounts) Release(ctx context.Context, userID uuid.UUID) error {
	if f.ReleaseFunc == nil {
		return unexpected("Release")
	}
	return f.ReleaseFunc(ctx, userID)
}

// ByEmailKey calls ByEmailKeyFunc.
func (f *Accounts) ByEmailKey(ctx context.Context, key []byte) (commands.Account, error) {
	if f.ByEmailKeyFunc == nil {
		return commands.Account{}, unexpected("ByEmailKey")
	}
	return f.ByEmailKeyFunc(ctx, key)
}

// ByID calls ByIDFunc.
func (f *Accounts) ByID(ctx context.Context, id uuid.UUID) (commands.Account, error) {
	if f.ByIDFunc == nil {
		return commands.Account{}, unexpected("ByID")
	}
	return f.ByIDFunc(ctx, id)
}

// UpdatePasswordHash calls UpdatePasswordHashFunc.
func (f *Accounts) UpdatePasswordHash(ctx context.Context, id uuid.UUID, old, hash string) error {
	if f.UpdatePasswordHashFunc == nil {
		return unexpected("UpdatePasswordHash")
	}
	return f.UpdatePasswordHashFunc(ctx, id, old, hash)
}

// Passwords fakes commands.PasswordHasher without any hashing cost: the
// hash of p is "hash:" + p. DummyVerifies counts the timing-safe dummy
// checks.
type Passwords struct {
	mu            sync.Mutex
	dummyVerifies int
}

var _ commands.PasswordHasher = (*Passwords)(nil)

// Hash returns "hash:" + password.
func (p *Passwords) Hash(password string) (string, error) { return "hash:" + password, nil }

// Verify checks phc against Hash(password); it never asks for a rehash.
func (p *Passwords) Verify(password, phc string) (bool, bool, error) {
	return phc == "hash:"+password, false, nil
}

// DummyVerify counts the call.
func (p *Passwords) DummyVerify(string) {
	p.mu.Lock()
	p.dummyVerifies++
	p.mu.Unlock()
}

// DummyVerifies returns how often DummyVerify was called.
func (p *Passwords) DummyVerifies() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dummyVerifies
}

// Audit keeps recorded entries.
type Audit struct {
	mu      sync.Mutex
	entries []commands.AuditEntry
}

// Record keeps e.
func (a *Audit) Record(_ context.Context, e commands.AuditEntry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
	return nil
}

// Actions returns the actions recorded, in order.
func (a *Audit) Actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.entries {
		out = append(out, e.Action)
	}
	return out
}
