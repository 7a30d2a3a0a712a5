package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/domain"
)

// Version states of a projector generation.
const (
	StateBuilding = "building" // rebuilding from offset 0; not served
	StateLive     = "live"     // served to readers
	StateStandby  = "standby"  // previously live; kept current for rollback until dropped
)

// Version is one generation of a projector.
type Version struct {
	Name       string
	Generation int
	State      string
	CreatedAt  time.Time
	PromotedAt *time.Time
	Error      string // set when a non-live generation halted
}

// Key is "name@generation".
func (v Version) Key() string { return fmt.Sprintf("%s@%d", v.Name, v.Generation) }

// Versions is the registry of projector generations (projection_versions).
// Readers ask it which generation is live; the switch after a rebuild is one
// UPDATE in one transaction, so every reader sees either the old or the new
// generation. Live lookups are cached for CacheFor (default 1s) per process.
type Versions struct {
	Pool     *pgxpool.Pool
	CacheFor time.Duration

	mu     sync.Mutex
	live   map[string]int
	states map[string]string // "name@gen" -> state
	loaded time.Time
}

// Live returns the live generation of a projector (1 when the registry has
// none, e.g. before the first migration that created it).
func (v *Versions) Live(ctx context.Context, name string) (int, error) {
	if v == nil {
		return 1, nil
	}
	if err := v.load(ctx); err != nil {
		return 0, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return liveOr1(v.live, name), nil
}

// State returns the state of one generation ("" when not registered).
func (v *Versions) State(ctx context.Context, name string, gen int) (string, error) {
	if v == nil {
		return StateLive, nil
	}
	if err := v.load(ctx); err != nil {
		return "", err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.states[fmt.Sprintf("%s@%d", name, gen)], nil
}

// load refreshes the cached registry when it is older than CacheFor. The
// query runs without the lock; on failure the last good answer is kept
// (and an error returned only if there never was one).
func (v *Versions) load(ctx context.Context) error {
	ttl := v.CacheFor
	if ttl == 0 {
		ttl = time.Second
	}
	v.mu.Lock()
	fresh := v.live != nil && time.Since(v.loaded) <= ttl
	v.mu.Unlock()
	if fresh {
		return nil
	}
	live, states := map[string]int{}, map[string]string{}
	rows, err := v.Pool.Query(ctx, `SELECT name, generation, state FROM projection_versions`)
	if err == nil {
		for rows.Next() {
			var n, st string
			var g int
			if err = rows.Scan(&n, &g, &st); err != nil {
				break
			}
			states[fmt.Sprintf("%s@%d", n, g)] = st
			if st == StateLive {
				live[n] = g
			}
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		if v.live != nil {
			v.loaded = time.Now() // keep serving the last answer; retry after ttl
			return nil
		}
		return unavailable(err)
	}
	v.live, v.states, v.loaded = live, states, time.Now()
	return nil
}

// liveOr1 answers for projectors the registry does not know: 1 when the
// registry is empty (a database from before it existed), else 0 (none of
// its generations is live).
func liveOr1(m map[string]int, name string) int {
	if g, ok := m[name]; ok {
		return g
	}
	if len(m) == 0 {
		return 1
	}
	return 0
}

// Forget drops the cached live generations (after a switch in this process).
func (v *Versions) Forget() {
	v.mu.Lock()
	v.live = nil
	v.mu.Unlock()
}

// List returns every registered generation, by name and generation.
func (v *Versions) List(ctx context.Context) ([]Version, error) {
	rows, err := v.Pool.Query(ctx, `SELECT name, generation, state, created_at, promoted_at, COALESCE(error, '') FROM projection_versions
		WHERE state <> 'dropped' ORDER BY name, generation`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		var x Version
		if err := rows.Scan(&x.Name, &x.Generation, &x.State, &x.CreatedAt, &x.PromotedAt, &x.Error); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// Create registers the next generation of a projector as building and
// creates its tables as copies (columns, keys, indexes) of generation 1's.
func (v *Versions) Create(ctx context.Context, p Projector) (int, error) {
	var gen int
	err := pgx.BeginFunc(ctx, v.Pool, func(tx pgx.Tx) error {
		// Serialise concurrent rebuilds of one projector.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('projection_versions:' || $1))`, p.Name()); err != nil {
			return err
		}
		// Numbers are never reused (dropped rows stay); the live
		// generation's tables are the template (generation 1 may be gone).
		var template int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(max(generation), 0) + 1,
				COALESCE(max(generation) FILTER (WHERE state = 'live'), 1) FROM projection_versions WHERE name = $1`, p.Name()).Scan(&gen, &template); err != nil {
			return err
		}
		for _, base := range p.Tables() {
			if _, err := tx.Exec(ctx, `CREATE TABLE `+Table(base, gen)+` (LIKE `+Table(base, template)+` INCLUDING ALL)`); err != nil {
				return fmt.Errorf("create %s: %w", Table(base, gen), err)
			}
			if err := keepTimescale(ctx, tx, Table(base, template), Table(base, gen)); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO projection_versions (name, generation, state) VALUES ($1, $2, 'building')`, p.Name(), gen)
		return err
	})
	return gen, err
}

// Promote makes gen the live generation; the previous live one becomes
// standby. One transaction: readers switch atomically.
func (v *Versions) Promote(ctx context.Context, name string, gen int) error {
	return v.promote(ctx, name, gen, false)
}

// promote switches reads to gen in one transaction; onlyPending makes it a
// no-op unless gen is still building with its switch pending (checked
// under the same row lock, so a rollback or drop in between wins).
func (v *Versions) promote(ctx context.Context, name string, gen int, onlyPending bool) error {
	err := pgx.BeginFunc(ctx, v.Pool, func(tx pgx.Tx) error {
		var state, halted string
		var pending bool
		if err := tx.QueryRow(ctx, `SELECT state, COALESCE(error, ''), switch_pending FROM projection_versions WHERE name = $1 AND generation = $2 FOR UPDATE`, name, gen).Scan(&state, &halted, &pending); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("%s@%d: %w", name, gen, domain.ErrNotFound)
			}
			return err
		}
		if onlyPending && (state != StateBuilding || !pending) {
			return nil
		}
		switch {
		case state == StateLive:
			return nil
		case state == "dropped":
			return fmt.Errorf("%s@%d was dropped: %w", name, gen, domain.ErrNotFound)
		case halted != "":
			return fmt.Errorf("%s@%d halted (%s); it cannot serve reads: %w", name, gen, halted, domain.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `UPDATE projection_versions SET state = 'standby' WHERE name = $1 AND state = 'live'`, name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE projection_versions SET state = 'live', promoted_at = now(), switch_pending = false WHERE name = $1 AND generation = $2`, name, gen)
		return err
	})
	v.Forget()
	return err
}

// MarkSwitchPending records that a building generation must become live
// once it has caught up (see PromotePending), so the intent survives the
// process that started the rebuild.
func (v *Versions) MarkSwitchPending(ctx context.Context, name string, gen int) error {
	_, err := v.Pool.Exec(ctx, `UPDATE projection_versions SET switch_pending = true WHERE name = $1 AND generation = $2 AND state = 'building'`, name, gen)
	return unavailable(err)
}

// PendingSwitches lists building generations whose switch is pending and
// that have not halted: what a (re)starting server must finish.
func (v *Versions) PendingSwitches(ctx context.Context) ([]Version, error) {
	rows, err := v.Pool.Query(ctx, `SELECT name, generation FROM projection_versions
		WHERE state = 'building' AND switch_pending AND error IS NULL ORDER BY name, generation`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		x := Version{State: StateBuilding}
		if err := rows.Scan(&x.Name, &x.Generation); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// PromotePending switches reads to gen if it is still building with its
// switch pending, and clears the mark; otherwise (already promoted by
// another server, dropped, or rolled back since) it does nothing.
func (v *Versions) PromotePending(ctx context.Context, name string, gen int) error {
	return v.promote(ctx, name, gen, true)
}

// Rollback makes the most recently promoted standby generation live again
// and returns it.
func (v *Versions) Rollback(ctx context.Context, name string) (int, error) {
	var gen int
	err := v.Pool.QueryRow(ctx, `SELECT generation FROM projection_versions WHERE name = $1 AND state = 'standby' ORDER BY promoted_at DESC NULLS LAST, generation DESC LIMIT 1`, name).Scan(&gen)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%s has no standby generation to roll back to: %w", name, domain.ErrNotFound)
	}
	if err != nil {
		return 0, unavailable(err)
	}
	return gen, v.Promote(ctx, name, gen)
}

// Drop removes a generation that is not live: it is marked dropped (so its
// number is never reused and supervisors stop it), its checkpoints and dead
// letters are deleted, then its tables are dropped in a second transaction
// (never holding the checkpoint rows and the tables' locks together, which
// a running projector takes in the other order).
func (v *Versions) Drop(ctx context.Context, p Projector) error {
	err := pgx.BeginFunc(ctx, v.Pool, func(tx pgx.Tx) error {
		var state string
		err := tx.QueryRow(ctx, `SELECT state FROM projection_versions WHERE name = $1 AND generation = $2 FOR UPDATE`, p.Name(), p.Generation()).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) || state == "dropped" {
			return fmt.Errorf("%s: %w", Key(p), domain.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if state == StateLive {
			return fmt.Errorf("%s is live; promote or roll back to another generation first: %w", Key(p), domain.ErrConflict)
		}
		for _, q := range []string{
			`UPDATE projection_versions SET state = 'dropped' WHERE name = $1 AND generation = $2`,
			`DELETE FROM projection_checkpoints WHERE name = $1 AND generation = $2`,
			`DELETE FROM projection_dead_letters WHERE name = $1 AND generation = $2`,
		} {
			if _, err := tx.Exec(ctx, q, p.Name(), p.Generation()); err != nil {
				return err
			}
		}
		return nil
	})
	v.Forget()
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, v.Pool, func(tx pgx.Tx) error {
		for _, base := range p.Tables() {
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+Table(base, p.Generation())); err != nil {
				return err
			}
		}
		return nil
	})
}

// Halted records why a non-live generation stopped; supervisors do not
// restart it and Promote refuses it.
func (v *Versions) Halted(ctx context.Context, name string, gen int, cause error) error {
	msg := cause.Error()
	msg = truncateError(msg)
	_, err := v.Pool.Exec(ctx, `UPDATE projection_versions SET error = $3 WHERE name = $1 AND generation = $2`, name, gen, msg)
	v.Forget()
	return err
}

// Progress reports, for one generation, the sum of its checkpoints and the
// sum of the log's high-water marks: lag = head - done.
func Progress(ctx context.Context, pool *pgxpool.Pool, heads map[int32]int64, name string, gen int) (done, head int64, err error) {
	rows, err := pool.Query(ctx, `SELECT partition, next_offset FROM projection_checkpoints WHERE name = $1 AND generation = $2`, name, gen)
	if err != nil {
		return 0, 0, unavailable(err)
	}
	defer rows.Close()
	next := map[int32]int64{}
	for rows.Next() {
		var p int32
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			return 0, 0, err
		}
		next[p] = o
	}
	for p, h := range heads {
		head += h
		done += min(next[p], h)
	}
	return done, head, rows.Err()
}
