package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/biosync/biosync/eventstore/eventexport"
)

const eventsUsage = `usage:
  biosync events tail   [--user ID]... [--type T]... [--format jsonl|csv] [--pseudonymize] [--from RFC3339]
  biosync events export [--user ID]... [--type T]... [--from RFC3339] [--to RFC3339]
                        [--format jsonl|csv] [--pseudonymize] [--out FILE]

tail follows the event log from now (or --from) until interrupted; export writes
the log as it is when the export starts (from --from, before --to) and exits.
--user and --type repeat or take comma-separated lists. --pseudonymize replaces
user ids by keyed pseudonyms (BIOSYNC_PSEUDONYM_KEY, base64 of >= 32 bytes;
generated into the data dir on the embedded default) and drops e-mail addresses.`

// progressInterval is how often a non-terminal export prints a progress
// line (a variable so tests need not wait five seconds).
var progressInterval = 5 * time.Second

// eventsRequest is a parsed `events` command line.
type eventsRequest struct {
	follow bool
	filter eventexport.Filter
	opts   eventexport.Options
	out    string // export: file to write ("" = stdout)
}

// runEvents is `biosync events tail|export`: the analysts' view of the
// event log, read directly from Kafka and decrypted with the users' data
// keys, against a running embedded server (through <data dir>/endpoints.json)
// or real clusters configured by the usual variables.
func runEvents(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	req, err := parseEvents(args, time.Now(), stderr)
	if err != nil {
		return err
	}
	if req.opts.Pseudonymize {
		// Fail before starting or attaching to anything.
		cfg, err := loadConfig(getenv)
		if err != nil {
			return err
		}
		if !cfg.embedded() && cfg.PseudonymKey == "" {
			return errors.New("--pseudonymize needs BIOSYNC_PSEUDONYM_KEY (base64 of at least 32 random bytes) with a configured backend")
		}
	}
	return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error {
		if req.opts.Pseudonymize {
			key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(p.cfg.PseudonymKey))
			if err != nil || len(key) < eventexport.MinPseudonymKeyLen {
				return fmt.Errorf("BIOSYNC_PSEUDONYM_KEY: want standard base64 of at least %d bytes", eventexport.MinPseudonymKeyLen)
			}
			req.opts.PseudonymKey = key
		}
		return req.run(ctx, p, stdout, stderr)
	})
}

// parseEvents reads the command line; now is when a tail without --from
// starts.
func parseEvents(args []string, now time.Time, stderr io.Writer) (eventsRequest, error) {
	if len(args) == 0 || (args[0] != "tail" && args[0] != "export") {
		fmt.Fprintln(stderr, eventsUsage)
		return eventsRequest{}, errors.New("usage: biosync events tail|export [flags]")
	}
	req := eventsRequest{follow: args[0] == "tail"}
	fs := flag.NewFlagSet("biosync events "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, eventsUsage) }
	var users, types listFlag
	fs.Var(&users, "user", "only this user's events (user id; repeatable, comma-separated)")
	fs.Var(&types, "type", "only events of this type, e.g. samples.pushed (repeatable, comma-separated)")
	fs.StringVar(&req.opts.Format, "format", eventexport.FormatJSONL, "jsonl or csv")
	fs.BoolVar(&req.opts.Pseudonymize, "pseudonymize", false, "replace user ids by keyed pseudonyms and drop e-mail addresses")
	from := fs.String("from", "", "start at the first event recorded at or after this RFC 3339 time")
	var to *string
	if !req.follow {
		to = fs.String("to", "", "stop before the first event recorded at or after this RFC 3339 time")
		fs.StringVar(&req.out, "out", "", "write to this file instead of stdout (replaced only when the export succeeds)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return eventsRequest{}, err
	}
	if fs.NArg() > 0 {
		return eventsRequest{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if req.opts.Format != eventexport.FormatJSONL && req.opts.Format != eventexport.FormatCSV {
		return eventsRequest{}, fmt.Errorf("--format %q: want jsonl or csv", req.opts.Format)
	}
	for _, u := range users {
		id, err := uuid.Parse(u)
		if err != nil {
			return eventsRequest{}, fmt.Errorf("--user %q: not a user id (UUID)", u)
		}
		req.filter.Users = append(req.filter.Users, id)
	}
	req.filter.Types = types
	var err error
	if req.filter.From, err = parseTime("--from", *from); err != nil {
		return eventsRequest{}, err
	}
	if to != nil {
		if req.filter.To, err = parseTime("--to", *to); err != nil {
			return eventsRequest{}, err
		}
	}
	if req.follow && req.filter.From.IsZero() {
		req.filter.From = now // a tail starts at the head of the log
	}
	req.opts.Follow = req.follow
	return req, nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time such as 2026-03-01T00:00:00Z", name, s)
	}
	return t, nil
}

// listFlag collects a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// run exports (or tails) to stdout or, atomically, to the --out file.
func (req eventsRequest) run(ctx context.Context, p *platform, stdout, stderr io.Writer) error {
	w := stdout
	var file *os.File
	if req.out != "" {
		var err error
		// Written beside the target and renamed on success, so a failed
		// export never leaves a truncated file that looks complete. 0600:
		// it holds health data.
		if file, err = os.CreateTemp(filepath.Dir(req.out), "."+filepath.Base(req.out)+".*.partial"); err != nil {
			return err
		}
		defer func() {
			if file != nil {
				file.Close()
				os.Remove(file.Name())
			}
		}()
		w = file
	}
	var finish func(error)
	if !req.follow {
		req.opts.Progress, finish = progressReporter(stderr, req.out == "" && isTerminal(stdout), "exporting")
	}
	start := time.Now()
	st, err := eventexport.Export(ctx, p.eventLog, p.codec, req.filter, req.opts, w)
	if finish != nil {
		finish(err)
	}
	if err == nil && file != nil {
		if err = file.Sync(); err == nil {
			err = file.Close()
		}
		if err == nil {
			err = os.Rename(file.Name(), req.out)
		}
		if err == nil {
			file = nil
		}
	}
	if err != nil {
		return err
	}
	dest := "stdout"
	if req.out != "" {
		dest = req.out
	}
	fmt.Fprintf(stderr, "exported %d events to %s (%d skipped by filters, %d of erased users) in %s\n",
		st.Events, dest, st.Skipped, st.Erased, time.Since(start).Round(time.Millisecond))
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressReporter returns the export's progress callback and a function to
// call when the export ends. On a terminal it draws a progress bar with
// events/s and the remaining time (unless the events themselves scroll on
// that terminal); otherwise it prints a plain line every progressInterval,
// which reads well in CI logs and files.
func progressReporter(stderr io.Writer, dataOnTerminal bool, label string) (func(done, total int64), func(error)) {
	if isTerminal(stderr) {
		if dataOnTerminal {
			return nil, nil
		}
		var bar *progressbar.ProgressBar
		progress := func(done, total int64) {
			if total <= 0 {
				return
			}
			if bar == nil {
				bar = progressbar.NewOptions64(total,
					progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription(label),
					progressbar.OptionSetItsString("events"),
					progressbar.OptionShowIts(),
					progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionSetWidth(30),
					progressbar.OptionThrottle(100*time.Millisecond),
				)
			}
			if bar.GetMax64() != total {
				bar.ChangeMax64(total)
			}
			_ = bar.Set64(done)
		}
		finish := func(err error) {
			if bar == nil {
				return
			}
			if err == nil {
				_ = bar.Finish()
			} else {
				_ = bar.Exit()
			}
			fmt.Fprintln(stderr)
		}
		return progress, finish
	}
	start := time.Now()
	last := start
	progress := func(done, total int64) {
		now := time.Now()
		if now.Sub(last) < progressInterval {
			return
		}
		last = now
		fmt.Fprintln(stderr, progressLine(label, done, total, now.Sub(start)))
	}
	return progress, func(error) {}
}
