package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// serveUsage, migrateUsage and simulateUsage are the help of the commands
// that have no usage text of their own elsewhere.
const (
	serveUsage = `usage: biosync serve

Runs the HTTP API and, unless BIOSYNC_PROJECTORS=off, the projectors in the same
process. With no backend configuration it starts everything embedded under
BIOSYNC_DATA_DIR (default .biosync): an in-process Kafka, Redis and a PostgreSQL
cluster from the machine's binaries. See docs/operations.md for every variable.`
	migrateUsage = `usage: biosync migrate

Applies the database migrations and creates the event topic, then exits.`
	simulateUsage = `usage: biosync simulate [--users N] [--days N] [--url URL] [--secret whsec_...] [--seed N]
       biosync simulate --provider oura [--users N] [--days N] [--url URL] [--oura-addr HOST:PORT]

Registers simulated users on a running BioSync server, pushes realistic
wearable data for them and writes their journal entries; with --provider
oura, runs a fake Oura and connects each user to it through the real OAuth
flow (the server must be configured with the fake's app: simulate prints
the variables when it is not).`
	versionUsage = `usage: biosync version

Prints the module version, the commit and build time, and the Go version.`
	completionUsage = `usage: biosync completion bash|zsh|fish

Prints a shell completion script, e.g.  source <(biosync completion bash)`
)

// commandUsage is each command's help, printed by --help, -h or
// "biosync help COMMAND" without running anything.
var commandUsage = map[string]string{
	"serve": serveUsage, "migrate": migrateUsage, "projections": projectionsUsage,
	"deadletters": deadLettersUsage, "users": usersUsage, "audit": auditUsage,
	"simulate": simulateUsage, "events": eventsUsage, "version": versionUsage,
	"completion": completionUsage,
}

// helpRequested reports whether a command line asks for help anywhere
// before a "--" (so "biosync projections rebuild metrics --help" prints
// help instead of rebuilding): help must never have side effects.
func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// printHelp prints the help of the command args name (the general usage
// for an unknown or missing one).
func printHelp(stdout io.Writer, args []string) {
	if len(args) > 0 {
		if u, ok := commandUsage[args[0]]; ok {
			fmt.Fprintln(stdout, u)
			return
		}
	}
	fmt.Fprintln(stdout, usage)
}

// printVersion prints what the build recorded: the module version (a tag,
// or a pseudo-version), the VCS revision and time, and the Go version.
func printVersion(stdout io.Writer) {
	version, commit, built, modified := "(devel)", "unknown", "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				built = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified {
			commit += " (modified)"
		}
		fmt.Fprintf(stdout, "biosync %s\ncommit %s\nbuilt %s\n%s\n", version, commit, built, bi.GoVersion)
		return
	}
	fmt.Fprintf(stdout, "biosync %s\n", version)
}

// subcommands are completed after their command.
var subcommands = map[string][]string{
	"projections": {"run", "list", "rebuild", "rollback", "drop"},
	"deadletters": {"list", "retry", "skip"},
	"users":       {"grant-admin", "reset-mfa"},
	"audit":       {"verify", "list"},
	"events":      {"tail", "export"},
	"completion":  {"bash", "zsh", "fish"},
}

// topCommands are completed first, in usage order.
var topCommands = []string{"serve", "migrate", "projections", "deadletters", "users", "audit", "simulate", "events", "version", "completion", "help"}

// printCompletion prints a completion script for shell.
func printCompletion(stdout io.Writer, shell string) error {
	var cases strings.Builder
	for _, c := range topCommands {
		if subs, ok := subcommands[c]; ok {
			fmt.Fprintf(&cases, "    %s) words=%q ;;\n", c, strings.Join(subs, " "))
		}
	}
	switch shell {
	case "bash", "zsh":
		if shell == "zsh" {
			fmt.Fprintln(stdout, "autoload -U +X bashcompinit && bashcompinit")
		}
		fmt.Fprintf(stdout, `_biosync() {
  local cur=${COMP_WORDS[COMP_CWORD]} words
  if [ "$COMP_CWORD" -eq 1 ]; then
    words=%q
  else
    case ${COMP_WORDS[1]} in
%s    help) words=%q ;;
    *) words="--help" ;;
    esac
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _biosync biosync
`, strings.Join(topCommands, " "), cases.String(), strings.Join(topCommands, " "))
		return nil
	case "fish":
		fmt.Fprintf(stdout, "complete -c biosync -f -n __fish_use_subcommand -a %q\n", strings.Join(topCommands, " "))
		for _, c := range topCommands {
			if subs, ok := subcommands[c]; ok {
				fmt.Fprintf(stdout, "complete -c biosync -f -n '__fish_seen_subcommand_from %s' -a %q\n", c, strings.Join(subs, " "))
			}
		}
		return nil
	}
	return fmt.Errorf("completion: unknown shell %q (bash, zsh or fish)", shell)
}
