package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/biosync/biosync/cmd/biosync/internal/simulator"
)

// runSimulate implements "biosync simulate": it fills a running BioSync
// server with synthetic users, wearable data and journal entries through
// the public API and the signed push webhook, so a fresh instance has
// something to look at.
// Flags override the environment: --url defaults to BIOSYNC_URL, else
// http://BIOSYNC_HTTP_ADDR (127.0.0.1:8080); --secret defaults to the first
// secret in BIOSYNC_PUSH_SECRET, else the push_secret file the embedded
// server writes into BIOSYNC_DATA_DIR (./.biosync). Without --seed a random
// seed is used and printed, so a run can be reproduced.
func runSimulate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	env := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}

	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stdout)
	users := fs.Int("users", 3, "number of users to register")
	days := fs.Int("days", 14, "days of history to push per user (the last day ends now)")
	baseURL := fs.String("url", "", "server base URL (default $BIOSYNC_URL, else http://$BIOSYNC_HTTP_ADDR or http://127.0.0.1:8080)")
	secret := fs.String("secret", "", "push webhook secret whsec_... (default first of $BIOSYNC_PUSH_SECRET, else <$BIOSYNC_DATA_DIR or .biosync>/push_secret)")
	seed := fs.Int64("seed", 0, "random seed for reproducible data (default: random, printed)")
	prov := fs.String("provider", "", "simulate a wearable provider instead of pushes: oura runs a fake Oura and connects each user through the real OAuth flow")
	ouraAddr := fs.String("oura-addr", simOuraAddr, "where the fake Oura listens (the server's BIOSYNC_OURA_*_URL must point there)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: biosync simulate [--users N] [--days N] [--url URL] [--secret whsec_...] [--seed N] [--provider oura [--oura-addr HOST:PORT]]")
		fmt.Fprintln(fs.Output(), "\nRegisters simulated users on a running BioSync server, pushes realistic wearable data for them and writes their journal entries.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("simulate: unexpected arguments %q", fs.Args())
	}
	if *users < 1 || *days < 1 {
		return errors.New("simulate: --users and --days must be at least 1")
	}

	if *baseURL == "" {
		*baseURL = env("BIOSYNC_URL", "")
	}
	if *baseURL == "" {
		// The listen address may be a wildcard (":8080", "0.0.0.0:8080");
		// connect to loopback instead.
		addr := env("BIOSYNC_HTTP_ADDR", "127.0.0.1:8080")
		if host, port, err := net.SplitHostPort(addr); err == nil {
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			addr = net.JoinHostPort(host, port)
		}
		*baseURL = "http://" + addr
	}

	switch *prov {
	case "":
	case "oura":
		s := *seed
		if s == 0 {
			s = rand.Int64()
		}
		return simulateOura(ctx, *baseURL, *ouraAddr, *users, *days, s, stdout)
	default:
		return fmt.Errorf("simulate: --provider %q is not simulated yet (oura is)", *prov)
	}

	if *secret == "" {
		// The server accepts several space-separated secrets during
		// rotation; the first is the current one.
		if fields := strings.Fields(getenv("BIOSYNC_PUSH_SECRET")); len(fields) > 0 {
			*secret = fields[0]
		}
	}
	if *secret == "" {
		path := filepath.Join(env("BIOSYNC_DATA_DIR", ".biosync"), "push_secret")
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("simulate: no push secret: pass --secret or set BIOSYNC_PUSH_SECRET, or run next to an embedded server that wrote %s (%w)", path, err)
		}
		*secret = strings.TrimSpace(string(b))
	}

	explicitSeed := false
	fs.Visit(func(f *flag.Flag) { explicitSeed = explicitSeed || f.Name == "seed" })
	if !explicitSeed {
		*seed = rand.Int64() // not security relevant; printed by simulator.Run
	}

	return simulator.Run(ctx, simulator.Config{
		BaseURL:    *baseURL,
		PushSecret: *secret,
		Users:      *users,
		Days:       *days,
		Seed:       *seed,
	}, stdout)
}
