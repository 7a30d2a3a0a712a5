package main

// Fault tests: the "Faults" list of the reliability brief, each shown with
// the production binary's own wiring (run, openPlatform, the supervisor)
// against the shared stand-ins, or the real Kafka/PostgreSQL/Redis when the
// BIOSYNC_* variables are set (see backendEnv). Every test checks that the
// read models equal what a clean rebuild (or the known input) says they must
// be; none of them can pass by doing nothing.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/deploy/testbackend"
	"github.com/biosync/biosync/domain/identity"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/projections/metrics"
)

// childEnv, set to "projections" on a re-executed copy of this test binary,
// turns it into a `biosync projections run` process (the kill -9 test).
const childEnv = "BIOSYNC_TEST_CHILD"

// init makes a re-executed test binary a projector process. The package's
// one TestMain lives in e2e_test.go (testbackend.Main), and a second is not
// allowed, so the switch is an init function: it runs before TestMain and
// before the testing flags are parsed, hence the child never runs a test or
// starts a stand-in of its own. It is exactly `biosync projections run` with
// the environment the parent gave it, and it exits when its stdin closes, so
// a parent that dies (a test timeout) leaves no orphan behind.
func init() {
	if os.Getenv(childEnv) != "projections" {
		return
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	if err := run(context.Background(), []string{"projections", "run"}, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "projector child: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestKillingTheProjectorProcessRepeatedlyLosesAndDuplicatesNothing runs the
// projectors in a child process (`biosync projections run`) and kills it
// with SIGKILL again and again while a producer appends 100,000
// samples.pushed events for 400 users (the full 100k fits the budget: 20-35 s
// for this test on 2 cores, with the stand-ins or real services).
//
// Kill timing: an incarnation needs about 0.3-1.5 s (exec, connect, migrate
// check, partition locks, key loading) before its first commit, so killing
// every one 50-300 ms after exec would only ever hit start-ups. Kills
// alternate: one incarnation is killed 50-300 ms after exec (start-up:
// migrations, lock acquisition, the first batch in flight), the next 50-300
// ms after its first commit (mid-stream, usually inside a batch
// transaction). The producer keeps its last events back until 20 kills were
// made, so at least 20 land while it is still appending.
//
// After every kill the checkpoint invariant is checked (the rows of every
// event below a checkpoint are there, none beyond it). At the end the
// killed run must equal a clean rebuild (metrics@2 from offset 0, same
// database) byte for byte, with exactly one row per sample: 0 lost, 0
// applied twice.
func TestKillingTheProjectorProcessRepeatedlyLosesAndDuplicatesNothing(t *testing.T) {
	const (
		users    = 400
		pushes   = 100_000
		pace     = 15 * time.Second // for the first 95%; the rest waits for 20 kills
		minKills = 20
	)
	ctx := context.Background()
	env := backendEnv(t)
	p, _ := openFaultPlatform(t, env)
	st := newFaultStream(users, pushes, 1)
	appendAll(ctx, t, p, st.regs, 16, 0)
	if t.Failed() {
		t.FailNow()
	}

	var positions []eventstore.Position
	produced := make(chan struct{})
	enoughKills := make(chan struct{})
	openGate := sync.OnceFunc(func() { close(enoughKills) })
	pctx, stopProducing := context.WithCancel(ctx)
	defer func() { // on an early failure: stop the producer before t is gone
		stopProducing()
		openGate()
		<-produced
	}()
	began := time.Now()
	go func() {
		defer close(produced)
		cut := len(st.pushes) * 95 / 100
		positions = appendAll(pctx, t, p, st.pushes[:cut], 16, pace)
		<-enoughKills
		positions = append(positions, appendAll(pctx, t, p, st.pushes[cut:], 16, 0)...)
	}()
	producing := func() bool {
		select {
		case <-produced:
			return false
		default:
			return true
		}
	}

	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	type kill struct {
		life           time.Duration // from exec to SIGKILL
		committed      bool          // killed after its first commit
		openTx         int           // child batch transactions mid-way just before the kill
		done, head     int64         // checkpoint and head sums right after it
		whileProducing bool
	}
	var (
		kills []kill
		snaps []cpSnapshot
	)
	for len(kills) < minKills || producing() {
		require.LessOrEqual(t, time.Since(began), 2*time.Minute, "the producer did not finish within 2 minutes (%d kills)", len(kills))
		midStream := len(kills)%2 == 1
		before := checkpointSum(ctx, t, p.pool, 1)
		child := startProjectorProcess(t, env)
		if midStream {
			deadline := time.Now().Add(60 * time.Second)
			for checkpointSum(ctx, t, p.pool, 1) == before {
				select {
				case <-child.exited:
					require.Failf(t, "projector process exited on its own", "%v\n%s", child.waitErr, child.log.tail())
				default:
				}
				if time.Now().After(deadline) {
					child.kill()
					require.Failf(t, "projector process committed nothing within 60s", "%d kills so far\n%s", len(kills), child.log.tail())
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		time.Sleep(time.Duration(50+rng.IntN(251)) * time.Millisecond)
		// The parent does not write to PostgreSQL during the stream, so a
		// transaction with an xid is a batch of the child's, mid-way.
		var open int
		err := p.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL`).Scan(&open)
		require.NoError(t, err, "pg_stat_activity")
		wasProducing := producing()
		killed := child.kill() // before the message reads child.waitErr
		require.True(t, killed, "projector process died before it was killed: %v\n%s", child.waitErr, child.log.tail())
		k := kill{life: time.Since(child.begun), committed: midStream, openTx: open, whileProducing: wasProducing}
		snaps = append(snaps, takeSnapshot(ctx, t, p.pool, 1)...)
		k.done, k.head = progress(ctx, t, p, metrics.Name, 1)
		kills = append(kills, k)
		if len(kills) == minKills {
			openGate()
		}
	}
	<-produced
	produceTime := time.Since(began)
	if t.Failed() {
		t.FailNow()
	}
	// The last incarnation is left alone until it has caught up.
	final := startProjectorProcess(t, env)
	waitCaughtUp(t, p, 90*time.Second, "metrics@1", "users@1")
	final.kill()

	var lives []time.Duration
	lagging, mid, midTx, duringProduce := 0, 0, 0, 0
	for _, k := range kills {
		lives = append(lives, k.life)
		if k.done < k.head {
			lagging++
		}
		if k.committed {
			mid++
		}
		if k.openTx > 0 {
			midTx++
		}
		if k.whileProducing {
			duringProduce++
		}
	}
	t.Logf("%d events (%d pushes) appended in %v; %d kills (%d while appending, %d after the incarnation's first commit, %d with the projector behind the log, %d with a batch transaction mid-way); incarnations lived %v..%v; caught up %v after the first push",
		len(st.regs)+len(st.pushes), len(st.pushes), produceTime.Round(time.Millisecond), len(kills), duringProduce, mid, lagging, midTx,
		minDur(lives), maxDur(lives), time.Since(began).Round(time.Millisecond))
	// The kills must have hit a projector with work in hand, or they
	// proved nothing.
	assert.GreaterOrEqual(t, duringProduce, minKills, "kills while appending")
	assert.GreaterOrEqual(t, lagging, minKills/2, "kills with the projector behind the log")
	assert.GreaterOrEqual(t, midTx, minKills/4, "kills (of %d) that found a batch transaction mid-way", len(kills))

	checkSnapshots(t, snaps, sampleOffsets(st.pushes, positions))
	expectRows(t, p.pool, map[string]int64{
		"samples_g1": int64(st.samples), "sleep_sessions_g1": int64(st.sleeps), "tz_history_g1": users,
		"users_g1": users, "source_freshness_g1": int64(st.sources),
	})
	gen := rebuildMetrics(t, env)
	compareGenerations(t, p.pool, 1, gen)
}

// TestAStoppedBrokerGets503AndEvery2xxEventLandsExactlyOnce pushes signed
// webhooks through `serve` while its Kafka (an in-process kfake with a data
// dir, on a fixed port: this test must control the broker, so it always uses
// kfake) is stopped for about two seconds and started again. While the
// broker is down every delivery answers 503, never 2xx; every delivery that
// got a 2xx is in the raw series exactly once. A 503 may still have landed
// (the append timed out with an unknown outcome): such samples may or may
// not be there, and are only counted.
func TestAStoppedBrokerGets503AndEvery2xxEventLandsExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	startBroker := func() *kfake.Cluster {
		t.Helper()
		var c *kfake.Cluster
		var err error
		for i := 0; i < 50; i++ { // the port may linger for a moment after Close
			if c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.DefaultNumPartitions(1)); err == nil {
				return c
			}
			time.Sleep(100 * time.Millisecond)
		}
		require.NoError(t, err, "kfake on port %d", port)
		return nil
	}
	broker := startBroker()
	var brokerMu sync.Mutex
	t.Cleanup(func() {
		brokerMu.Lock()
		defer brokerMu.Unlock()
		if broker != nil {
			broker.Close()
		}
	})

	env := backendEnv(t)
	env["BIOSYNC_KAFKA_BROKERS"] = fmt.Sprintf("127.0.0.1:%d", port)
	s := startServer(t, env)
	defer s.stop()
	c := &client{t: t, base: s.url}
	email := fmt.Sprintf("broker-%d@example.com", time.Now().UnixNano())
	code, _, reg := c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": "correct horse battery", "timezone": "UTC"}, nil)
	require.Equal(t, 201, code, "register: %v", reg)
	userID := reg["id"].(string)
	_, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	c.token, _ = login["access_token"].(string)

	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	type delivery struct {
		i          int
		status     int
		sent, done time.Time
		token      string
	}
	var (
		mu         sync.Mutex
		deliveries []delivery
		next       atomic.Int64
		stop       atomic.Bool
		wg         sync.WaitGroup
	)
	// The senders sign with a key parsed here: signedPush may stop the
	// test, which only the test's own goroutine may do.
	key, err := webhooks.ParseSecret(testPush)
	require.NoError(t, err)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := &client{t: t, base: s.url}
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				start := base.Add(time.Duration(i) * time.Minute)
				body := fmt.Sprintf(`{"user_id":%q,"source":{"provider":"bridge","device":"watch"},"samples":[{"type":"steps","start":%q,"end":%q,"value":%d,"unit":"count"}]}`,
					userID, start.Format(time.RFC3339), start.Add(time.Minute).Format(time.RFC3339), i+1)
				d := delivery{i: i, sent: time.Now()}
				id := fmt.Sprintf("msg_broker_%d", i)
				code, h, _ := pc.do("POST", "/v1/webhooks/push", []byte(body), map[string]string{
					"webhook-id": id, "webhook-timestamp": fmt.Sprint(d.sent.Unix()), "webhook-signature": webhooks.Sign(key, id, d.sent, []byte(body)),
				})
				d.status, d.done, d.token = code, time.Now(), h.Get("X-Consistency-Token")
				mu.Lock()
				deliveries = append(deliveries, d)
				mu.Unlock()
			}
		}()
	}
	okSince := func(since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, d := range deliveries {
			if d.status/100 == 2 && !d.sent.Before(since) {
				n++
			}
		}
		return n
	}
	waitFor := func(what string, cond func() bool, limit time.Duration) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				stop.Store(true) // the senders must be done before the test stops
				wg.Wait()
				require.Failf(t, "timed out", "%s within %v", what, limit)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	began := time.Now()
	waitFor("40 deliveries accepted before the outage", func() bool { return okSince(began) >= 40 }, 30*time.Second)

	brokerMu.Lock()
	broker.Close()
	broker = nil
	brokerMu.Unlock()
	down := time.Now() // the broker is gone from here on...
	time.Sleep(2 * time.Second)
	up := time.Now() // ...until here
	brokerMu.Lock()
	broker = startBroker()
	brokerMu.Unlock()
	waitFor("40 deliveries accepted after the broker came back", func() bool { return okSince(up) >= 40 }, 30*time.Second)
	stop.Store(true)
	wg.Wait()

	accepted := map[int]bool{}
	var refused []int
	downCount, downRefused := 0, 0
	var lastTok eventstore.Token
	for _, d := range deliveries {
		switch {
		case d.status/100 == 2:
			accepted[d.i+1] = true
			if tok, err := eventstore.ParseToken(d.token); err == nil {
				lastTok = lastTok.Merge(tok)
			}
		case d.status == 503:
			refused = append(refused, d.i+1)
		default:
			assert.Failf(t, "unexpected status", "delivery %d answered %d; want 2xx or 503", d.i, d.status)
		}
		if !d.sent.Before(down) && !d.done.After(up) { // entirely while the broker was down
			downCount++
			if assert.Equal(t, 503, d.status, "delivery %d sent %v after the broker stopped and answered %v later (before it came back)",
				d.i, d.sent.Sub(down).Round(time.Millisecond), d.done.Sub(d.sent).Round(time.Millisecond)) {
				downRefused++
			}
		}
	}
	assert.NotZero(t, downRefused, "no delivery was refused with 503 while the broker was down (%d deliveries in that window)", downCount)

	// Every 2xx sample is in the raw series exactly once.
	query := fmt.Sprintf("/v1/metrics/steps?from=%s&to=%s&bucket=raw", base.Format(time.RFC3339), base.Add(time.Duration(len(deliveries)+10)*time.Minute).Format(time.RFC3339))
	var seen map[int]int
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, series := c.do("GET", query, nil, map[string]string{"X-Consistency-Token": lastTok.String()})
		seen = map[int]int{}
		points, _ := series["points"].([]any)
		for _, pt := range points {
			if v, ok := pt.(map[string]any)["value"].(float64); ok {
				seen[int(v)]++
			}
		}
		missing := 0
		for v := range accepted {
			if seen[v] == 0 {
				missing++
			}
		}
		if code == 200 && missing == 0 {
			break
		}
		require.False(t, time.Now().After(deadline), "after 30s %d of %d accepted samples are missing from the read model (status %d)", missing, len(accepted), code)
		time.Sleep(200 * time.Millisecond)
	}
	landed := 0
	for _, v := range refused {
		if seen[v] > 0 {
			landed++
		}
	}
	for v, n := range seen {
		assert.Equal(t, 1, n, "times sample %d is in the raw series", v)
		assert.True(t, accepted[v] || contains(refused, v), "sample %d is in the read model but was never delivered", v)
	}
	t.Logf("%d deliveries: %d accepted (all present once), %d answered 503 (%d of them while the broker was down; %d of the 503s landed anyway, which is allowed: their outcome was unknown)",
		len(deliveries), len(accepted), len(refused), downRefused, landed)
}

// TestPostgresConnectionsKilledMidBatchResumeFromTheCheckpoint terminates
// every PostgreSQL backend of the application (pg_terminate_backend on all
// connections to the database but the killer's own) again and again while
// events stream into a running platform's projectors. Restarting the server
// itself is out of reach of a test that may run against a shared server, so
// a full restart is approximated by terminating every backend: for the
// application that is the same event (every connection, every open
// transaction and every advisory lock gone at once). The projectors must
// resume from their checkpoints: no halt, no dead letter, and read models
// equal to a clean rebuild.
func TestPostgresConnectionsKilledMidBatchResumeFromTheCheckpoint(t *testing.T) {
	const (
		users     = 200
		pushes    = 30_000
		pace      = 8 * time.Second // the stream lasts about as long as the killing
		minRounds = 25
	)
	ctx := context.Background()
	env := backendEnv(t)
	p, logs := openFaultPlatform(t, env)
	st := newFaultStream(users, pushes, 3)
	// Registering first creates every user's data key, so the producer
	// never needs PostgreSQL while its connections are being killed.
	appendAll(ctx, t, p, st.regs, 16, 0)
	if t.Failed() {
		t.FailNow()
	}
	stopProjectors := startProjectors(t, p)

	admin, err := pgx.Connect(ctx, env["BIOSYNC_DATABASE_URL"])
	require.NoError(t, err)
	defer admin.Close(context.Background())
	var (
		rounds, killed, midTx int
		snaps                 []cpSnapshot
		produced              atomic.Bool
		chaosDone             = make(chan struct{})
	)
	// The killer: every 100-350 ms it waits (up to 300 ms) for a batch
	// transaction that has written something (a backend with an xid), then
	// terminates every other backend of the database, counting the rounds
	// that caught such a transaction, and reads a checkpoint snapshot; until
	// the stream is in and at least minRounds rounds were made. It is not
	// the test's goroutine: it asserts and returns, and the test stops after
	// it is done if it failed.
	go func() {
		defer close(chaosDone)
		rng := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
		for !produced.Load() || rounds < minRounds {
			time.Sleep(time.Duration(100+rng.IntN(250)) * time.Millisecond)
			for wait := time.Now().Add(300 * time.Millisecond); time.Now().Before(wait); {
				var writing bool
				err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
					AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL)`).Scan(&writing)
				if !assert.NoError(t, err, "pg_stat_activity") {
					return
				}
				if writing {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			var n, inTx int
			err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE gone), count(*) FILTER (WHERE gone AND writing) FROM (
					SELECT pg_terminate_backend(pid) AS gone, backend_xid IS NOT NULL AS writing FROM pg_stat_activity
					WHERE datname = current_database() AND pid <> pg_backend_pid()) x`).Scan(&n, &inTx)
			if !assert.NoError(t, err, "pg_terminate_backend") {
				return
			}
			rounds++
			killed += n
			if inTx > 0 {
				midTx++
			}
			s, err := snapshot(ctx, admin, 1)
			if !assert.NoError(t, err, "snapshot") {
				return
			}
			snaps = append(snaps, s...)
		}
	}()
	began := time.Now()
	positions := appendAll(ctx, t, p, st.pushes, 8, pace)
	produceTime := time.Since(began)
	produced.Store(true)
	<-chaosDone
	if t.Failed() {
		t.FailNow()
	}
	waitCaughtUp(t, p, 60*time.Second, "metrics@1", "users@1")
	assert.NoError(t, stopProjectors(), "the projectors halted instead of resuming after their connections were killed")
	retried := strings.Count(logs(), "apply failed, retrying the same batch")
	t.Logf("%d events appended in %v; %d termination rounds killed %d backends (%d rounds caught a batch transaction mid-way; %d batch retries logged); caught up %v after the first push",
		len(st.pushes), produceTime.Round(time.Millisecond), rounds, killed, midTx, retried, time.Since(began).Round(time.Millisecond))
	assert.GreaterOrEqual(t, rounds, minRounds, "termination rounds")
	assert.GreaterOrEqual(t, killed, minRounds, "backends terminated")
	assert.GreaterOrEqual(t, midTx, minRounds/3, "rounds (of %d) that terminated a batch transaction mid-way", rounds)
	var dead int64
	require.NoError(t, p.pool.QueryRow(ctx, `SELECT count(*) FROM projection_dead_letters`).Scan(&dead))
	assert.Zero(t, dead, "events became dead letters: a killed connection was treated as a poison event")
	checkSnapshots(t, snaps, sampleOffsets(st.pushes, positions))
	expectRows(t, p.pool, map[string]int64{
		"samples_g1": int64(st.samples), "sleep_sessions_g1": int64(st.sleeps), "tz_history_g1": users,
		"users_g1": users, "source_freshness_g1": int64(st.sources),
	})
	gen := rebuildMetrics(t, env)
	compareGenerations(t, p.pool, 1, gen)
}

// TestTripleDeliveryAndARewindOf1000OffsetsLeaveReadModelsByteIdentical
// appends every event three times (same event id, same payload: a webhook
// redelivered three times with no Redis to recognise it), the copies spread
// out as a sender's retries would be, and projects the stream. Then, with
// the projectors stopped, every metrics checkpoint is rewound by 1000
// offsets; after the replay the read models must be byte-identical, every
// column included (the copies carry the same received_at, so even
// source_freshness may not move), and every sample must be there once.
func TestTripleDeliveryAndARewindOf1000OffsetsLeaveReadModelsByteIdentical(t *testing.T) {
	const (
		users  = 200
		pushes = 3000
		rewind = 1000
	)
	ctx := context.Background()
	env := backendEnv(t)
	p, _ := openFaultPlatform(t, env)
	st := newFaultStream(users, pushes, 4)
	appendAll(ctx, t, p, st.regs, 16, 0)

	// Copy 1 of push i goes out in slot i, copies 2 and 3 a little and a
	// lot later: redeliveries interleave with other traffic.
	rng := rand.New(rand.NewPCG(4, 4))
	type slot struct {
		at int
		e  eventstore.Event
	}
	var slots []slot
	for i, e := range st.pushes {
		slots = append(slots, slot{i, e}, slot{i + 1 + rng.IntN(40), e}, slot{i + 41 + rng.IntN(200), e})
	}
	sort.SliceStable(slots, func(a, b int) bool { return slots[a].at < slots[b].at })
	deliveries := make([]eventstore.Event, len(slots))
	for i, s := range slots {
		deliveries[i] = s.e
	}

	stopProjectors := startProjectors(t, p)
	appendAll(ctx, t, p, deliveries, 8, 0, true) // redeliveries are this test's subject; its checks are by natural keys
	if t.Failed() {
		t.FailNow()
	}
	waitCaughtUp(t, p, 60*time.Second, "metrics@1", "users@1")
	require.NoError(t, stopProjectors(), "projectors")
	expectRows(t, p.pool, map[string]int64{
		"samples_g1": int64(st.samples), "sleep_sessions_g1": int64(st.sleeps), "tz_history_g1": users,
		"users_g1": users, "source_freshness_g1": int64(st.sources),
	})
	before := digests(ctx, t, p.pool, 1)

	// Rewind while the projectors are stopped.
	heads, err := p.rebuilder().Heads(ctx)
	require.NoError(t, err)
	for part, h := range heads {
		require.GreaterOrEqual(t, h, int64(rewind), "records in partition %d; the rewind must go back %d", part, rewind)
	}
	tag, err := p.pool.Exec(ctx, `UPDATE projection_checkpoints SET next_offset = GREATEST(next_offset - $1, 0) WHERE name = 'metrics' AND generation = 1`, rewind)
	require.NoError(t, err)
	require.Equal(t, int64(len(heads)), tag.RowsAffected(), "checkpoints rewound")
	done, head := progress(ctx, t, p, metrics.Name, 1)
	require.Equal(t, rewind*int64(len(heads)), head-done, "records the projector is behind after the rewind")

	stopProjectors = startProjectors(t, p)
	waitCaughtUp(t, p, 60*time.Second, "metrics@1")
	require.NoError(t, stopProjectors(), "projectors after the rewind")
	after := digests(ctx, t, p.pool, 1)
	assert.Equal(t, before, after, "table digests changed after replaying the last %d offsets of every partition", rewind)
	t.Logf("%d events delivered 3 times (%d records); %d samples, %d sleep sessions; replay of %d offsets per partition left every table identical",
		pushes, len(deliveries), st.samples, st.sleeps, rewind)

	// The same log rebuilt from offset 0 in different batches must agree
	// too: redeliveries are harmless "by construction", not by luck of
	// where batch boundaries fell. (A difference only in samples'
	// log_offset means the copy recorded depends on batching: within one
	// batch Metrics.Apply keeps the last copy, across batches the upsert's
	// IS DISTINCT FROM guard keeps the first.)
	t.Run("equals a clean rebuild", func(t *testing.T) {
		gen := rebuildMetrics(t, env)
		compareGenerations(t, p.pool, 1, gen)
	})
}

// TestASlowTransactionHeldOpenSkipsNoEvent holds two transactions open for
// a few seconds while later events are appended and committed: one locks
// partition P's metrics checkpoint row (its next batch blocks before writing
// anything), the other locks every daily rollup of a user on partition Q
// (its next batch blocks midway, after its checkpoint UPDATE and sample
// inserts). The other partitions must keep committing meanwhile; at no
// moment may a checkpoint stand past an event whose rows are not there (or
// rows be visible past a checkpoint); after the release every event is
// applied exactly once.
func TestASlowTransactionHeldOpenSkipsNoEvent(t *testing.T) {
	const (
		users = 40
		hold  = 3 * time.Second
	)
	ctx := context.Background()
	env := backendEnv(t)
	p, _ := openFaultPlatform(t, env)
	parts := p.kcfg.Partitions
	require.GreaterOrEqual(t, parts, int32(4), "this test needs at least 4 partitions")
	st := newFaultStream(users, users*40, 5)
	first, later := st.pushes[:users*10], st.pushes[users*10:]
	appendAll(ctx, t, p, st.regs, 8, 0)
	stopProjectors := startProjectors(t, p)
	firstPos := appendAll(ctx, t, p, first, 8, 0)
	if t.Failed() {
		t.FailNow()
	}
	waitCaughtUp(t, p, 30*time.Second, "metrics@1", "users@1")

	// P: the partition of user 0; Q: another partition, through user v.
	P := engine.PartitionOf(st.users[0].id, parts)
	var v faultUser
	for _, u := range st.users {
		if engine.PartitionOf(u.id, parts) != P {
			v = u
			break
		}
	}
	Q := engine.PartitionOf(v.id, parts)
	holdP, err := p.pool.Begin(ctx)
	require.NoError(t, err)
	defer holdP.Rollback(context.Background())
	var cpP int64
	err = holdP.QueryRow(ctx, `SELECT next_offset FROM projection_checkpoints WHERE name = 'metrics' AND generation = 1 AND partition = $1 FOR UPDATE`, P).Scan(&cpP)
	require.NoError(t, err, "locking partition %d's checkpoint row", P)
	holdQ, err := p.pool.Begin(ctx)
	require.NoError(t, err)
	defer holdQ.Rollback(context.Background())
	_, err = holdQ.Exec(ctx, `SELECT 1 FROM daily_rollups_g1 WHERE user_id = $1 FOR UPDATE`, v.id)
	require.NoError(t, err, "locking the rollups of %s", v.id)
	held := time.Now()
	// v's next push lands on a day that already has a rollup (one second
	// after an existing steps sample), so its batch must update a locked row.
	var at time.Time
	var off int
	err = p.pool.QueryRow(ctx, `SELECT start_at, utc_offset FROM samples_g1 WHERE user_id = $1 AND type = 'steps' ORDER BY start_at LIMIT 1`, v.id).Scan(&at, &off)
	require.NoError(t, err, "a steps sample of %s", v.id)
	start := at.Add(time.Second).In(time.FixedZone("", off))
	blocker := st.push(v, "bridge", "", []ingest.Sample{{Type: "steps", Start: start.Format(time.RFC3339), End: start.Add(time.Minute).Format(time.RFC3339), Value: 77, Unit: "count"}}, nil, 999_999)
	laterEvents := append([]eventstore.Event{blocker}, later...)
	laterPos := appendAll(ctx, t, p, laterEvents, 8, 0)
	if t.Failed() {
		t.FailNow()
	}
	blockPos := laterPos[0]
	require.Equal(t, Q, blockPos.Partition, "the partition the blocking event landed on")

	// Later transactions commit around the held ones: every other
	// partition catches up while P and Q stay where they were.
	var snaps []cpSnapshot
	others := map[int32]bool{}
	for _, pos := range laterPos {
		if pos.Partition != P && pos.Partition != Q {
			others[pos.Partition] = true
		}
	}
	require.NotEmpty(t, others, "no later event landed outside the two held partitions")
	deadline := time.Now().Add(hold + 10*time.Second)
	sawP, sawQ := false, false
	for {
		// The projector's transactions must really be waiting on the held
		// locks: P's on its checkpoint UPDATE, Q's on the rollup upsert.
		rows, err := p.pool.Query(ctx, `SELECT query FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
		require.NoError(t, err)
		waiting, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, q := range waiting {
			sawP = sawP || strings.Contains(q, "UPDATE projection_checkpoints")
			// The rollup recompute (pg_stat_activity truncates it before
			// its INSERT INTO daily_rollups_g1).
			sawQ = sawQ || strings.Contains(q, "WITH touched AS")
		}
		s := takeSnapshot(ctx, t, p.pool, 1)
		snaps = append(snaps, s...)
		heads, err := p.rebuilder().Heads(ctx)
		require.NoError(t, err)
		behind := 0
		for _, c := range s {
			if others[c.part] && c.next < heads[c.part] {
				behind++
			}
			if c.part == P {
				require.Equal(t, cpP, c.next, "partition %d's checkpoint moved while its row was locked", P)
			}
			if c.part == Q {
				require.LessOrEqual(t, c.next, blockPos.Offset, "partition %d's checkpoint passed the blocked event", Q)
			}
		}
		if behind == 0 && sawP && sawQ && time.Since(held) >= hold {
			break
		}
		if time.Now().After(deadline) {
			rows, _ := p.pool.Query(ctx, `SELECT coalesce(state, '') || ' ' || coalesce(wait_event_type, '') || ' ' || coalesce(wait_event, '') || ' ' || left(regexp_replace(query, '\s+', ' ', 'g'), 120) FROM pg_stat_activity WHERE datname = current_database()`)
			activity, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			require.Failf(t, "the held transactions did not play out",
				"while two transactions were held open: %d other partitions did not catch up; projector blocked on the checkpoint row: %v, on the rollup row: %v; snapshot %+v; activity:\n%s", behind, sawP, sawQ, s, strings.Join(activity, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var visible int
	require.NoError(t, p.pool.QueryRow(ctx, `SELECT count(*) FROM samples_g1 WHERE event_id = $1`, blocker.ID).Scan(&visible))
	require.Zero(t, visible, "the blocked event's sample is visible before its transaction committed")
	require.NoError(t, holdP.Rollback(ctx), "releasing partition %d's checkpoint row", P)
	require.NoError(t, holdQ.Rollback(ctx), "releasing the rollups of %s", v.id)
	waitCaughtUp(t, p, 30*time.Second, "metrics@1")
	snaps = append(snaps, takeSnapshot(ctx, t, p.pool, 1)...)

	all := append(append([]eventstore.Event{}, first...), laterEvents...)
	checkSnapshots(t, snaps, sampleOffsets(all, append(firstPos, laterPos...)))
	expectRows(t, p.pool, map[string]int64{"samples_g1": int64(st.samples + 1), "sleep_sessions_g1": int64(st.sleeps)})
	// Exactly once, per event: each push's sample row carries its event id.
	var perEvent, distinct int64
	require.NoError(t, p.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id) FROM samples_g1`).Scan(&perEvent, &distinct))
	assert.Equal(t, int64(len(all)), perEvent, "sample rows; want one row for each event")
	assert.Equal(t, int64(len(all)), distinct, "distinct events among the sample rows")
	assert.NoError(t, stopProjectors(), "projectors")
	t.Logf("held partition %d (checkpoint row) and %d (rollups of %s) for %v; %d snapshots; %d events applied once each",
		P, Q, v.id, time.Since(held).Round(time.Millisecond), len(snaps)/int(parts), len(all))
}

// ---- the event stream ----

type faultUser struct {
	id   uuid.UUID
	zone string
	loc  *time.Location // the offset the user's devices send (UTC senders: "Z")
}

// faultStream is a synthetic log: registrations, then pushes carrying one
// sample each (steps or heart rate, watch or phone, local offsets or UTC),
// some with a sleep session. Every sample and session has its own natural
// key, so the expected row counts are exact.
type faultStream struct {
	users   []faultUser
	regs    []eventstore.Event
	pushes  []eventstore.Event
	samples int // one per push
	sleeps  int
	sources int // distinct (user, provider, device)
}

var faultZones = []struct {
	zone string
	loc  *time.Location
}{
	{"Asia/Tokyo", time.FixedZone("", 9*3600)},
	{"America/New_York", time.UTC}, // sends UTC: the local day comes from the timezone history (DST on 2026-03-08)
	{"Europe/Berlin", time.FixedZone("", 3600)},
	{"America/Los_Angeles", time.FixedZone("", -8*3600)},
	{"Australia/Sydney", time.UTC},
}

func newFaultStream(users, pushes int, seed uint64) *faultStream {
	s := &faultStream{}
	rng := rand.New(rand.NewPCG(seed, seed))
	registered := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < users; i++ {
		z := faultZones[i%len(faultZones)]
		u := faultUser{id: uuid.New(), zone: z.zone, loc: z.loc}
		s.users = append(s.users, u)
		body, _ := json.Marshal(identity.Registered{Email: u.id.String() + "@example.com", Timezone: u.zone, RegisteredAt: registered})
		s.regs = append(s.regs, event(u.id, identity.EventRegistered, body))
	}
	base := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
	sources := map[string]bool{}
	for i := 0; i < pushes; i++ {
		u := s.users[i%users]
		k := i / users // the user's k-th push
		start := base.Add(time.Duration(k) * 23 * time.Minute).In(u.loc)
		smp := ingest.Sample{Type: "steps", Start: start.Format(time.RFC3339), End: start.Add(5 * time.Minute).Format(time.RFC3339), Value: float64(1 + rng.IntN(900)), Unit: "count"}
		if k%3 == 2 {
			smp = ingest.Sample{Type: "heart_rate", Start: start.Format(time.RFC3339), End: start.Format(time.RFC3339), Value: float64(45 + rng.IntN(80)), Unit: "bpm"}
		}
		device := "watch"
		if k%2 == 1 {
			device = "phone"
		}
		var nights []ingest.SleepSession
		if k%25 == 7 {
			ts := func(d time.Duration) string { return start.Add(d).Format(time.RFC3339) }
			nights = []ingest.SleepSession{{Start: ts(0), End: ts(7 * time.Hour), Stages: []ingest.Stage{
				{Stage: "light", Start: ts(0), End: ts(2 * time.Hour)},
				{Stage: "deep", Start: ts(2 * time.Hour), End: ts(3 * time.Hour)},
				{Stage: "rem", Start: ts(3 * time.Hour), End: ts(4 * time.Hour)},
				{Stage: "awake", Start: ts(4 * time.Hour), End: ts(4*time.Hour + 10*time.Minute)},
				{Stage: "light", Start: ts(4*time.Hour + 10*time.Minute), End: ts(7 * time.Hour)},
			}}}
			s.sleeps++
		}
		sources[u.id.String()+"/"+device] = true
		s.pushes = append(s.pushes, s.push(u, "bridge", device, []ingest.Sample{smp}, nights, i))
		s.samples++
	}
	s.sources = len(sources)
	return s
}

// push builds one samples.pushed event as the webhook handler would (the
// received_at is derived from i so a rebuild has nothing to differ on).
func (s *faultStream) push(u faultUser, provider, device string, samples []ingest.Sample, nights []ingest.SleepSession, i int) eventstore.Event {
	b := ingest.Batch{UserID: u.id.String(), Source: ingest.Source{Provider: provider, Device: device}, Samples: samples, SleepSessions: nights}
	if err := b.Validate(true, time.Time{}); err != nil {
		panic(fmt.Sprintf("fault stream builds an invalid batch: %v", err))
	}
	body, _ := json.Marshal(ingest.Pushed{DeliveryID: fmt.Sprintf("fault-%d", i), Channel: "webhook",
		ReceivedAt: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second), Batch: b})
	return event(u.id, ingest.EventPushed, body)
}

func event(user uuid.UUID, typ string, payload []byte) eventstore.Event {
	now := time.Now().UTC()
	return eventstore.Event{ID: uuid.New(), Type: typ, SchemaVersion: 1, UserID: user, OccurredAt: now, RecordedAt: now, Payload: payload}
}

// appendAll appends events through `workers` appenders of their own (each
// its own producer and connection, like several API instances; one appender
// sends one record at a time) and returns their positions, index-aligned.
// With pace > 0, event i is not sent before i/len(events) of pace elapsed.
// A cancelled ctx stops it quietly (the positions are then incomplete).
// It may run outside the test's goroutine (the kill test's producer), and
// its appenders never do: failures are asserted, and the caller checks
// t.Failed() where it must stop.
// appendAll appends events with workers appenders (paced over pace when it
// is positive) and returns each one's position. Tests that compare rows
// with log offsets need the position each record really landed at, so a
// failed append fails the test; a test whose checks are by natural keys
// only may pass redeliver, and then an append that answered "unavailable"
// is sent again (testbackend.Append).
func appendAll(ctx context.Context, t *testing.T, p *platform, events []eventstore.Event, workers int, pace time.Duration, redeliver ...bool) []eventstore.Position {
	t.Helper()
	pos := make([]eventstore.Position, len(events))
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	began := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			app := kafka.NewAppender(p.kcfg, p.codec)
			defer app.Close()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(events) {
					return
				}
				if pace > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Until(began.Add(pace * time.Duration(i) / time.Duration(len(events))))):
					}
				}
				var pp eventstore.Position
				var err error
				if len(redeliver) > 0 && redeliver[0] {
					pp, err = testbackend.Append(ctx, app, events[i])
				} else {
					pp, err = app.Append(ctx, events[i])
				}
				if err != nil {
					failed.Store(true)
					if ctx.Err() == nil {
						assert.NoError(t, err, "append %d of %d", i, len(events))
					}
					return
				}
				pos[i] = pp
			}
		}()
	}
	wg.Wait()
	return pos
}

// sampleOffsets lists, per partition, the sorted offsets of the events that
// carry exactly one sample (every push of a faultStream).
func sampleOffsets(events []eventstore.Event, pos []eventstore.Position) map[int32][]int64 {
	out := map[int32][]int64{}
	for i, e := range events {
		if e.Type == ingest.EventPushed {
			out[pos[i].Partition] = append(out[pos[i].Partition], pos[i].Offset)
		}
	}
	for _, offs := range out {
		sort.Slice(offs, func(a, b int) bool { return offs[a] < offs[b] })
	}
	return out
}

// ---- the platform, child processes and read-model checks ----

// openFaultPlatform opens the platform the way `serve` does (no projectors
// started yet). Its warnings are returned by the second result and shown in
// the test log on failure.
func openFaultPlatform(t *testing.T, env map[string]string) (*platform, func() string) {
	t.Helper()
	getenv := func(k string) string { return env[k] }
	cfg, err := loadConfig(getenv)
	require.NoError(t, err)
	var logs bytes.Buffer
	lw := &lockedWriter{w: &logs}
	t.Cleanup(func() {
		lw.mu.Lock()
		defer lw.mu.Unlock()
		if t.Failed() && logs.Len() > 0 {
			t.Logf("platform log (last lines):\n%s", lastLines(logs.String(), 60))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := openPlatform(ctx, cfg, newLogger(lw, "warn"), newTelemetry(), roleServer)
	require.NoError(t, err, "opening the platform")
	t.Cleanup(p.close)
	return p, func() string {
		lw.mu.Lock()
		defer lw.mu.Unlock()
		return logs.String()
	}
}

// startProjectors runs every registered projector generation in this
// process, as `serve` does, until stop is called; stop returns what
// runProjectors returned (nil unless a projector halted) and may be called
// again.
func startProjectors(t *testing.T, p *platform) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.runProjectors(ctx) }()
	stop = sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { _ = stop() })
	return stop
}

// projectorProcess is a child `biosync projections run` (see init).
type projectorProcess struct {
	cmd     *exec.Cmd
	stdin   *os.File
	begun   time.Time
	started chan struct{} // the metrics@1 projector was started
	exited  chan struct{}
	killed  atomic.Bool
	waitErr error
	log     *lineWriter
}

func startProjectorProcess(t *testing.T, env map[string]string) *projectorProcess {
	t.Helper()
	c := &projectorProcess{started: make(chan struct{}), exited: make(chan struct{})}
	var once sync.Once
	c.log = &lineWriter{onLine: func(line string) {
		if strings.Contains(line, `"projector started"`) && strings.Contains(line, `"metrics@1"`) {
			once.Do(func() { close(c.started) })
		}
	}}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), childEnv+"=projections", "BIOSYNC_LOG_LEVEL=info")
	for k, v := range env {
		c.cmd.Env = append(c.cmd.Env, k+"="+v) // the last value of a key wins
	}
	r, w, err := os.Pipe()
	require.NoError(t, err)
	c.cmd.Stdin, c.stdin = r, w
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	c.begun = time.Now()
	require.NoError(t, c.cmd.Start(), "starting the projector process")
	r.Close()
	go func() {
		c.waitErr = c.cmd.Wait()
		c.stdin.Close()
		close(c.exited)
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

// kill sends SIGKILL and waits for the process; it reports whether the
// process was still running (false: it had exited on its own).
func (c *projectorProcess) kill() bool {
	select {
	case <-c.exited:
		return c.killed.Load()
	default:
	}
	c.killed.Store(true)
	_ = c.cmd.Process.Kill()
	<-c.exited
	return true
}

// lineWriter hands each complete line to onLine and keeps the last lines.
type lineWriter struct {
	mu     sync.Mutex
	buf    []byte
	lines  []string
	onLine func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.onLine(line)
		w.lines = append(w.lines, line)
		if len(w.lines) > 80 {
			w.lines = w.lines[len(w.lines)-80:]
		}
	}
}

func (w *lineWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n") + "\n" + string(w.buf)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// progress is a projector generation's checkpoint sum and the log's head sum.
func progress(ctx context.Context, t *testing.T, p *platform, name string, gen int) (done, head int64) {
	t.Helper()
	heads, err := p.rebuilder().Heads(ctx)
	require.NoError(t, err)
	done, head, err = engine.Progress(ctx, p.pool, heads, name, gen)
	require.NoError(t, err, "progress of %s@%d", name, gen)
	return done, head
}

// checkpointSum is the sum of a metrics generation's checkpoints.
func checkpointSum(ctx context.Context, t *testing.T, pool *pgxpool.Pool, gen int) int64 {
	t.Helper()
	var n int64
	err := pool.QueryRow(ctx, `SELECT coalesce(sum(next_offset), 0) FROM projection_checkpoints WHERE name = 'metrics' AND generation = $1`, gen).Scan(&n)
	require.NoError(t, err, "metrics@%d checkpoints", gen)
	return n
}

// waitCaughtUp waits until every named generation ("metrics@1") has applied
// the whole log.
func waitCaughtUp(t *testing.T, p *platform, limit time.Duration, keys ...string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(limit)
	for {
		behind := ""
		for _, key := range keys {
			name, g, _ := strings.Cut(key, "@")
			var gen int
			fmt.Sscan(g, &gen)
			heads, err := p.rebuilder().Heads(ctx)
			require.NoError(t, err)
			done, head, err := engine.Progress(ctx, p.pool, heads, name, gen)
			if err == nil && done < head {
				behind += fmt.Sprintf(" %s: %d of %d", key, done, head)
			} else if err != nil {
				behind += fmt.Sprintf(" %s: %v", key, err)
			}
		}
		if behind == "" {
			return
		}
		require.False(t, time.Now().After(deadline), "projectors did not catch up within %v:%s", limit, behind)
		time.Sleep(50 * time.Millisecond)
	}
}

// cpSnapshot is one partition's metrics checkpoint with the sample rows
// below and at-or-beyond it, read in one statement (one snapshot).
type cpSnapshot struct {
	part               int32
	next, below, above int64
}

func snapshot(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, gen int) ([]cpSnapshot, error) {
	rows, err := q.Query(ctx, fmt.Sprintf(`SELECT c.partition, c.next_offset,
			count(s.log_offset) FILTER (WHERE s.log_offset < c.next_offset),
			count(s.log_offset) FILTER (WHERE s.log_offset >= c.next_offset)
		FROM projection_checkpoints c LEFT JOIN samples_g%d s ON s.log_partition = c.partition
		WHERE c.name = 'metrics' AND c.generation = $1 GROUP BY 1, 2`, gen), gen)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cpSnapshot, error) {
		var s cpSnapshot
		err := r.Scan(&s.part, &s.next, &s.below, &s.above)
		return s, err
	})
}

func takeSnapshot(ctx context.Context, t *testing.T, pool *pgxpool.Pool, gen int) []cpSnapshot {
	t.Helper()
	s, err := snapshot(ctx, pool, gen)
	require.NoError(t, err, "checkpoint snapshot")
	return s
}

// checkSnapshots verifies the checkpoint invariant at every snapshot: the
// rows of exactly the events below the checkpoint are there (none lost,
// none applied beyond the checkpoint in an earlier, uncommitted attempt).
func checkSnapshots(t *testing.T, snaps []cpSnapshot, offsets map[int32][]int64) {
	t.Helper()
	var bad []string
	for _, s := range snaps {
		offs := offsets[s.part]
		want := int64(sort.Search(len(offs), func(i int) bool { return offs[i] >= s.next }))
		if s.below != want || s.above != 0 {
			bad = append(bad, fmt.Sprintf("partition %d at checkpoint %d: %d sample rows below it (want %d, one per event) and %d at or beyond it (want 0)",
				s.part, s.next, s.below, want, s.above))
		}
	}
	assert.NotEmpty(t, snaps, "no checkpoint snapshot was taken")
	assert.Zero(t, len(bad), "%d of %d snapshots broke the checkpoint invariant; the first:\n%s", len(bad), len(snaps), strings.Join(bad[:min(len(bad), 10)], "\n"))
}

func expectRows(t *testing.T, pool *pgxpool.Pool, want map[string]int64) {
	t.Helper()
	for table, n := range want {
		var got int64
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&got), table)
		assert.Equal(t, n, got, "rows in %s", table)
	}
}

// metricsTables are the metrics read models with their primary keys.
var metricsTables = []struct{ base, pk string }{
	{"samples", "user_id, type, start_at, end_at, source"},
	{"daily_rollups", "user_id, type, local_date"},
	{"daily_source_rollups", "user_id, type, local_date, source"},
	{"sleep_sessions", "user_id, start_at, end_at, source"},
	{"source_freshness", "user_id, provider, device"},
	{"tz_history", "user_id, valid_from"},
}

// digest is the md5 of every row, all columns in table order as text,
// ordered by primary key, plus the row count.
func digest(ctx context.Context, pool *pgxpool.Pool, table, pk string) (string, error) {
	var sum string
	var n int64
	err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT md5(coalesce(string_agg(t::text, E'\n' ORDER BY %s), '')), count(*) FROM %s t`, pk, table)).Scan(&sum, &n)
	return fmt.Sprintf("%s (%d rows)", sum, n), err
}

func digests(ctx context.Context, t *testing.T, pool *pgxpool.Pool, gen int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tb := range metricsTables {
		d, err := digest(ctx, pool, fmt.Sprintf("%s_g%d", tb.base, gen), tb.pk)
		require.NoError(t, err, "digest of %s_g%d", tb.base, gen)
		out[tb.base] = d
	}
	return out
}

// compareGenerations requires every metrics table of generation b to be
// byte-identical to generation a's, and shows differing rows if not.
func compareGenerations(t *testing.T, pool *pgxpool.Pool, a, b int) {
	t.Helper()
	ctx := context.Background()
	da, db := digests(ctx, t, pool, a), digests(ctx, t, pool, b)
	for _, tb := range metricsTables {
		ta, tbb := fmt.Sprintf("%s_g%d", tb.base, a), fmt.Sprintf("%s_g%d", tb.base, b)
		if assert.Equal(t, da[tb.base], db[tb.base], "%s differs from the clean rebuild %s", ta, tbb) {
			continue
		}
		var onlyA int64
		_ = pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s) x`, ta, tbb)).Scan(&onlyA)
		// Rows with the same key but different content, side by side.
		var on []string
		for _, c := range strings.Split(tb.pk, ", ") {
			on = append(on, fmt.Sprintf("a.%s = b.%s", c, c))
		}
		var examples []string
		rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT '%s: ' || a::text || E'\n    %s: ' || b::text FROM %s a JOIN %s b ON %s WHERE a::text <> b::text LIMIT 3`,
			ta, tbb, ta, tbb, strings.Join(on, " AND ")))
		if err == nil {
			examples, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		t.Logf("%s vs %s: %d rows differ; e.g.\n    %s", ta, tbb, onlyA, strings.Join(examples, "\n    "))
	}
}

// rebuildMetrics runs `biosync projections rebuild metrics --no-switch` (a
// new generation built from offset 0 in the same database) and returns the
// generation it built.
func rebuildMetrics(t *testing.T, env map[string]string) int {
	t.Helper()
	getenv := func(k string) string {
		if k == "BIOSYNC_LOG_LEVEL" {
			return "warn"
		}
		return env[k]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	began := time.Now()
	err := run(ctx, []string{"projections", "rebuild", "metrics", "--no-switch"}, getenv, &out, &errs)
	require.NoError(t, err, "rebuild:\n%s\n%s", out.String(), lastLines(errs.String(), 40))
	var gen int
	_, err = fmt.Sscanf(out.String(), "building metrics@%d", &gen)
	require.NoError(t, err, "rebuild output:\n%s", out.String())
	require.Contains(t, out.String(), "has caught up", "rebuild output")
	t.Logf("clean rebuild metrics@%d took %v", gen, time.Since(began).Round(time.Millisecond))
	return gen
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func minDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m.Round(time.Millisecond)
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m.Round(time.Millisecond)
}
