package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Asking any command for help prints its help and exits 0 without doing
// anything: no configuration is read (so nothing can be started, migrated
// or rebuilt), whatever else is on the command line. Before, `serve --help`
// started a server and `migrate --help` migrated.
func TestHelpOnEveryCommandPrintsHelpAndDoesNothing(t *testing.T) {
	lines := [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"serve", "--help"}, {"serve", "-h"}, {"migrate", "--help"},
		{"projections", "--help"}, {"projections", "rebuild", "metrics", "--help"}, {"projections", "run", "-h"},
		{"deadletters", "retry", "--projector", "metrics", "--help"}, {"users", "grant-admin", "a@example.com", "--help"},
		{"audit", "verify", "-help"}, {"simulate", "--help"}, {"events", "export", "--out", "x.jsonl", "--help"},
		{"version", "--help"}, {"completion", "--help"}, {"help", "events"},
	}
	for _, args := range lines {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			getenv := func(k string) string {
				assert.Failf(t, "help read configuration", "%s read %s", strings.Join(args, " "), k)
				return ""
			}
			var out, errOut bytes.Buffer
			err := run(context.Background(), args, getenv, &out, &errOut)
			require.NoError(t, err)
			assert.Regexp(t, `(?s)^usage:.*biosync`, out.String(), "help goes to stdout")
			if len(args) > 1 && args[0] != "help" {
				assert.Contains(t, out.String(), args[0], "the command's own help")
			}
		})
	}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"help", "projections"}, nil, &out, &out))
	assert.Equal(t, projectionsUsage+"\n", out.String())
}

func TestVersionNamesTheBuild(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"version"}, nil, &out, &out))
	assert.Regexp(t, `(?s)^biosync \S+\ncommit \S+.*\nbuilt \S+\ngo1\.`, out.String())
}

// The completion scripts are valid for their shells and complete the
// commands and subcommands.
func TestCompletionScriptsAreValidShell(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"completion", "bash"}, nil, &out, &out))
	script := filepath.Join(t.TempDir(), "biosync.bash")
	require.NoError(t, os.WriteFile(script, out.Bytes(), 0o600))
	got, err := exec.Command("bash", "-c", `source "$1"; COMP_WORDS=(biosync projections re); COMP_CWORD=2; _biosync; echo "${COMPREPLY[@]}"`, "bash", script).CombinedOutput()
	require.NoError(t, err, "%s", got)
	assert.Equal(t, "rebuild", strings.TrimSpace(string(got)))
	got, err = exec.Command("bash", "-c", `source "$1"; COMP_WORDS=(biosync s); COMP_CWORD=1; _biosync; echo "${COMPREPLY[@]}"`, "bash", script).CombinedOutput()
	require.NoError(t, err, "%s", got)
	assert.Equal(t, "serve simulate", strings.TrimSpace(string(got)))
	for _, shell := range []string{"zsh", "fish"} {
		out.Reset()
		require.NoError(t, run(context.Background(), []string{"completion", shell}, nil, &out, &out), shell)
		assert.Contains(t, out.String(), "biosync", shell)
	}
	require.Error(t, run(context.Background(), []string{"completion", "tcsh"}, nil, &out, &out))
}
