package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/biosync/biosync/adapters/auth"
	"github.com/biosync/biosync/adapters/embedded"
	"github.com/biosync/biosync/adapters/httpapi"
	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/adapters/mail"
	"github.com/biosync/biosync/adapters/postgres"
	bredis "github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/accounts"
	"github.com/biosync/biosync/commands/erasure"
	"github.com/biosync/biosync/commands/ingestion"
	"github.com/biosync/biosync/commands/journal"
	"github.com/biosync/biosync/commands/mfa"
	"github.com/biosync/biosync/commands/operators"
	"github.com/biosync/biosync/commands/preferences"
	"github.com/biosync/biosync/commands/samples"
	"github.com/biosync/biosync/commands/sessions"
	"github.com/biosync/biosync/eventstore"
	"github.com/biosync/biosync/projections/catalog"
	"github.com/biosync/biosync/projections/engine"
	journalrm "github.com/biosync/biosync/projections/journal"
	"github.com/biosync/biosync/projections/metrics"
	settingsrm "github.com/biosync/biosync/projections/settings"
	"github.com/biosync/biosync/projections/users"
)

// platform is the wired core: backends, the event store, the command concepts,
// projectors and the query side. serve, migrate and projections run each
// build one and use the parts they need. Its parts are grouped by what
// they are; the groups are embedded so each part reads as p.pool, p.audit,
// p.queries.
type platform struct {
	cfg config
	log *slog.Logger
	backends
	security
	// mail sends account mail; nil while it is off.
	mail accounts.Mailer
	// cmds are the command concepts, wired by wireCommands.
	cmds commandServices
	querySide
	metrics *telemetry

	halted atomic.Pointer[error] // set when the projectors halted

	closers []func() error // run last-in-first-out by close
}

// backends are the connections to PostgreSQL, Redis and the event log.
type backends struct {
	pool     *pgxpool.Pool
	redis    *goredis.Client
	kcfg     kafka.Config
	codec    *eventstore.Codec
	appender *kafka.Appender
	eventLog *kafka.Log
}

// security holds the keys, tokens, sessions and audit log the command
// concepts and the HTTP adapter share.
type security struct {
	// audit is the hash-chained audit log, shared by commands, the admin
	// API, the erasure worker and the operator commands.
	audit *postgres.AuditLog
	// fingerprintKey keys idempotency fingerprints (derived from the master
	// key, so every instance computes the same).
	fingerprintKey []byte
	// cursorKey signs the HTTP API's page cursors (derived from the master
	// key, so a next page may be read from any instance).
	cursorKey []byte
	// emailIndex keys email claims (derived from the master key);
	// operators' tools and per-account rate limits key by it too.
	emailIndex commands.EmailIndex
	tokens     *auth.Tokens
	// sessions stores refresh-token families; revocations is this
	// instance's view of revoked sessions (kept current by its Run), and
	// verifier checks access tokens against both the key and that view.
	sessions    *postgres.Sessions
	revocations *postgres.Revocations
	verifier    auth.Verifier
}

// querySide is the projector registry (versions) and what reads the read
// models: queries, settings (which also serves the unit system) and
// progress, this process's view of the projectors' checkpoints.
type querySide struct {
	versions *engine.Versions
	queries  queries
	settings *settingsrm.Reader
	journal  *journalrm.Reader
	progress *engine.Checkpoints
}

func (p *platform) onClose(f func() error) { p.closers = append(p.closers, f) }

// close shuts everything down in reverse order of construction.
func (p *platform) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		if err := p.closers[i](); err != nil {
			p.log.Warn("shutdown step failed", "err", err)
		}
	}
	p.closers = nil
}

// role says how a command uses the backends.
type role int

const (
	// roleServer (serve): start or connect, create the topic, migrate.
	roleServer role = iota
	// roleMigrator (migrate): like a tool, but creates the topic and migrates.
	roleMigrator
	// roleTool (projections, events, deadletters, users): joins a running
	// embedded server; against real clusters it changes no schema and
	// creates no topic, it only checks the schema is current.
	roleTool
)

// openPlatform starts (embedded) or connects to (production) the backends
// and builds the core. Commands other than serve join an embedded default
// that is already running in another process (a `biosync serve` on the
// same data dir) instead of starting one.
func openPlatform(ctx context.Context, cfg config, log *slog.Logger, tel *telemetry, r role) (_ *platform, err error) {
	attach := r != roleServer
	p := &platform{cfg: cfg, log: log, metrics: tel}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if attach && cfg.embedded() {
		if ep, ok := embedded.ReadEndpoints(cfg.DataDir); ok {
			p.cfg.KafkaBrokers, p.cfg.DatabaseURL, p.cfg.RedisURL = ep.KafkaBrokers, ep.DatabaseURL, ep.RedisURL
			log.Info("attached to the running embedded server", "data_dir", cfg.DataDir)
		}
	}
	embeddedNow := p.cfg.embedded()
	if err := p.startBackends(ctx); err != nil {
		return nil, err
	}
	if embeddedNow {
		ep := embedded.Endpoints{KafkaBrokers: p.cfg.KafkaBrokers, DatabaseURL: p.cfg.DatabaseURL, RedisURL: p.cfg.RedisURL}
		if err := embedded.WriteEndpoints(p.cfg.DataDir, ep); err != nil {
			return nil, err
		}
		p.onClose(func() error { return embedded.RemoveEndpoints(p.cfg.DataDir) })
	}
	cfg = p.cfg // now with the addresses of the embedded servers
	p.kcfg = kafka.Config{Brokers: cfg.KafkaBrokers, Topic: cfg.Topic, Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor}.WithDefaults()
	if r != roleTool || embeddedNow { // a tool that started the embedded backends itself sets them up too
		if err := kafka.EnsureTopic(p.kcfg); err != nil {
			return nil, err
		}
		if err := postgres.Migrate(ctx, cfg.DatabaseURL); err != nil {
			return nil, err
		}
	} else if err := postgres.CheckCurrent(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	if p.pool, err = postgres.Open(ctx, cfg.DatabaseURL, 20); err != nil {
		return nil, err
	}
	p.onClose(func() error { p.pool.Close(); return nil })

	mk, err := eventstore.ParseMasterKeys(cfg.MasterKey)
	if err != nil {
		return nil, fmt.Errorf("BIOSYNC_MASTER_KEY: %w", err)
	}
	keys, err := eventstore.NewKeyring(postgres.NewKeyStore(p.pool), mk)
	if err != nil {
		return nil, err
	}
	p.codec = eventstore.NewCodec(keys)
	p.appender = kafka.NewAppender(p.kcfg, p.codec)
	p.appender.SetObserver(tel.observeAppend)
	p.onClose(p.appender.Close)
	if p.eventLog, err = kafka.NewLog(p.kcfg); err != nil {
		return nil, err
	}
	p.onClose(p.eventLog.Close)

	signing, previous := auth.DecodeKeys(cfg.JWTKey)
	if p.tokens, err = auth.NewTokens(signing, "biosync", "biosync-api", 15*time.Minute); err != nil {
		return nil, fmt.Errorf("BIOSYNC_JWT_KEY: %w", err)
	}
	p.tokens.Previous = previous
	var dedup ingestion.Dedup
	var cache metrics.Cache
	if p.redis != nil {
		dedup = bredis.NewDedup(p.redis, 0)
		cache = bredis.Cache{C: p.redis}
	}
	// A revoked session is remembered as long as one of its access tokens
	// could still pass verification, plus a minute for clock differences
	// between PostgreSQL and this host.
	p.revocations = postgres.NewRevocations(p.pool, p.tokens.TTL+auth.Leeway+time.Minute, log)
	p.sessions = postgres.NewSessions(p.pool)
	p.sessions.OnRevoke = p.revocations.Committed
	p.verifier = auth.Verifier{Tokens: p.tokens, Revocations: p.revocations}
	p.audit = postgres.NewAuditLog(p.pool)
	p.fingerprintKey = mk.Derive(eventstore.PurposeIdempotencyFingerprint)
	p.cursorKey = mk.Derive(eventstore.PurposePageCursor)
	p.emailIndex = commands.EmailIndex(mk.Derive(eventstore.PurposeEmailIndex))
	if r == roleServer {
		if err := p.mailer(embeddedNow); err != nil {
			return nil, err
		}
	}
	if err := p.wireCommands(keys, mk, dedup); err != nil {
		return nil, err
	}
	p.versions = &engine.Versions{Pool: p.pool}
	p.progress = &engine.Checkpoints{}
	p.queries = queries{
		Reader:      &users.Reader{Pool: p.pool, Versions: p.versions, Fields: keys},
		metrics:     &metrics.Reader{Pool: p.pool, Cache: cache, Partitions: p.kcfg.Partitions, Versions: p.versions},
		Consistency: &engine.Consistency{Pool: p.pool, Versions: p.versions, Progress: p.progress},
	}
	p.settings = &settingsrm.Reader{Pool: p.pool, Versions: p.versions, Fields: keys}
	p.journal = &journalrm.Reader{Pool: p.pool, Versions: p.versions, Fields: keys}
	return p, nil
}

// queries is the HTTP adapter's Queries port: the users and metrics read
// models' readers and the consistency wait, side by side.
type queries struct {
	*users.Reader
	metrics *metrics.Reader
	*engine.Consistency
}

// Metrics reads one metric series.
func (q queries) Metrics(ctx context.Context, mq metrics.MetricQuery) (metrics.MetricSeries, error) {
	return q.metrics.Metrics(ctx, mq)
}

// SleepSessions lists one page of the sessions that ended in [q.From,
// q.To).
func (q queries) SleepSessions(ctx context.Context, sq metrics.SleepQuery) (metrics.SleepPage, error) {
	return q.metrics.SleepSessions(ctx, sq)
}

// Nights reads one page of nights.
func (q queries) Nights(ctx context.Context, nq metrics.NightsQuery) (metrics.NightsPage, error) {
	return q.metrics.Nights(ctx, nq)
}

// Dashboard returns the summary (see metrics.Reader.Dashboard).
func (q queries) Dashboard(ctx context.Context, userID uuid.UUID, token eventstore.Token) (metrics.Dashboard, error) {
	return q.metrics.Dashboard(ctx, userID, token)
}

// commandServices are the command concepts of one process, each built by
// its constructor, which names a missing dependency at start.
type commandServices struct {
	ingestion   *ingestion.Service
	samples     *samples.Service
	accounts    *accounts.Service
	sessions    *sessions.Service
	mfa         *mfa.Service
	preferences *preferences.Service
	journal     *journal.Service
	erasure     *erasure.Service
	operators   *operators.Service
}

// wireCommands builds the command concepts on the platform's adapters;
// MFA's second-factor check is handed to sessions here, so neither
// package knows the other.
func (p *platform) wireCommands(keys *eventstore.Keyring, mk eventstore.MasterKeys, dedup ingestion.Dedup) (err error) {
	cfg, c := p.cfg, &p.cmds
	envelope := commands.Envelope{CorrelationID: httpapi.CorrelationID}
	accts := postgres.NewAccounts(p.pool)
	passwords := auth.Hasher{Params: auth.DefaultParams}
	deliveries := postgres.NewDeliveries(p.pool)
	if c.ingestion, err = ingestion.New(ingestion.Deps{Log: p.appender, Accounts: accts, Dedup: dedup, Deliveries: deliveries, Envelope: envelope, Logger: p.log}); err != nil {
		return err
	}
	if c.samples, err = samples.New(samples.Deps{Log: p.appender, Envelope: envelope}); err != nil {
		return err
	}
	if c.preferences, err = preferences.New(preferences.Deps{Log: p.appender, Versions: postgres.NewDocumentVersions(p.pool), Envelope: envelope}); err != nil {
		return err
	}
	if c.journal, err = journal.New(journal.Deps{Log: p.appender, Days: postgres.NewJournalDays(p.pool), Envelope: envelope}); err != nil {
		return err
	}
	if c.accounts, err = accounts.New(accounts.Deps{
		Log: p.appender, Accounts: accts, Passwords: passwords, PasswordPolicy: auth.CheckPassword,
		EmailIndex: p.emailIndex, Credentials: p.sessions,
		Mail:  accounts.MailDeps{Sender: p.mail, Tokens: postgres.NewEmailTokens(p.pool), AppURL: cfg.AppURL},
		Audit: p.audit, Logger: p.log, Envelope: envelope,
	}); err != nil {
		return err
	}
	if c.mfa, err = mfa.New(mfa.Deps{
		Store: p.sessions, TOTP: auth.TOTP{Issuer: "BioSync"}, Secrets: keys,
		RecoveryCodeKey: mk.Derive(eventstore.PurposeRecoveryCodes),
		Accounts:        accts, Passwords: passwords, Audit: p.audit, Logger: p.log,
	}); err != nil {
		return err
	}
	if c.sessions, err = sessions.New(sessions.Deps{
		Accounts: accts, Passwords: passwords, Tokens: p.tokens, Store: p.sessions, EmailIndex: p.emailIndex,
		SecondFactor: c.mfa, RefreshTTL: cfg.RefreshTTL, Audit: p.audit, Logger: p.log,
	}); err != nil {
		return err
	}
	if c.erasure, err = erasure.New(erasure.Deps{
		Store: postgres.NewDeletionRequests(p.pool), Accounts: accts, Passwords: passwords,
		GracePeriod: cfg.ErasureGrace, Audit: p.audit, Logger: p.log,
	}); err != nil {
		return err
	}
	c.operators, err = operators.New(operators.Deps{
		EmailIndex: p.emailIndex, Accounts: accts, MFA: p.sessions, Sessions: c.sessions, Audit: p.audit,
	})
	return err
}

// mailer connects account mail: the configured relay, or on the embedded
// default an in-process relay whose inbox is <data dir>/mail. Production
// without BIOSYNC_SMTP_URL runs without account mail (verification and
// reset answer 503) and says so at start.
func (p *platform) mailer(embeddedDefault bool) error {
	relay := p.cfg.SMTPURL
	if relay == "" && embeddedDefault {
		s, err := embedded.StartSMTP(filepath.Join(p.cfg.DataDir, "mail"), p.log)
		if err != nil {
			return err
		}
		p.onClose(s.Close)
		relay = "smtp://" + s.Addr() + "?tls=none"
		p.log.Info("embedded mail relay started; account mail lands in the inbox directory", "inbox", s.Inbox())
	}
	if relay == "" {
		p.log.Warn("BIOSYNC_SMTP_URL not set: account mail is off (email verification and password reset answer 503)")
		return nil
	}
	mc, err := parseSMTPURL(relay, p.cfg.MailFrom)
	if err != nil {
		return fmt.Errorf("BIOSYNC_SMTP_URL: %w", err)
	}
	sender, err := mail.New(mc)
	if err != nil {
		return err
	}
	p.mail = sender
	return nil
}

// startBackends starts the in-process servers for anything not configured
// and connects Redis.
func (p *platform) startBackends(ctx context.Context) error {
	cfg := &p.cfg
	if len(cfg.KafkaBrokers) == 0 {
		k, err := embedded.StartKafka(filepath.Join(cfg.DataDir, embedded.KafkaDir))
		if err != nil {
			return fmt.Errorf("embedded kafka: %w", err)
		}
		p.onClose(k.Close)
		cfg.KafkaBrokers = k.Brokers()
		p.log.Info("embedded kafka (kfake) started", "brokers", cfg.KafkaBrokers)
	}
	if cfg.DatabaseURL == "" {
		pg, err := embedded.StartPostgres(ctx, filepath.Join(cfg.DataDir, "postgres"), cfg.PostgresBin)
		if err != nil {
			return fmt.Errorf("embedded postgres: %w", err)
		}
		p.onClose(pg.Close)
		dsn, err := postgres.EnsureDatabase(ctx, pg.DSN(), "biosync")
		if err != nil {
			return err
		}
		cfg.DatabaseURL = dsn
		p.log.Info("embedded postgres started", "port", pg.Port())
	}
	if cfg.RedisURL == "" {
		r, err := embedded.StartRedis(filepath.Join(cfg.DataDir, "redis", "snapshot.json"))
		if err != nil {
			return fmt.Errorf("embedded redis: %w", err)
		}
		p.onClose(r.Close)
		cfg.RedisURL = r.URL()
	}
	rc, err := bredis.Open(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("BIOSYNC_REDIS_URL: %w", err)
	}
	p.redis = rc
	p.onClose(rc.Close)
	p.cfg = *cfg
	return nil
}

// runProjectors runs every registered projector generation until ctx ends;
// a fatal projector error stops all of them and is returned (loudly: a
// halted projector means misconfiguration or corruption, never something to
// paper over).
func (p *platform) runProjectors(ctx context.Context) error {
	go p.followErasures(ctx)
	return p.supervisor(nil).Run(ctx)
}

// forget drops an erased user from this process's memory: the data key
// (so nothing of theirs is decrypted or encrypted again) and the
// active-account cache (so pushes for them are refused).
func (p *platform) forget(user uuid.UUID) {
	p.codec.Keys().Forget(user)
	p.cmds.ingestion.Forget(user)
}

// followErasures applies erasures carried out by any instance until ctx
// ends (Redis pub/sub; a missed message is covered by the key cache's age
// bound and the erasure's second purge).
func (p *platform) followErasures(ctx context.Context) {
	bredis.Erasures{C: p.redis}.Subscribe(ctx, p.forget, p.log)
}

// eraser carries out due erasure requests (run by serve).
func (p *platform) eraser() (*erasure.Eraser, error) {
	every := min(10*time.Second, p.cfg.ErasureGrace/4, p.cfg.ErasureRepurge/4)
	return erasure.NewEraser(erasure.EraserDeps{
		Store:        postgres.NewDeletionRequests(p.pool),
		Keys:         p.codec.Keys(),
		Caches:       bredis.Erasures{C: p.redis},
		Broadcast:    bredis.Erasures{C: p.redis},
		Sessions:     p.cmds.sessions,
		Audit:        p.audit,
		Forget:       p.forget,
		RepurgeAfter: p.cfg.ErasureRepurge,
		Every:        max(every, 100*time.Millisecond),
		Logger:       p.log,
	})
}

// supervisor builds a projector supervisor; only limits it to some
// generations ("name@gen").
func (p *platform) supervisor(only map[string]bool) *engine.Supervisor {
	return &engine.Supervisor{
		Pool: p.pool, Versions: p.versions, Codec: p.codec,
		// One Log (client, connection, consumer) per projector: see kafka.Log.Subscribe.
		OpenLog: func() (eventstore.Log, func(), error) {
			l, err := kafka.NewLog(p.kcfg)
			if err != nil {
				return nil, nil, err
			}
			return l, func() { l.Close() }, nil
		},
		Catalog:  catalog.Catalog{Dashboards: &metrics.DashboardCache{Reader: p.queries.metrics}},
		Logger:   p.log,
		Observer: p.metrics,
		Only:     only,
	}
}

// rebuilder drives rebuilds, switches and progress reports over this
// platform's registry and event log.
func (p *platform) rebuilder() *engine.Rebuilder {
	return &engine.Rebuilder{Pool: p.pool, Versions: p.versions, Catalog: catalog.Catalog{}, Log: p.eventLog}
}
