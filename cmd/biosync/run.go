package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/biosync/biosync/adapters/httpapi"
	httpaccounts "github.com/biosync/biosync/adapters/httpapi/accounts"
	httpadmin "github.com/biosync/biosync/adapters/httpapi/admin"
	httpconnections "github.com/biosync/biosync/adapters/httpapi/connections"
	httperasure "github.com/biosync/biosync/adapters/httpapi/erasure"
	httpingest "github.com/biosync/biosync/adapters/httpapi/ingest"
	httpjournal "github.com/biosync/biosync/adapters/httpapi/journal"
	httppreferences "github.com/biosync/biosync/adapters/httpapi/preferences"
	httpqueries "github.com/biosync/biosync/adapters/httpapi/queries"
	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/adapters/postgres"
	bredis "github.com/biosync/biosync/adapters/redis"
	"github.com/biosync/biosync/projections/engine"
	"github.com/biosync/biosync/schemas"
)

const usage = `usage: biosync <command>

commands:
  serve             run the HTTP API and the projectors (embedded backends by default)
  migrate           apply database migrations and create the event topic, then exit
  projections ...   run | list | rebuild NAME | rollback NAME | drop NAME@GEN (blue/green rebuilds)
  deadletters ...   list | retry --projector NAME [--user ID] | skip EVENT_ID
  users ...         grant-admin EMAIL (admin role) | reset-mfa EMAIL (MFA off, sessions ended)
  audit ...         verify (walk the audit log's hash chain) | list [--action A] [--subject ID] [--actor ID] [--limit N]
  simulate          register users on a running server and push synthetic data
                    (--users N --days D --url URL --secret whsec_...), or connect users
                    to a fake Oura through the real OAuth flow (--provider oura)
  events ...        tail | export: read the event log, filtered, as jsonl or csv (--pseudonymize)
  version           print the version, commit and build time
  completion SHELL  print a completion script for bash, zsh or fish
  help [COMMAND]    this text, or a command's (so does --help after any command)

configuration (environment): BIOSYNC_DATA_DIR, BIOSYNC_HTTP_ADDR, BIOSYNC_KAFKA_BROKERS,
BIOSYNC_DATABASE_URL, BIOSYNC_REDIS_URL, BIOSYNC_MASTER_KEY, BIOSYNC_JWT_KEY,
BIOSYNC_PUSH_SECRET, BIOSYNC_KAFKA_PARTITIONS, BIOSYNC_OTLP_ENDPOINT, BIOSYNC_LOG_LEVEL,
BIOSYNC_PUBLIC_URL, BIOSYNC_OURA_* (providers)
(see docs/operations.md)`

// recovery serves verification and reset when account mail is on; nil
// makes those routes answer 503.
func recovery(p *platform) httpapi.Recovery {
	if p.mail == nil {
		return nil
	}
	return p.cmds.accounts
}

// run is the whole program: it reads configuration through getenv, wires
// every component and shuts them down in reverse order.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command given")
	}
	if helpRequested(args) {
		printHelp(stdout, args)
		return nil
	}
	switch args[0] {
	case "serve":
		return serve(ctx, getenv, stdout, stderr, nil)
	case "migrate":
		return withPlatform(ctx, roleMigrator, getenv, stderr, func(p *platform) error {
			p.log.Info("schema migrated and event topic ensured", "topic", p.kcfg.Topic, "partitions", p.kcfg.Partitions)
			return nil
		})
	case "projections":
		return runProjections(ctx, args[1:], getenv, stdout, stderr)
	case "deadletters":
		return runDeadLetters(ctx, args[1:], getenv, stdout, stderr)
	case "users":
		return runUsers(ctx, args[1:], getenv, stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], getenv, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args[1:], getenv, stdout)
	case "events":
		return runEvents(ctx, args[1:], getenv, stdout, stderr)
	case "help":
		printHelp(stdout, args[1:])
		return nil
	case "version":
		printVersion(stdout)
		return nil
	case "completion":
		if len(args) != 2 {
			fmt.Fprintln(stderr, completionUsage)
			return errors.New("completion needs one shell: bash, zsh or fish")
		}
		return printCompletion(stdout, args[1])
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func withPlatform(ctx context.Context, r role, getenv func(string) string, stderr io.Writer, f func(*platform) error) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	if err := cfg.secrets(func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }); err != nil {
		return err
	}
	p, err := openPlatform(ctx, cfg, log, newTelemetry(), r)
	if err != nil {
		return err
	}
	defer p.close()
	return f(p)
}

// serve runs the API and, unless BIOSYNC_PROJECTORS=off, the projectors in
// the same process. ready (tests) receives the listening address.
func serve(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, ready chan<- string) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	if err := cfg.secrets(func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) }); err != nil {
		return err
	}
	shutdownTracing, err := setupTracing(ctx, cfg.OTLPEndpoint, log)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background())
	tel := newTelemetry()
	p, err := openPlatform(ctx, cfg, log, tel, roleServer)
	if err != nil {
		return err
	}
	defer p.close()

	var keys [][]byte
	for _, s := range p.cfg.PushSecrets {
		k, err := webhooks.ParseSecret(s)
		if err != nil {
			return fmt.Errorf("BIOSYNC_PUSH_SECRET: %w", err)
		}
		keys = append(keys, k)
	}
	// Listen first: without BIOSYNC_PUBLIC_URL the redirect URIs name the
	// address actually bound (port 0 in tests).
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	defer ln.Close()
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	conns, err := p.connectionService(publicURL)
	if err != nil {
		return err
	}
	if err := tel.observeConnections(conns); err != nil {
		return err
	}
	spec, _ := schemas.OpenAPI()
	e, err := httpapi.New(httpapi.Config{
		ConsistencyWait: cfg.ConsistencyWait,
		CORSOrigins:     cfg.CORSOrigins,
		RateLimits:      cfg.RateLimits,
		TrustedProxies:  cfg.TrustedProxies,
		HSTSMaxAge:      cfg.HSTSMaxAge,

		AdminMFAOptional: !cfg.AdminRequireMFA,
		AdminNetworks:    cfg.AdminNetworks,
		MetricsNetworks:  cfg.MetricsNetworks,
	}, httpapi.Deps{
		Accounts: httpaccounts.Deps{
			Accounts: p.cmds.accounts,
			Sessions: p.cmds.sessions,
			MFA:      p.cmds.mfa,
			Recovery: recovery(p),
			Profiles: p.queries,
		},
		Erasure:     httperasure.Deps{Erasure: p.cmds.erasure},
		Ingest:      httpingest.Deps{Ingestor: p.cmds.ingestion, Deleter: p.cmds.samples, MaxFutureSkew: p.cfg.MaxFutureSkew},
		Queries:     httpqueries.Deps{Reader: p.queries, Registrations: p.cmds.accounts, Units: p.settings, CursorKey: p.cursorKey},
		Settings:    httppreferences.Deps{Commands: p.cmds.preferences, Queries: p.settings},
		Journal:     httpjournal.Deps{Commands: p.cmds.journal, Queries: p.journal},
		Connections: httpconnections.Deps{Connections: conns, AppURL: cfg.AppURL},
		Admin: httpadmin.Deps{
			ReadModels: engine.Admin{Rebuilder: p.rebuilder(), Logger: log, Life: ctx},
			Audit:      p.audit,
		},
		Edge: httpapi.EdgeDeps{
			Tokens:      p.verifier,
			Roles:       p.verifier,
			Webhooks:    webhooks.Verifier{Keys: keys},
			Consistency: p.queries,
			// Idempotency-Key outcomes and abuse limits are shared by every
			// instance through Redis.
			Idempotency:    bredis.Idempotency{C: p.redis},
			FingerprintKey: p.fingerprintKey,
			Limiter:        bredis.NewLimiter(p.redis, ""),
			EmailKey:       p.emailIndex.Key,
		},
		Ops: httpapi.OpsDeps{
			Logger:   log,
			Registry: tel.registry,
			Gatherer: tel.registry,
			Health:   p.healthChecks(),
			Spec:     spec,
		},
	})
	if err != nil {
		return err
	}
	eraser, err := p.eraser()
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() {
		// e.Server carries the API's timeouts and header limit; Serve also
		// answers net/http's own refusals (bad Host, oversized headers, ...)
		// as problems with the security headers.
		if err := httpapi.Serve(e, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	eraserDone := make(chan struct{})
	go func() { defer close(eraserDone); eraser.Run(ctx) }()
	go postgres.Housekeep(ctx, p.pool, time.Hour, log)
	go p.progress.Follow(ctx, p.pool, log) // consistency waits end at the projector's commit
	p.rebuilder().ResumeSwitches(ctx, log)
	// The revocation view: until it is live every token is checked against
	// PostgreSQL, so serving before it is loaded is safe.
	revocationsDone := make(chan struct{})
	go func() {
		defer close(revocationsDone)
		_ = p.revocations.Run(ctx)
	}()
	fetchDone := make(chan struct{})
	go func() {
		defer close(fetchDone)
		if !anyConfigured(conns) {
			return
		}
		if err := p.runFetchWorker(ctx, conns); err != nil {
			log.Error("provider fetch worker stopped", "err", err)
		}
	}()
	projectorsDone := make(chan struct{})
	if cfg.RunProjectors {
		go func() {
			defer close(projectorsDone)
			if err := p.runProjectors(ctx); err != nil {
				// Halted loudly (a wrong master key, a corrupt record): the
				// API keeps answering, /readyz reports the halt, and the
				// cause is in the log. Reads go stale, nothing is skipped.
				log.Error("projectors halted", "err", err)
				p.halted.Store(&err)
			}
		}()
	} else {
		go p.followErasures(ctx) // the API's own key cache and account cache
		close(projectorsDone)
	}
	log.Info("biosync serving", "addr", ln.Addr().String(), "embedded", cfg.embedded(), "data_dir", cfg.DataDir)
	fmt.Fprintf(stdout, "BioSync is listening on http://%s (API spec at /openapi.yaml)\n", ln.Addr())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case <-ctx.Done():
		err = nil
	case err = <-errc:
	}
	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = e.Server.Shutdown(sctx)
	cancel()
	<-projectorsDone // before the deferred close tears the backends down
	<-fetchDone
	<-eraserDone
	<-revocationsDone
	return err
}

func (p *platform) healthChecks() []httpapi.HealthCheck {
	return []httpapi.HealthCheck{
		{Name: "postgres", Check: func(ctx context.Context) error { return p.pool.Ping(ctx) }},
		{Name: "kafka", Check: func(ctx context.Context) error { _, err := p.eventLog.Partitions(ctx); return err }},
		{Name: "redis", Check: func(ctx context.Context) error { return p.redis.Ping(ctx).Err() }},
		{Name: "projectors", Check: func(context.Context) error {
			if e := p.halted.Load(); e != nil {
				return *e
			}
			return nil
		}},
	}
}
