package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
	"github.com/biosync/biosync/projections/users"
)

// rebuildConfig sizes the rebuild benchmark.
type rebuildConfig struct {
	events     int // samples.pushed events in the topic
	users      int // distinct users (one user.registered each)
	rounds     int
	partitions int32
	poolSize   int32  // PostgreSQL connections shared by the projectors (as in serve)
	cpuProfile string // profile base path ("" = none): this process during the last rebuild round
}

// rebuildResult holds the raw figures of every round.
type rebuildResult struct {
	Records      int64     `json:"records"`      // events in the topic (registrations + pushes)
	Samples      int64     `json:"samples"`      // sample rows expected in samples_g1
	Rows         int64     `json:"rows"`         // sample rows found after the first rebuild
	SysSeconds   []float64 `json:"system_s"`     // rebuild wall time per round
	EventsPerS   []float64 `json:"events_per_s"` // records / wall time
	RowsPerS     []float64 `json:"rows_per_s"`   // sample rows / wall time
	CopySeconds  []float64 `json:"copy_s"`       // CopyFrom wall time per round
	CopyRowsPerS []float64 `json:"copy_rows_per_s"`
	FillSeconds  float64   `json:"fill_s"` // time to encode and produce the topic (not a figure)
	Profile      string    `json:"cpu_profile,omitempty"`
	ProfileTop   string    `json:"-"`
}

// runRebuild fills a fresh topic, then alternates a full rebuild of the
// users and metrics projectors into a fresh database with a pgx CopyFrom of
// the resulting sample rows into a fresh, identical samples table.
func runRebuild(ctx context.Context, b *backends, cfg rebuildConfig, progress io.Writer) (rebuildResult, error) {
	var res rebuildResult
	master, err := eventstore.NewMasterKeys()
	if err != nil {
		return res, err
	}
	mk, _ := eventstore.ParseMasterKeys(master)

	// The data keys live in a database of their own; every round's fresh
	// database gets a copy (data_keys is command-side state, not a
	// projection, so a rebuild starts with it in place).
	keysName, keysDSN, err := b.createDB(ctx, "bench_keys_")
	if err != nil {
		return res, err
	}
	defer b.dropDB(context.WithoutCancel(ctx), keysName)
	if err := postgres.Migrate(ctx, keysDSN); err != nil {
		return res, err
	}
	keysPool, err := postgres.Open(ctx, keysDSN, 8)
	if err != nil {
		return res, err
	}
	defer keysPool.Close()
	kr, err := eventstore.NewKeyring(postgres.NewKeyStore(keysPool), mk)
	if err != nil {
		return res, err
	}
	codec := eventstore.NewCodec(kr)

	kcfg := kafka.Config{Brokers: b.brokers, Topic: uniqueName("bench_rebuild_"), Partitions: cfg.partitions}.WithDefaults()
	if err := kafka.EnsureTopic(kcfg); err != nil {
		return res, err
	}
	b.topics = append(b.topics, kcfg.Topic)

	start := time.Now()
	samples, err := fillTopic(ctx, kcfg, codec, cfg)
	if err != nil {
		return res, fmt.Errorf("fill topic: %w", err)
	}
	res.FillSeconds = time.Since(start).Seconds()
	res.Samples = samples

	hwLog, err := kafka.NewLog(kcfg)
	if err != nil {
		return res, err
	}
	parts, err := hwLog.Partitions(ctx)
	if err != nil {
		hwLog.Close()
		return res, err
	}
	for _, p := range parts {
		hw, err := hwLog.HighWater(ctx, p)
		if err != nil {
			hwLog.Close()
			return res, err
		}
		res.Records += hw
	}
	hwLog.Close()
	fmt.Fprintf(progress, "rebuild: topic filled with %d records (%d samples) in %.1fs\n", res.Records, res.Samples, res.FillSeconds)

	var rows *copyRows
	for round := range cfg.rounds {
		profile := ""
		if cfg.cpuProfile != "" && round == cfg.rounds-1 {
			profile = profilePath(cfg.cpuProfile, "rebuild")
		}
		d, n, loaded, err := rebuildOnce(ctx, b, kcfg, mk, keysPool, cfg, res.Records, rows == nil, profile)
		if profile != "" && err == nil {
			res.Profile, res.ProfileTop = profile, pprofTop(ctx, profile)
		}
		if err != nil {
			return res, fmt.Errorf("rebuild round %d: %w", round+1, err)
		}
		if rows == nil {
			rows, res.Rows = loaded, n
			if n != res.Samples {
				fmt.Fprintf(progress, "rebuild: WARNING samples_g1 holds %d rows, %d samples were generated\n", n, res.Samples)
			}
		}
		res.SysSeconds = append(res.SysSeconds, d.Seconds())
		res.EventsPerS = append(res.EventsPerS, float64(res.Records)/d.Seconds())
		res.RowsPerS = append(res.RowsPerS, float64(n)/d.Seconds())

		cd, err := copyOnce(ctx, b, rows)
		if err != nil {
			return res, fmt.Errorf("copy round %d: %w", round+1, err)
		}
		res.CopySeconds = append(res.CopySeconds, cd.Seconds())
		res.CopyRowsPerS = append(res.CopyRowsPerS, float64(rows.n)/cd.Seconds())
		fmt.Fprintf(progress, "rebuild round %d: projectors %.2fs (%.0f events/s, %.0f rows/s) | CopyFrom %.2fs (%.0f rows/s)\n",
			round+1, d.Seconds(), res.EventsPerS[round], res.RowsPerS[round], cd.Seconds(), res.CopyRowsPerS[round])
	}
	return res, nil
}

// fillTopic registers cfg.users users and appends cfg.events samples.pushed
// events, encoded by the real codec and produced with franz-go to the
// partition the server's hash partitioner would choose. It returns the
// number of samples.
func fillTopic(ctx context.Context, kcfg kafka.Config, codec *eventstore.Codec, cfg rebuildConfig) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(kcfg.Brokers...), kgo.DefaultProduceTopic(kcfg.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(50_000))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		firstErr error
	)
	produce := func(rec eventstore.Record, user uuid.UUID) {
		r := &kgo.Record{Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp, Partition: engine.PartitionOf(user, kcfg.Partitions)}
		for _, h := range rec.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}

	now := time.Now().UTC().Truncate(time.Minute)
	base := now.Add(-30 * 24 * time.Hour)
	users := make([]*dataUser, cfg.users)
	ids := make([]uuid.UUID, cfg.users)
	for i := range users {
		ids[i] = uuid.New()
		zone := benchZones[i%len(benchZones)]
		if users[i], err = newDataUser(ids[i].String(), zone, base); err != nil {
			return 0, err
		}
		payload, _ := json.Marshal(identity.Registered{Email: fmt.Sprintf("bench-%d@example.com", i), Timezone: zone, RegisteredAt: base.Add(-time.Hour)})
		rec, err := codec.Encode(ctx, eventstore.Event{ID: uuid.New(), Type: identity.EventRegistered, SchemaVersion: 1, UserID: ids[i],
			OccurredAt: base.Add(-time.Hour), RecordedAt: base.Add(-time.Hour), Payload: payload})
		if err != nil {
			return 0, err
		}
		produce(rec, ids[i])
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}

	workers := max(1, runtime.GOMAXPROCS(0))
	var (
		wg      sync.WaitGroup
		samples = make([]int64, workers)
		errs    = make([]error, workers)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 0xb105))
			for i := w; i < cfg.events; i += workers {
				u := rng.IntN(len(users))
				batch := users[u].nextBatch(rng, true)
				delivery := fmt.Sprintf("bench_%d", i)
				received := base.Add(time.Duration(users[u].slot.Load()) * slotStep)
				payload, err := json.Marshal(ingest.Pushed{DeliveryID: delivery, Channel: "webhook", ReceivedAt: received, Batch: batch})
				if err != nil {
					errs[w] = err
					return
				}
				rec, err := codec.Encode(ctx, eventstore.Event{ID: eventstore.DeterministicID("push.webhook", delivery), Type: ingest.EventPushed,
					SchemaVersion: 1, UserID: ids[u], OccurredAt: received, RecordedAt: received, Payload: payload})
				if err != nil {
					errs[w] = err
					return
				}
				samples[w] += int64(len(batch.Samples))
				produce(rec, ids[u])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	var total int64
	for _, n := range samples {
		total += n
	}
	return total, firstErr
}

// rebuildOnce projects the whole topic into a fresh database and returns
// the wall time from starting the runtimes until every checkpoint reached
// the high water mark, and the number of sample rows. With load set it also
// returns the rows themselves (the CopyFrom baseline copies exactly them).
func rebuildOnce(ctx context.Context, b *backends, kcfg kafka.Config, mk eventstore.MasterKeys, keysPool *pgxpool.Pool,
	cfg rebuildConfig, records int64, load bool, profile string) (time.Duration, int64, *copyRows, error) {
	name, dsn, err := b.createDB(ctx, "bench_rebuild_")
	if err != nil {
		return 0, 0, nil, err
	}
	defer b.dropDB(context.WithoutCancel(ctx), name)
	if err := postgres.Migrate(ctx, dsn); err != nil {
		return 0, 0, nil, err
	}
	pool, err := postgres.Open(ctx, dsn, cfg.poolSize)
	if err != nil {
		return 0, 0, nil, err
	}
	defer pool.Close()
	if err := copyDataKeys(ctx, keysPool, pool); err != nil {
		return 0, 0, nil, err
	}
	kr, err := eventstore.NewKeyring(postgres.NewKeyStore(pool), mk)
	if err != nil {
		return 0, 0, nil, err
	}
	codec := eventstore.NewCodec(kr)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	projectors := []engine.Projector{users.Projector{Gen: 1}, &metrics.Projector{Gen: 1}}
	errc := make(chan error, len(projectors))
	var logs []*kafka.Log
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	for range projectors {
		l, err := kafka.NewLog(kcfg) // one client per projector, as serve does
		if err != nil {
			return 0, 0, nil, err
		}
		logs = append(logs, l)
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return 0, 0, nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, 0, nil, err
		}
	}
	for i, p := range projectors {
		rt := &engine.Runtime{Pool: pool, Log: logs[i], Codec: codec, Projector: p, Logger: logger}
		go func() { errc <- rt.Run(rctx) }()
	}
	elapsed, err := waitCaughtUp(ctx, pool, projectors, records, errc, max(2*time.Minute, time.Duration(records)*2*time.Millisecond))
	if profile != "" {
		pprof.StopCPUProfile()
	}
	cancel()
	for range projectors {
		if rerr := <-errc; rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return 0, 0, nil, err
	}
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM samples_g1`).Scan(&n); err != nil {
		return 0, 0, nil, err
	}
	var rows *copyRows
	if load {
		if rows, err = loadRows(ctx, pool); err != nil {
			return 0, 0, nil, err
		}
	}
	return elapsed, n, rows, nil
}

// waitCaughtUp polls the checkpoints until every projector's checkpoints
// add up to the number of records in the topic (the topic is fresh, so
// that is when each partition's checkpoint equals its high water mark), and
// returns the time since it was called.
func waitCaughtUp(ctx context.Context, pool *pgxpool.Pool, projectors []engine.Projector, records int64, errc <-chan error, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		done := true
		for _, p := range projectors {
			var sum int64
			err := pool.QueryRow(ctx, `SELECT coalesce(sum(next_offset), 0) FROM projection_checkpoints WHERE name = $1 AND generation = $2`,
				p.Name(), p.Generation()).Scan(&sum)
			if err != nil {
				return 0, err
			}
			if sum < records {
				done = false
				break
			}
		}
		if done {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("projectors did not catch up within %s", timeout)
		}
		select {
		case err := <-errc:
			return 0, fmt.Errorf("projector stopped: %v", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// copyDataKeys copies the wrapped data keys into a fresh database.
func copyDataKeys(ctx context.Context, from, to *pgxpool.Pool) error {
	rows, err := from.Query(ctx, `SELECT user_id, kek_id, wrapped, created_at FROM data_keys`)
	if err != nil {
		return err
	}
	var all [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			rows.Close()
			return err
		}
		all = append(all, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	_, err = to.CopyFrom(ctx, pgx.Identifier{"data_keys"}, []string{"user_id", "kek_id", "wrapped", "created_at"}, pgx.CopyFromRows(all))
	return err
}

// copyRows holds the sample rows in memory, column by column and without
// pointers (times as microseconds, strings as dictionary indexes), so a few
// hundred thousand rows do not slow the garbage collector of this process,
// which also runs the projectors. It is a pgx.CopyFromSource that can be
// rewound for the next round. The columns are read from the table, so the
// baseline follows schema changes.
type copyRows struct {
	cols []copyCol
	n    int
	dict []string
	i    int
	buf  []any
}

// copyCol is one column of copyRows; only the slice of its kind is used.
type copyCol struct {
	name  string
	kind  byte // see the kind* constants
	ints  []int64
	flts  []float64
	uuids [][16]byte
	null  []bool
}

// The kinds of value a copyCol stores.
const (
	kindTime byte = iota
	kindString
	kindFloat
	kindInt16
	kindInt32
	kindInt64
	kindUUID
	kindBool
)

// Next implements pgx.CopyFromSource.
func (c *copyRows) Next() bool { c.i++; return c.i <= c.n }

// Values implements pgx.CopyFromSource. pgx encodes the values before the
// next call, so one buffer is reused.
func (c *copyRows) Values() ([]any, error) {
	r := c.i - 1
	c.buf = c.buf[:0]
	for k := range c.cols {
		col := &c.cols[k]
		if col.null[r] {
			c.buf = append(c.buf, nil)
			continue
		}
		switch col.kind {
		case kindTime:
			c.buf = append(c.buf, time.UnixMicro(col.ints[r]).UTC())
		case kindString:
			c.buf = append(c.buf, c.dict[col.ints[r]])
		case kindFloat:
			c.buf = append(c.buf, col.flts[r])
		case kindInt16:
			c.buf = append(c.buf, int16(col.ints[r]))
		case kindInt32:
			c.buf = append(c.buf, int32(col.ints[r]))
		case kindInt64:
			c.buf = append(c.buf, col.ints[r])
		case kindUUID:
			c.buf = append(c.buf, col.uuids[r])
		case kindBool:
			c.buf = append(c.buf, col.ints[r] != 0)
		}
	}
	return c.buf, nil
}

// Err implements pgx.CopyFromSource.
func (c *copyRows) Err() error { return nil }

// names lists the column names.
func (c *copyRows) names() []string {
	out := make([]string, len(c.cols))
	for i, col := range c.cols {
		out[i] = col.name
	}
	return out
}

// loadRows reads every sample row the projector wrote.
func loadRows(ctx context.Context, pool *pgxpool.Pool) (*copyRows, error) {
	rows, err := pool.Query(ctx, `SELECT * FROM samples_g1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &copyRows{}
	for _, fd := range rows.FieldDescriptions() {
		out.cols = append(out.cols, copyCol{name: fd.Name, kind: 255})
	}
	dict := map[string]int64{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		for k, v := range vals {
			col := &out.cols[k]
			col.null = append(col.null, v == nil)
			if v == nil {
				// Keep every slice of the column's kind aligned with the rows.
				col.ints, col.flts, col.uuids = append(col.ints, 0), append(col.flts, 0), append(col.uuids, [16]byte{})
				continue
			}
			var kind byte
			var iv int64
			var fv float64
			var uv [16]byte
			switch x := v.(type) {
			case time.Time:
				kind, iv = kindTime, x.UnixMicro()
			case string:
				id, ok := dict[x]
				if !ok {
					id = int64(len(out.dict))
					dict[x] = id
					out.dict = append(out.dict, x)
				}
				kind, iv = kindString, id
			case float64:
				kind, fv = kindFloat, x
			case int16:
				kind, iv = kindInt16, int64(x)
			case int32:
				kind, iv = kindInt32, int64(x)
			case int64:
				kind, iv = kindInt64, x
			case [16]byte:
				kind, uv = kindUUID, x
			case bool:
				kind = kindBool
				if x {
					iv = 1
				}
			default:
				return nil, fmt.Errorf("samples_g1.%s: values of type %T are not supported by the CopyFrom baseline", col.name, v)
			}
			if col.kind == 255 {
				col.kind = kind
			} else if col.kind != kind {
				return nil, fmt.Errorf("samples_g1.%s: mixed value types", col.name)
			}
			col.ints, col.flts, col.uuids = append(col.ints, iv), append(col.flts, fv), append(col.uuids, uv)
		}
		out.n++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for k := range out.cols {
		col := &out.cols[k]
		switch col.kind { // drop the slices the kind does not use
		case kindFloat:
			col.ints, col.uuids = nil, nil
		case kindUUID:
			col.ints, col.flts = nil, nil
		default:
			col.flts, col.uuids = nil, nil
		}
	}
	return out, nil
}

// copyOnce copies the rows with pgx CopyFrom on one connection into the
// samples table of a fresh, migrated database (same primary key and
// index as the projector's table) and returns the wall time of the copy.
func copyOnce(ctx context.Context, b *backends, rows *copyRows) (time.Duration, error) {
	name, dsn, err := b.createDB(ctx, "bench_copy_")
	if err != nil {
		return 0, err
	}
	defer b.dropDB(context.WithoutCancel(ctx), name)
	if err := postgres.Migrate(ctx, dsn); err != nil {
		return 0, err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows.i = 0
	start := time.Now()
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"samples_g1"}, rows.names(), rows)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if n != int64(rows.n) {
		return 0, fmt.Errorf("CopyFrom wrote %d rows, want %d", n, rows.n)
	}
	return d, nil
}
