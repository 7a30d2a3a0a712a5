package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/adapters/postgres/pgerr"
	"github.com/biosync/biosync/commands/ingestion"
	"github.com/biosync/biosync/eventstore"
)

// Deliveries is the push_deliveries table: the durable record of push
// deliveries that carried an id (ingestion.Deliveries). It outlives Redis
// (a TTL, a flush, the embedded default's in-memory server), so a delivery
// id that comes back with another batch is refused after any restart.
//
// Every push with an id asks it once before its append, so concurrent
// reservations share statements (group commit, as adapters/redis does for
// the fast path): one statement per batch of callers instead of one per
// push halved the ingest rate at saturation on a 2-core machine. Confirms
// are batched the same way.
type Deliveries struct {
	pool *pgxpool.Pool

	mu                    sync.Mutex
	reserves              []*reservation
	confirms              []*confirmation
	reserving, confirming bool
}

// reservation is one queued Reserve and the signal that it has an answer.
type reservation struct {
	ctx     context.Context
	id      uuid.UUID
	user    uuid.UUID
	digest  [32]byte
	out     ingestion.Delivery
	created bool
	err     error
	done    chan struct{}
}

// confirmation is one queued Confirm and the signal that it is written.
type confirmation struct {
	ctx   context.Context
	id    uuid.UUID
	token string
	err   error
	done  chan struct{}
}

// maxDeliveryBatch bounds one statement (and so its first caller's wait).
const maxDeliveryBatch = 256

// NewDeliveries wraps a pool.
func NewDeliveries(pool *pgxpool.Pool) *Deliveries { return &Deliveries{pool: pool} }

// Reserve records eventID with digest unless it is recorded, and returns
// the record holding eventID and whether this call created it.
func (d *Deliveries) Reserve(ctx context.Context, eventID, userID uuid.UUID, digest [32]byte) (ingestion.Delivery, bool, error) {
	if err := ctx.Err(); err != nil {
		return ingestion.Delivery{}, false, err
	}
	r := &reservation{ctx: ctx, id: eventID, user: userID, digest: digest, done: make(chan struct{})}
	d.mu.Lock()
	d.reserves = append(d.reserves, r)
	if !d.reserving {
		d.reserving = true
		go d.reserveLoop()
	}
	d.mu.Unlock()
	select {
	case <-r.done:
		return r.out, r.created, r.err
	case <-ctx.Done():
		return ingestion.Delivery{}, false, ctx.Err()
	}
}

// reserveLoop runs the queued reservations, a batch per statement, until
// the queue is empty. One statement is in flight at a time: whatever
// arrives meanwhile fills the next one (no timer, so an idle server asks
// at once).
func (d *Deliveries) reserveLoop() {
	for {
		d.mu.Lock()
		n := min(len(d.reserves), maxDeliveryBatch)
		if n == 0 {
			d.reserving = false
			d.mu.Unlock()
			return
		}
		batch := make([]*reservation, 0, n)
		for _, r := range d.reserves[:n] {
			if r.ctx.Err() != nil { // its caller gave up: do not ask for it
				r.err = r.ctx.Err()
				close(r.done)
				continue
			}
			batch = append(batch, r)
		}
		d.reserves = append(d.reserves[:0], d.reserves[n:]...)
		d.mu.Unlock()
		if len(batch) > 0 {
			d.reserveBatch(batch)
		}
	}
}

// reserveBatchSQL inserts the batch's records (the first of each id) and
// returns, per id, the row inserted now or the one found. The found rows
// are read in the statement's snapshot, which misses a row committed by
// another transaction while the INSERT waited on it: such ids come back
// with no row and are asked again one by one.
const reserveBatchSQL = `WITH input AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bytea[]) WITH ORDINALITY AS x(event_id, user_id, digest, n)
), ins AS (
	INSERT INTO push_deliveries (event_id, user_id, digest)
	SELECT DISTINCT ON (event_id) event_id, user_id, digest FROM input ORDER BY event_id, n
	ON CONFLICT (event_id) DO NOTHING RETURNING event_id, digest
)
SELECT event_id, digest, '', true FROM ins
UNION ALL
SELECT event_id, digest, token, false FROM push_deliveries WHERE event_id = ANY($1)`

type heldRecord struct {
	out     ingestion.Delivery
	created bool
}

func (d *Deliveries) reserveBatch(batch []*reservation) {
	ctx := context.WithoutCancel(batch[0].ctx)
	ids, users, digests := make([]uuid.UUID, len(batch)), make([]uuid.UUID, len(batch)), make([][]byte, len(batch))
	for i, r := range batch {
		ids[i], users[i], digests[i] = r.id, r.user, r.digest[:]
	}
	held := make(map[uuid.UUID]heldRecord, len(batch))
	err := func() error {
		rows, err := d.pool.Query(ctx, reserveBatchSQL, ids, users, digests)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id      uuid.UUID
				sum     []byte
				tok     string
				created bool
			)
			if err := rows.Scan(&id, &sum, &tok, &created); err != nil {
				return err
			}
			rec, err := record(sum, tok)
			if err != nil {
				return err
			}
			held[id] = heldRecord{out: rec, created: created}
		}
		return rows.Err()
	}()
	for _, r := range batch {
		switch h, ok := held[r.id]; {
		case err != nil:
			r.err = fmt.Errorf("reserve delivery: %w", pgerr.Classify(err))
		case !ok:
			r.out, r.created, r.err = d.reserveOne(r.ctx, r.id, r.user, r.digest)
		default:
			// The id's first caller in this batch inserted the row; the
			// others (the same delivery twice at once) see it as found.
			r.out, r.created = h.out, h.created && h.out.Digest == r.digest
			if r.created {
				held[r.id] = heldRecord{out: h.out}
			}
		}
		close(r.done)
	}
}

// reserveOneSQL is reserveBatchSQL for one record.
const reserveOneSQL = `WITH ins AS (
	INSERT INTO push_deliveries (event_id, user_id, digest) VALUES ($1, $2, $3)
	ON CONFLICT (event_id) DO NOTHING RETURNING digest, token)
SELECT digest, token, true FROM ins
UNION ALL
SELECT digest, token, false FROM push_deliveries WHERE event_id = $1`

// reserveOne asks for one record alone, again while another transaction's
// row for the id is invisible to the statement's snapshot.
func (d *Deliveries) reserveOne(ctx context.Context, eventID, userID uuid.UUID, digest [32]byte) (ingestion.Delivery, bool, error) {
	for range 3 {
		var (
			sum     []byte
			tok     string
			created bool
		)
		err := d.pool.QueryRow(ctx, reserveOneSQL, eventID, userID, digest[:]).Scan(&sum, &tok, &created)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return ingestion.Delivery{}, false, fmt.Errorf("reserve delivery: %w", pgerr.Classify(err))
		}
		out, err := record(sum, tok)
		return out, created, err
	}
	return ingestion.Delivery{}, false, fmt.Errorf("reserve delivery %s: the record changed three times while it was read", eventID)
}

// record reads a stored row.
func record(sum []byte, tok string) (ingestion.Delivery, error) {
	var out ingestion.Delivery
	if len(sum) != len(out.Digest) {
		return out, fmt.Errorf("reserve delivery: stored digest has %d bytes", len(sum))
	}
	copy(out.Digest[:], sum)
	if tok != "" {
		t, err := eventstore.ParseToken(tok)
		if err != nil {
			return out, fmt.Errorf("reserve delivery: stored token: %w", err)
		}
		out.Token = t
	}
	return out, nil
}

// Confirm stores where the event of a reserved delivery landed, in a
// statement shared with the confirms of concurrent pushes, and returns once
// it is written: the push answers 2xx after it, so a redelivery after any
// crash finds the token and is answered as the duplicate it is.
func (d *Deliveries) Confirm(ctx context.Context, eventID uuid.UUID, t eventstore.Token) error {
	c := &confirmation{ctx: ctx, id: eventID, token: t.String(), done: make(chan struct{})}
	d.mu.Lock()
	d.confirms = append(d.confirms, c)
	if !d.confirming {
		d.confirming = true
		go d.confirmLoop()
	}
	d.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// confirmLoop writes the queued confirms, a batch per statement, until the
// queue is empty.
func (d *Deliveries) confirmLoop() {
	for {
		d.mu.Lock()
		n := min(len(d.confirms), maxDeliveryBatch)
		if n == 0 {
			d.confirming = false
			d.mu.Unlock()
			return
		}
		batch := append([]*confirmation(nil), d.confirms[:n]...)
		d.confirms = append(d.confirms[:0], d.confirms[n:]...)
		d.mu.Unlock()
		ids, toks := make([]uuid.UUID, len(batch)), make([]string, len(batch))
		for i, c := range batch {
			ids[i], toks[i] = c.id, c.token
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), confirmTimeout)
		_, err := d.pool.Exec(ctx, `UPDATE push_deliveries p SET token = x.token
			FROM unnest($1::uuid[], $2::text[]) AS x(event_id, token) WHERE p.event_id = x.event_id`, ids, toks)
		cancel()
		if err != nil {
			err = fmt.Errorf("confirm delivery: %w", pgerr.Classify(err))
		}
		for _, c := range batch {
			c.err = err
			close(c.done)
		}
	}
}

// confirmTimeout bounds one confirm statement (shared by its callers, so
// it runs without any one caller's cancellation).
const confirmTimeout = 5 * time.Second
