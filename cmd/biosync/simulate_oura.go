package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/biosync/biosync/adapters/providers/oura/ouratest"
)

// The fake Oura app of `biosync simulate --provider oura`: the server must
// be configured with these (simulate prints them when it is not).
const (
	simOuraClientID     = "biosync-simulator"
	simOuraClientSecret = "biosync-simulator-oura-secret"
	simOuraAddr         = "127.0.0.1:18091"
)

// ouraServeEnv is the configuration a server needs to use the simulator's
// fake Oura at addr.
func ouraServeEnv(addr string) string {
	base := "http://" + addr
	return strings.Join([]string{
		"BIOSYNC_OURA_CLIENT_ID=" + simOuraClientID,
		"BIOSYNC_OURA_CLIENT_SECRET=" + simOuraClientSecret,
		"BIOSYNC_OURA_AUTH_URL=" + base + "/oauth/authorize",
		"BIOSYNC_OURA_TOKEN_URL=" + base + "/oauth/token",
		"BIOSYNC_OURA_API_URL=" + base,
	}, " ")
}

// simulateOura runs a fake Oura on addr and, for each new user, drives the
// real connect flow through the running server (authorize, consent,
// callback), waits for the backfill of days of history, then sends one
// signed notification for a new night and waits until it was fetched. The
// fake lives as long as the command.
func simulateOura(ctx context.Context, base, addr string, users, days int, seed int64, stdout io.Writer) error {
	api := &simClient{base: strings.TrimRight(base, "/")}
	var providers struct {
		Providers []struct {
			Name       string `json:"name"`
			Configured bool   `json:"configured"`
		} `json:"providers"`
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("simulate: the fake Oura cannot listen on %s: %w", addr, err)
	}
	fake := ouratest.StartOn(ln, simOuraClientID, simOuraClientSecret)
	defer fake.Close()
	for u := 0; u < users; u++ {
		email := fmt.Sprintf("sim-oura-%d-%d@example.com", time.Now().UnixNano(), u)
		const password = "simulated oura wearer"
		if err := api.call(ctx, "POST", "/v1/auth/register", map[string]string{"email": email, "password": password, "timezone": "Europe/Berlin"}, 201, nil); err != nil {
			return err
		}
		var login struct {
			AccessToken string `json:"access_token"`
		}
		if err := api.call(ctx, "POST", "/v1/auth/login", map[string]string{"email": email, "password": password}, 200, &login); err != nil {
			return err
		}
		api.token = login.AccessToken
		if u == 0 {
			if err := api.call(ctx, "GET", "/v1/providers", nil, 200, &providers); err != nil {
				return err
			}
			configured := false
			for _, p := range providers.Providers {
				configured = configured || (p.Name == "oura" && p.Configured)
			}
			if !configured {
				return fmt.Errorf("simulate: the server does not have Oura configured; start it with\n  %s biosync serve", ouraServeEnv(addr))
			}
		}
		ouraUser := fmt.Sprintf("sim-oura-user-%d-%d", time.Now().UnixNano(), u)
		fake.AddUser(ouraUser)
		berlin, err := time.LoadLocation("Europe/Berlin")
		if err != nil {
			return err
		}
		fake.AddHistory(ouraUser, days, berlin, uint64(seed)+uint64(u))
		var auth struct {
			AuthorizeURL string `json:"authorize_url"`
		}
		if err := api.call(ctx, "POST", "/v1/connections/oura", nil, 201, &auth); err != nil {
			return err
		}
		callback, err := ouratest.Consent(auth.AuthorizeURL)
		if err != nil {
			return err
		}
		back, err := noFollow(ctx, callback)
		if err != nil {
			return err
		}
		if !strings.Contains(back, "status=connected") {
			return fmt.Errorf("simulate: the callback sent the browser to %s", back)
		}
		if err := api.waitConnection(ctx, func(c simConnection) bool { return c.Status == "connected" && c.Backfill.DoneUntil == c.Backfill.To }); err != nil {
			return err
		}
		// A new night, announced by a signed notification.
		today := time.Now().In(berlin).Format(time.DateOnly)
		fake.AddDocument(ouraUser, "daily_spo2", []byte(`{"id":"spo2-`+today+`","day":"`+today+`","spo2_percentage":{"average":96.0}}`))
		status, err := fake.Notify(api.base+"/v1/webhooks/oura", ouratest.Notification{EventType: "create", DataType: "daily_spo2",
			ObjectID: "spo2-" + today, EventTime: time.Now().Format(time.RFC3339), UserID: ouraUser})
		if err != nil || status != 200 {
			return fmt.Errorf("simulate: the signed notification was answered %d (%v)", status, err)
		}
		fmt.Fprintf(stdout, "connected Oura for %s (password %q): %d days backfilled, one notification fetched\n", email, password, days)
	}
	// Give the worker a moment to fetch the last notification before the
	// fake goes away.
	time.Sleep(2 * time.Second)
	return nil
}

// simConnection is the part of GET /v1/connections simulate reads.
type simConnection struct {
	Provider string `json:"provider"`
	Status   string `json:"status"`
	Backfill struct {
		To        string `json:"to"`
		DoneUntil string `json:"done_until"`
	} `json:"backfill"`
}

type simClient struct {
	base, token string
}

func (c *simClient) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("simulate: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		return fmt.Errorf("simulate: %s %s answered %d: %s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (c *simClient) waitConnection(ctx context.Context, ok func(simConnection) bool) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var list struct {
			Connections []simConnection `json:"connections"`
		}
		if err := c.call(ctx, "GET", "/v1/connections", nil, 200, &list); err != nil {
			return err
		}
		for _, x := range list.Connections {
			if x.Provider == "oura" && ok(x) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("simulate: the Oura backfill did not finish within 2 minutes")
}

// noFollow GETs u like a browser returning from consent and returns where
// the server sent it.
func noFollow(ctx context.Context, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	return res.Header.Get("Location"), nil
}
