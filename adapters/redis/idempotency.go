package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/biosync/biosync/commands"
)

// Default lifetimes of Idempotency records.
const (
	// DefaultIdempotencyLockTTL outlives the slowest command (the HTTP
	// server's write timeout is 30 s), so a lock never expires under a
	// request that is still running; a crashed instance frees it after it.
	DefaultIdempotencyLockTTL = time.Minute
	// DefaultIdempotencyTTL is how long a completed response is replayed:
	// the IETF draft's usual 24 hours, longer than any client retries.
	DefaultIdempotencyTTL = 24 * time.Hour
)

// Idempotency stores the outcome of requests made with an Idempotency-Key:
// first a lock (SET NX with LockTTL) while the command runs, then the
// response under the same key for TTL. One key per (scope, key) holds
// either state, so a claim is a single round trip in the common case.
// Errors are Redis errors: the caller decides whether to run without it.
type Idempotency struct {
	C       *goredis.Client
	Prefix  string        // key prefix; "biosync:" when empty
	LockTTL time.Duration // DefaultIdempotencyLockTTL when zero
	TTL     time.Duration // DefaultIdempotencyTTL when zero
}

// Record values: "L<token> <fingerprint>" while locked, "D<fingerprint>
// <response>" once done. Fingerprints and tokens contain no spaces.
const (
	lockedMark = 'L'
	doneMark   = 'D'
)

func (s Idempotency) key(k string) string {
	p := s.Prefix
	if p == "" {
		p = "biosync:"
	}
	return p + "idem:v1:" + k
}

// Claim takes key for a request with fingerprint, or reports what holds it.
func (s Idempotency) Claim(ctx context.Context, key, fingerprint string) (commands.Claim, error) {
	if strings.ContainsRune(fingerprint, ' ') || fingerprint == "" {
		return commands.Claim{}, errors.New("redis: idempotency fingerprint must be non-empty and contain no spaces")
	}
	lockTTL := s.LockTTL
	if lockTTL <= 0 {
		lockTTL = DefaultIdempotencyLockTTL
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return commands.Claim{}, err
	}
	token := hex.EncodeToString(b[:])
	rk := s.key(key)
	// Two attempts: the record can expire between the failed SET NX and
	// the GET; the second SET NX then wins or sees the new holder.
	for range 2 {
		ok, err := s.C.SetNX(ctx, rk, string(lockedMark)+token+" "+fingerprint, lockTTL).Result()
		if err != nil {
			return commands.Claim{}, err
		}
		if ok {
			return commands.Claim{State: commands.Claimed, Fingerprint: fingerprint, Lock: token}, nil
		}
		v, err := s.C.Get(ctx, rk).Result()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return commands.Claim{}, err
		}
		return parseRecord(v)
	}
	return commands.Claim{}, errors.New("redis: idempotency key changed hands twice during one claim")
}

func parseRecord(v string) (commands.Claim, error) {
	if v == "" {
		return commands.Claim{}, errors.New("redis: empty idempotency record")
	}
	head, rest, ok := strings.Cut(v[1:], " ")
	switch {
	case !ok:
		return commands.Claim{}, errors.New("redis: malformed idempotency record")
	case v[0] == lockedMark:
		return commands.Claim{State: commands.InFlight, Fingerprint: rest}, nil
	case v[0] == doneMark:
		return commands.Claim{State: commands.Completed, Fingerprint: head, Response: []byte(rest)}, nil
	}
	return commands.Claim{}, errors.New("redis: unknown idempotency record")
}

// completeScript replaces the lock with the response only while the caller
// still holds it: a lock that expired and was taken by another request is
// never overwritten.
var completeScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`)

// releaseScript deletes the lock only while the caller still holds it.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// ErrLockLost is returned by Complete and Release when the lock expired
// (and may have been taken by another request) before the call.
var ErrLockLost = errors.New("redis: idempotency lock expired before the request finished")

// Complete stores response as the outcome of a request that claimed key.
func (s Idempotency) Complete(ctx context.Context, key string, c commands.Claim, response []byte) error {
	if c.State != commands.Claimed {
		return errors.New("redis: Complete needs a claim this request owns")
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultIdempotencyTTL
	}
	lock := string(lockedMark) + c.Lock + " " + c.Fingerprint
	done := string(doneMark) + c.Fingerprint + " " + string(response)
	n, err := completeScript.Run(ctx, s.C, []string{s.key(key)}, lock, done, ttl.Milliseconds()).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLockLost
	}
	return nil
}

// Release frees key after a request whose outcome must not be replayed
// (a 5xx: the client may retry and the command run again).
func (s Idempotency) Release(ctx context.Context, key string, c commands.Claim) error {
	if c.State != commands.Claimed {
		return errors.New("redis: Release needs a claim this request owns")
	}
	lock := string(lockedMark) + c.Lock + " " + c.Fingerprint
	n, err := releaseScript.Run(ctx, s.C, []string{s.key(key)}, lock).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrLockLost
	}
	return nil
}
