package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/biosync/biosync/projections/catalog"
	"github.com/biosync/biosync/projections/engine"
)

const projectionsUsage = `usage: biosync projections <command>
  run                         run every registered projector generation (no HTTP)
  list                        projectors, generations, state, checkpoint vs head, lag
  rebuild NAME [--no-switch]  build a new generation from offset 0 beside the live one, then switch reads to it
  rebuild NAME --as-of TIME --into SCHEMA
                              build the projection as it was at TIME into a new schema, for analysis
  rollback NAME               switch reads back to the previous (standby) generation
  drop NAME@GEN               delete a generation that is not live (tables and checkpoints)`

// runProjections implements `biosync projections ...`. Every command works
// against a running embedded server (attached through the data dir) and
// against real clusters through the usual variables.
func runProjections(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, projectionsUsage)
		return errors.New("missing projections command")
	}
	switch args[0] {
	case "run":
		return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error { return p.runProjectors(ctx) })
	case "list":
		return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error { return listProjections(ctx, p, stdout) })
	case "rebuild":
		fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
		noSwitch := fs.Bool("no-switch", false, "leave the new generation building/standby-ready without switching reads")
		asOf := fs.String("as-of", "", "RFC 3339 time: build the projection as it was then (needs --into)")
		into := fs.String("into", "", "a new schema to build into, for analysis; the live read models are not touched")
		name, err := oneArg(fs, args[1:], "NAME")
		if err != nil {
			return err
		}
		if (*asOf == "") != (*into == "") {
			return errors.New("--as-of and --into go together")
		}
		if *asOf != "" {
			at, err := time.Parse(time.RFC3339, *asOf)
			if err != nil {
				return fmt.Errorf("--as-of: %w", err)
			}
			return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error { return buildAsOf(ctx, p, name, *into, at, stdout, stderr) })
		}
		return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error { return rebuild(ctx, p, name, !*noSwitch, stdout, stderr) })
	case "rollback":
		name, err := oneArg(flag.NewFlagSet("rollback", flag.ContinueOnError), args[1:], "NAME")
		if err != nil {
			return err
		}
		return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error {
			gen, err := p.versions.Rollback(ctx, name)
			if err == nil {
				fmt.Fprintf(stdout, "%s@%d is live again\n", name, gen)
			}
			return err
		})
	case "drop":
		key, err := oneArg(flag.NewFlagSet("drop", flag.ContinueOnError), args[1:], "NAME@GEN")
		if err != nil {
			return err
		}
		name, genS, ok := strings.Cut(key, "@")
		gen, convErr := strconv.Atoi(genS)
		if !ok || convErr != nil || gen < 1 {
			return fmt.Errorf("drop wants NAME@GENERATION, e.g. metrics@1, got %q", key)
		}
		return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error {
			pj, err := catalog.Catalog{}.New(name, gen)
			if err != nil {
				return err
			}
			if err := p.versions.Drop(ctx, pj); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "dropped %s\n", key)
			return nil
		})
	default:
		fmt.Fprintln(stderr, projectionsUsage)
		return fmt.Errorf("unknown projections command %q", args[0])
	}
}

func oneArg(fs *flag.FlagSet, args []string, what string) (string, error) {
	// Accept flags before or after the positional argument.
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	if len(pos) != 1 {
		return "", fmt.Errorf("want exactly one %s", what)
	}
	return pos[0], nil
}

func listProjections(ctx context.Context, p *platform, out io.Writer) error {
	list, err := p.rebuilder().Statuses(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PROJECTOR\tSTATE\tCHECKPOINT\tHEAD\tLAG\tCREATED")
	for _, s := range list {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\n", s.Key(), s.State, s.Checkpoint, s.Head, s.Head-s.Checkpoint, s.CreatedAt.UTC().Format(time.RFC3339))
	}
	return w.Flush()
}

// rebuild builds a new generation of a projector from offset 0 while the
// live one keeps serving, then switches reads to it in one transaction. The
// old generation stays (standby) until dropped, so `rollback` can undo the
// switch. This process projects the new generation itself (a running
// server shares the work through partition locks).
func rebuild(ctx context.Context, p *platform, name string, switchReads bool, out, stderr io.Writer) error {
	b := p.rebuilder()
	v, err := b.Start(ctx, name)
	if err != nil {
		return err
	}
	key := v.Key()
	fmt.Fprintf(out, "building %s from offset 0 (reads stay on the live generation)\n", key)
	progress, finish := progressReporter(stderr, false, "rebuilding "+key)
	err = b.Build(ctx, v, switchReads, *p.supervisor(nil), progress)
	finish(err)
	if err != nil {
		return fmt.Errorf("%w (drop it with: biosync projections drop %s)", err, key)
	}
	if !switchReads {
		fmt.Fprintf(out, "%s has caught up; reads stay on the live generation\n", key)
		return nil
	}
	fmt.Fprintf(out, "%s is live; the previous generation is standby (biosync projections rollback %s / drop %s@N)\n", key, name, name)
	return nil
}

// progressLine renders "key: done/head events (pct), rate/s, ETA".
func progressLine(key string, done, head int64, elapsed time.Duration) string {
	pct := 100.0
	if head > 0 {
		pct = float64(done) * 100 / float64(head)
	}
	rate := float64(done) / max(elapsed.Seconds(), 0.001)
	eta := "-"
	if rate > 0 && head > done {
		eta = (time.Duration(float64(head-done)/rate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%s: %d/%d events (%.1f%%), %.0f events/s, ETA %s", key, done, head, pct, rate, eta)
}

// buildAsOf builds a projection as it was at a point in time into its own
// schema (see engine.AsOf).
func buildAsOf(ctx context.Context, p *platform, name, schema string, at time.Time, out, stderr io.Writer) error {
	key := fmt.Sprintf("%s as of %s into %s", name, at.Format(time.RFC3339), schema)
	build := engine.AsOf{DSN: p.cfg.DatabaseURL, Log: p.eventLog, Codec: p.codec, Logger: p.log, Catalog: catalog.Catalog{}}
	progress, finish := progressReporter(stderr, false, "building "+key)
	err := build.Build(ctx, name, schema, at, progress)
	finish(err)
	if err == nil {
		fmt.Fprintf(out, "built %s (tables %s.*_g1)\n", key, schema)
	}
	return err
}
