package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// registerAndLogIn registers a new user and logs in at once, as a frontend
// does after its sign-up form; it returns the user id.
func registerAndLogIn(t *testing.T, c *client) string {
	t.Helper()
	email := fmt.Sprintf("grace-%d@example.com", time.Now().UnixNano())
	code, _, reg := c.do("POST", "/v1/auth/register", map[string]string{"email": email, "password": "correct horse battery", "timezone": "Europe/Paris"}, nil)
	require.Equal(t, 201, code, "register: %v", reg)
	code, _, login := c.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, nil)
	require.Equal(t, 200, code, "login right after 201: %v", login)
	c.token = login["access_token"].(string)
	return reg["id"].(string)
}

// A frontend logs in right after registering and asks for the profile at
// once, without a consistency token, while the users read model has not
// applied the registration yet (here: its projector starts a moment later).
// A logged-in user's profile is never "not found": the query waits for the
// registration to be projected.
func TestAProfileAskedForRightAfterRegistrationWaitsForIt(t *testing.T) {
	env := backendEnv(t)
	env["BIOSYNC_PROJECTORS"] = "off"
	s := startServer(t, env)
	defer s.stop()
	c := &client{t: t, base: s.url}
	userID := registerAndLogIn(t, c)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(300 * time.Millisecond)
		getenv := func(k string) string { return env[k] }
		_ = run(ctx, []string{"projections", "run"}, getenv, io.Discard, io.Discard)
	}()
	defer func() { cancel(); wg.Wait() }()

	code, _, me := c.do("GET", "/v1/me", nil, nil)
	require.Equal(t, 200, code, "GET /v1/me right after login: %v", me)
	assert.Equal(t, userID, me["id"])
	assert.Equal(t, "Europe/Paris", me["timezone"])
}

// When the users read model stays behind for longer than the consistency
// wait, the answer is a retryable 503, not a 404 that would tell the
// frontend the account does not exist.
func TestAProfileStillBeingProjectedIsUnavailableNotNotFound(t *testing.T) {
	env := backendEnv(t)
	env["BIOSYNC_PROJECTORS"] = "off"
	env["BIOSYNC_CONSISTENCY_WAIT"] = "300ms"
	s := startServer(t, env)
	defer s.stop()
	c := &client{t: t, base: s.url}
	registerAndLogIn(t, c)

	code, h, problem := c.do("GET", "/v1/me", nil, nil)
	require.Equal(t, 503, code, "GET /v1/me while the users projector is stopped: %v", problem)
	assert.NotEmpty(t, h.Get("Retry-After"))
}
