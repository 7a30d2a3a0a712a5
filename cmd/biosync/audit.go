package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/biosync/biosync/commands"
)

const auditUsage = `usage: biosync audit <command>
  verify                                          walk the whole hash chain; exit status 1 at the first break
  list [--action A] [--subject ID] [--actor ID] [--after SEQ] [--limit N]
                                                  entries in chain order`

// runAudit implements `biosync audit verify|list` (see commands/operators).
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, auditUsage)
		return errors.New("missing audit command")
	}
	fs := flag.NewFlagSet("audit "+args[0], flag.ContinueOnError)
	action := fs.String("action", "", "only this action, e.g. auth.login_failed")
	subject := fs.String("subject", "", "only entries about this user id")
	actor := fs.String("actor", "", "only entries where this user id acted")
	after := fs.Int64("after", 0, "only entries after this sequence number")
	limit := fs.Int("limit", 100, "at most this many entries (max 1000)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "verify":
		return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error {
			c, err := p.cmds.operators.VerifyAudit(ctx)
			if err != nil {
				return err
			}
			if c.Break != nil {
				return fmt.Errorf("audit chain broken at entry %d: %s (%d entries before it verified)", c.Break.Seq, c.Break.Reason, c.Entries)
			}
			head := ""
			if c.Entries > 0 {
				head = fmt.Sprintf("; head %d %s (keep it elsewhere: a later verify must reach it)", c.Entries, hex.EncodeToString(c.Head))
			}
			fmt.Fprintf(stdout, "audit chain intact: %d entries verified%s\n", c.Entries, head)
			return nil
		})
	case "list":
		f := commands.AuditFilter{Action: *action, After: *after, Limit: *limit}
		for _, id := range []struct {
			flag string
			into *uuid.UUID
		}{{*subject, &f.Subject}, {*actor, &f.Actor}} {
			if id.flag == "" {
				continue
			}
			u, err := uuid.Parse(id.flag)
			if err != nil {
				return fmt.Errorf("not a user id: %q", id.flag)
			}
			*id.into = u
		}
		return withPlatform(ctx, roleTool, getenv, stderr, func(p *platform) error {
			list, err := p.cmds.operators.ListAudit(ctx, f)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SEQ\tAT\tACTION\tACTOR\tSUBJECT\tIP\tDETAIL\tHASH")
			for _, r := range list {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.At.Format("2006-01-02T15:04:05.000Z"), r.Action,
					orDash(r.Actor), orDash(r.Subject), r.IP, details(r.Detail), hex.EncodeToString(r.Hash)[:16])
			}
			return w.Flush()
		})
	default:
		fmt.Fprintln(stderr, auditUsage)
		return fmt.Errorf("unknown audit command %q", args[0])
	}
}

func orDash(id uuid.UUID) string {
	if id == uuid.Nil {
		return "-"
	}
	return id.String()
}

func details(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+d[k])
	}
	return strings.Join(parts, " ")
}
