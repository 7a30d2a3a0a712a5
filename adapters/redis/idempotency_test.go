package redis_test

import (
	"context"
	"testing"
	"time"

	bredis "github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/stretchr/testify/require"
)

func newIdempotency(t *testing.T) bredis.Idempotency {
	t.Helper()
	c, err := bredis.Open(testbackend.Redis(t))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return bredis.Idempotency{C: c, Prefix: testbackend.UniqueName(t, "idem") + ":"}
}

func TestAKeyIsClaimedOnceThenReplayed(t *testing.T) {
	ctx := context.Background()
	s := newIdempotency(t)
	first, err := s.Claim(ctx, "u:1:k", "fp1")
	require.NoError(t, err, "first claim %+v", first)
	require.Equal(t, commands.Claimed, first.State, "first claim %+v %v", first, err)
	busy, err := s.Claim(ctx, "u:1:k", "fp1")
	require.NoError(t, err, "while running %+v", busy)
	require.Equal(t, commands.InFlight, busy.State, "while running %+v %v", busy, err)
	require.Equal(t, "fp1", busy.Fingerprint, "while running %+v %v", busy, err)
	require.NoError(t, s.Complete(ctx, "u:1:k", first, []byte(`{"status":201} with spaces`)))
	ttl := s.C.TTL(ctx, s.Prefix+"idem:v1:u:1:k").Val()
	require.GreaterOrEqual(t, ttl, 23*time.Hour, "a completed response lives %v, want 24 h", ttl)
	require.LessOrEqual(t, ttl, bredis.DefaultIdempotencyTTL, "a completed response lives %v, want 24 h", ttl)
	done, err := s.Claim(ctx, "u:1:k", "fp2")
	require.NoError(t, err, "after completion %+v", done)
	require.Equal(t, commands.Completed, done.State, "after completion %+v %v", done, err)
	require.Equal(t, "fp1", done.Fingerprint, "after completion %+v %v", done, err)
	require.Equal(t, `{"status":201} with spaces`, string(done.Response), "after completion %+v %v", done, err)
}

func TestAReleasedKeyCanBeClaimedAgain(t *testing.T) {
	ctx := context.Background()
	s := newIdempotency(t)
	c, _ := s.Claim(ctx, "k", "fp")
	require.NoError(t, s.Release(ctx, "k", c))
	again, err := s.Claim(ctx, "k", "fp")
	require.NoError(t, err, "%+v", again)
	require.Equal(t, commands.Claimed, again.State, "%+v %v", again, err)
}

// TestAnExpiredLockIsNeverOverwritten: a request that outlived its lock
// must not store its response over the request that took the key next.
func TestAnExpiredLockIsNeverOverwritten(t *testing.T) {
	ctx := context.Background()
	s := newIdempotency(t)
	slow, _ := s.Claim(ctx, "k", "fp")
	// The lock runs out (miniredis does not expire keys by the wall clock,
	// so the expiry is played by deleting the record).
	require.NoError(t, s.C.Del(ctx, s.Prefix+"idem:v1:k").Err())
	next, err := s.Claim(ctx, "k", "fp")
	require.NoError(t, err, "claim after expiry %+v", next)
	require.Equal(t, commands.Claimed, next.State, "claim after expiry %+v %v", next, err)
	err = s.Complete(ctx, "k", slow, []byte("late"))
	require.ErrorIs(t, err, bredis.ErrLockLost, "Complete after expiry = %v, want ErrLockLost", err)
	err = s.Release(ctx, "k", slow)
	require.ErrorIs(t, err, bredis.ErrLockLost, "Release after expiry = %v, want ErrLockLost", err)
	require.NoError(t, s.Complete(ctx, "k", next, []byte("mine")))
	got, _ := s.Claim(ctx, "k", "fp")
	require.Equal(t, commands.Completed, got.State, "stored %+v", got)
	require.Equal(t, "mine", string(got.Response), "stored %+v", got)
}

func TestFingerprintsWithSpacesAreRefused(t *testing.T) {
	s := newIdempotency(t)
	_, err := s.Claim(context.Background(), "k", "a b")
	require.Error(t, err, "accepted")
}
