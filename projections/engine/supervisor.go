package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/biosync/biosync/eventstore"
)

// Supervisor runs a Runtime for every registered generation of every
// projector (live, standby and building ones), starting runtimes for
// generations that appear (a rebuild started from the CLI) and stopping
// those that are dropped. Several supervisors (serve, projections run, a
// rebuild command) may run at once: partition locks make them share.
type Supervisor struct {
	Pool     *pgxpool.Pool
	Versions *Versions
	Codec    *eventstore.Codec
	// OpenLog gives each runtime its own log reader (see kafka.Log).
	OpenLog func() (eventstore.Log, func(), error)
	// Catalog makes the projector of each generation (with whatever
	// after-commit side effects the wiring gave it).
	Catalog  Catalog
	Logger   *slog.Logger
	Observer Observer
	// Only, when set, restricts the supervisor to these generations
	// ("name@gen" keys), e.g. a rebuild command running just its target.
	Only map[string]bool
	// Poll is how often the registry is re-read (default 2s).
	Poll time.Duration
}

// Run supervises until ctx ends or a runtime halts with a fatal error,
// which is returned.
func (s *Supervisor) Run(ctx context.Context) error {
	if s.Poll == 0 {
		s.Poll = 2 * time.Second
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type running struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	active := map[string]running{}
	fatal := make(chan error, 1)
	defer func() {
		for _, r := range active {
			r.cancel()
			<-r.done
		}
	}()
	tick := time.NewTicker(s.Poll)
	defer tick.Stop()
	for {
		versions, err := s.Versions.List(ctx)
		if err != nil {
			s.Logger.Warn("cannot read projection versions, retrying", "err", err)
		} else {
			seen := map[string]bool{}
			for _, v := range versions {
				key := v.Key()
				if s.Only != nil && !s.Only[key] {
					continue
				}
				seen[key] = true
				if _, ok := active[key]; ok || v.Error != "" {
					continue // running, or halted (not restarted until dropped)
				}
				p, err := s.Catalog.New(v.Name, v.Generation)
				if err != nil {
					s.Logger.Error("registered projector has no implementation in this binary", "projector", key, "err", err)
					continue
				}
				log, closeLog, err := s.OpenLog()
				if err != nil {
					s.Logger.Warn("cannot open the event log, retrying", "projector", key, "err", err)
					continue
				}
				rctx, rcancel := context.WithCancel(ctx)
				done := make(chan struct{})
				rt := &Runtime{Pool: s.Pool, Log: log, Codec: s.Codec, Projector: p, Logger: s.Logger, Observer: s.Observer, Versions: s.Versions,
					Scope: Scope{FailOnPoison: true}} // only while building: see Scope.FailOnPoison
				go func(v Version) {
					defer close(done)
					defer closeLog()
					err := rt.Run(rctx)
					if err == nil {
						return
					}
					// A generation nobody reads from halts alone: record why
					// (rebuild waiters and Promote see it) and keep the live
					// read models flowing. A live one halts everything, loudly.
					if live, lerr := s.Versions.Live(context.WithoutCancel(ctx), v.Name); lerr == nil && live != v.Generation {
						s.Logger.Error("projector generation halted; it stays stopped until dropped", "projector", v.Key(), "err", err)
						if herr := s.Versions.Halted(context.WithoutCancel(ctx), v.Name, v.Generation, err); herr != nil {
							s.Logger.Error("cannot record the halt", "projector", v.Key(), "err", herr)
						}
						return
					}
					select {
					case fatal <- err:
					default:
					}
				}(v)
				active[key] = running{rcancel, done}
				s.Logger.Info("projector started", "projector", key, "state", v.State)
			}
			if err == nil {
				for key, r := range active {
					if !seen[key] {
						r.cancel()
						<-r.done
						delete(active, key)
						s.Logger.Info("projector stopped (generation dropped)", "projector", key)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-fatal:
			return err
		case <-tick.C:
		}
	}
}
