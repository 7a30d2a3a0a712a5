package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	bredis "github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/deploy/testbackend"
)

func newIdempotency(t *testing.T) bredis.Idempotency {
	t.Helper()
	c, err := bredis.Open(testbackend.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return bredis.Idempotency{C: c, Prefix: testbackend.UniqueName(t, "idem") + ":"}
}

func TestAKeyIsClaimedOnceThenReplayed(t *testing.T) {
	ctx := context.Background()
	s := newIdempotency(t)
	first, err := s.Claim(ctx, "u:1:k", "fp1")
	if err != nil || first.State != bredis.Claimed {
		t.Fatalf("first claim %+v %v", first, err)
	}
	busy, err := s.Claim(ctx, "u:1:k", "fp1")
	if err != nil || busy.State != bredis.InFlight || busy.Fingerprint != "fp1" {
		t.Fatalf("while running %+v %v", busy, err)
	}
	if err := s.Complete(ctx, "u:1:k", first, []byte(`{"status":201} with spaces`)); err != nil {
		t.Fatal(err)
	}
	if ttl := s.C.TTL(ctx, s.Prefix+"idem:v1:u:1:k").Val(); ttl < 23*time.Hour || ttl > bredis.DefaultIdempotencyTTL {
		t.Fatalf("a completed response lives %v, want 24 h", ttl)
	}
	done, err := s.Claim(ctx, "u:1:k", "fp2")
	if err != nil || done.State != bredis.Completed || done.Fingerprint != "fp1" || string(done.Response) != `{"status":201} with spaces` {
		t.Fatalf("after completion %+v %v", done, err)
	}
}

func TestAReleasedKeyCanBeClaimedAgain(t *testing.T) {
	ctx := context.Background()
	s := newIdempotency(t)
	c, _ := s.Claim(ctx, "k", "fp")
	if err := s.Release(ctx, "k", c); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Claim(ctx, "k", "fp"); err != nil || again.State != bredis.Claimed {
		t.Fatalf("%+v %v", again, err)
	}
}

// TestAnExpiredLockIsNeverOverwritten: a request that outlived its lock
// must not store its response over the request that took the key next.
func TestAnExpiredLockIsNeverOverwritten(t *testing.T) {
	ctx := context.Background()
	s := newIdempotency(t)
	slow, _ := s.Claim(ctx, "k", "fp")
	// The lock runs out (miniredis does not expire keys by the wall clock,
	// so the expiry is played by deleting the record).
	if err := s.C.Del(ctx, s.Prefix+"idem:v1:k").Err(); err != nil {
		t.Fatal(err)
	}
	next, err := s.Claim(ctx, "k", "fp")
	if err != nil || next.State != bredis.Claimed {
		t.Fatalf("claim after expiry %+v %v", next, err)
	}
	if err := s.Complete(ctx, "k", slow, []byte("late")); !errors.Is(err, bredis.ErrLockLost) {
		t.Fatalf("Complete after expiry = %v, want ErrLockLost", err)
	}
	if err := s.Release(ctx, "k", slow); !errors.Is(err, bredis.ErrLockLost) {
		t.Fatalf("Release after expiry = %v, want ErrLockLost", err)
	}
	if err := s.Complete(ctx, "k", next, []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Claim(ctx, "k", "fp"); got.State != bredis.Completed || string(got.Response) != "mine" {
		t.Fatalf("stored %+v", got)
	}
}

func TestFingerprintsWithSpacesAreRefused(t *testing.T) {
	s := newIdempotency(t)
	if _, err := s.Claim(context.Background(), "k", "a b"); err == nil {
		t.Fatal("accepted")
	}
}
