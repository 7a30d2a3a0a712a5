package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/biosync/biosync/projections/engine"
)

const deadLettersUsage = `usage: biosync deadletters <command>
  list [--projector NAME]                  failed events (with the error) and the events parked behind them
  retry --projector NAME [--user USER_ID]  re-apply the held-back events in log order (all users without --user)
  skip EVENT_ID                            give up on one failed event; the events behind it are re-applied`

// runDeadLetters implements `biosync deadletters ...` (see engine.DeadLetters).
func runDeadLetters(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, deadLettersUsage)
		return errors.New("missing deadletters command")
	}
	fs := flag.NewFlagSet("deadletters "+args[0], flag.ContinueOnError)
	projector := fs.String("projector", "", "projector name, e.g. metrics")
	user := fs.String("user", "", "only this user's events")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "list":
		return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error {
			list, err := engine.DeadLetters{Pool: p.pool}.List(ctx, *projector)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PROJECTOR\tSTATE\tPARTITION\tOFFSET\tUSER\tEVENT\tTYPE\tERROR")
			for _, d := range list {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", d.Projector, d.State, d.Partition, d.Offset, d.UserID, d.EventID, d.EventType, d.Error)
			}
			return w.Flush()
		})
	case "retry":
		if *projector == "" {
			return errors.New("retry needs --projector NAME")
		}
		uid := uuid.Nil
		if *user != "" {
			var err error
			if uid, err = uuid.Parse(*user); err != nil {
				return fmt.Errorf("--user: %w", err)
			}
		}
		return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error {
			n, err := engine.DeadLetters{Pool: p.pool}.Retry(ctx, *projector, uid)
			if err == nil {
				fmt.Fprintf(stdout, "marked %d event(s) for retry; the projector re-applies them in log order\n", n)
			}
			return err
		})
	case "skip":
		if fs.NArg() != 1 {
			return errors.New("skip needs exactly one EVENT_ID")
		}
		id, err := uuid.Parse(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("EVENT_ID: %w", err)
		}
		return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error {
			d, err := engine.DeadLetters{Pool: p.pool}.Skip(ctx, id)
			if err == nil {
				fmt.Fprintf(stdout, "skipped %s of user %s in %s; the events parked behind it will be re-applied\n", id, d.UserID, d.Projector)
			}
			return err
		})
	default:
		fmt.Fprintln(stderr, deadLettersUsage)
		return fmt.Errorf("unknown deadletters command %q", args[0])
	}
}
