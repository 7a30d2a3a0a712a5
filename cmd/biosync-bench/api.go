package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/eventstore"
)

// API paths the benchmark drives.
const (
	pathRegister  = "/v1/auth/register"
	pathLogin     = "/v1/auth/login"
	pathPush      = "/v1/webhooks/push"
	pathDashboard = "/v1/dashboard/summary"
)

// Header names of the read-your-writes protocol (adapters/httpapi).
const (
	headerToken       = "X-Consistency-Token"
	headerConsistency = "Consistency"
)

// apiUser is a user registered on the server under test.
type apiUser struct {
	id, email, password, bearer string
	data                        *dataUser
}

// pushInfo describes one accepted push.
type pushInfo struct {
	user   *apiUser
	source ingest.Source
	token  string
	sent   time.Time // wall clock just before sending
	done   time.Time // when the 2xx arrived
}

// api drives the server under test and the baseline with the same
// requests.
type api struct {
	key     []byte // push webhook signing key
	users   []*apiUser
	runID   string
	webhook atomic.Uint64 // webhook-id counter (unique per delivery)

	mu   sync.Mutex
	high map[int32]int64 // highest acknowledged offset per partition
}

// newAPI prepares a driver signing with the serialized push secret.
func newAPI(pushSecret string) (*api, error) {
	key, err := webhooks.ParseSecret(pushSecret)
	if err != nil {
		return nil, err
	}
	return &api{key: key, runID: uniqueName("r"), high: map[int32]int64{}}, nil
}

// statusErr describes an unexpected answer.
func statusErr(method, path string, res *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(body))
}

// postJSON sends a JSON body and decodes a JSON answer into out.
func postJSON(ctx context.Context, c *http.Client, url string, in, out any, want int) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		return statusErr(http.MethodPost, req.URL.Path, res)
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// register creates n users through the API (register, then login for a
// bearer token), conc at a time: each costs two Argon2id hashes.
func (a *api) register(ctx context.Context, c *http.Client, base string, n, conc int) error {
	a.users = make([]*apiUser, n)
	sem := make(chan struct{}, conc)
	errs := make([]error, n)
	var wg sync.WaitGroup
	// A year back: even a fast run's data stays in the past (each push
	// moves its user's clock on by about 50 minutes).
	dataBase := time.Now().UTC().Truncate(time.Minute).Add(-365 * 24 * time.Hour)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pw := make([]byte, 15)
			_, _ = rand.Read(pw)
			u := &apiUser{email: fmt.Sprintf("bench-%s-%d@example.com", a.runID, i), password: base64.RawURLEncoding.EncodeToString(pw)}
			zone := benchZones[i%len(benchZones)]
			var reg struct {
				ID string `json:"id"`
			}
			if err := postJSON(ctx, c, base+pathRegister, map[string]string{"email": u.email, "password": u.password, "timezone": zone}, &reg, http.StatusCreated); err != nil {
				errs[i] = err
				return
			}
			var sess struct {
				AccessToken string `json:"access_token"`
			}
			if err := postJSON(ctx, c, base+pathLogin, map[string]string{"email": u.email, "password": u.password}, &sess, http.StatusOK); err != nil {
				errs[i] = err
				return
			}
			u.id, u.bearer = reg.ID, sess.AccessToken
			d, err := newDataUser(u.id, zone, dataBase)
			if err != nil {
				errs[i] = err
				return
			}
			u.data = d
			a.users[i] = u
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// push sends one signed webhook delivery with a fresh small batch for the
// user seq picks to base (the server or the baseline) and reads the whole
// answer.
func (a *api) push(ctx context.Context, c *http.Client, base string, seq uint64) (pushInfo, error) {
	u := a.users[seq%uint64(len(a.users))]
	b := u.data.nextBatch(sharedRand{}, true)
	body := appendBatchJSON(make([]byte, 0, 2048), b)
	id := "bench_" + a.runID + "_" + strconv.FormatUint(a.webhook.Add(1), 36)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+pathPush, bytes.NewReader(body))
	if err != nil {
		return pushInfo{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	info := pushInfo{user: u, source: b.Source, sent: time.Now()}
	webhooks.SetHeaders(req.Header, a.key, id, info.sent, body)
	res, err := c.Do(req)
	if err != nil {
		return info, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return info, statusErr(http.MethodPost, pathPush, res)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	info.done = time.Now()
	info.token = res.Header.Get(headerToken)
	return info, nil
}

// track remembers the highest acknowledged offset per partition, so
// waitProjected can wait for everything pushed so far.
func (a *api) track(token string) {
	t, err := eventstore.ParseToken(token)
	if err != nil {
		return
	}
	a.mu.Lock()
	for _, p := range t {
		if o, ok := a.high[p.Partition]; !ok || p.Offset > o {
			a.high[p.Partition] = p.Offset
		}
	}
	a.mu.Unlock()
}

// pending is a consistency token covering every push acknowledged so far.
func (a *api) pending() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var t eventstore.Token
	for p, o := range a.high {
		t = append(t, eventstore.Position{Partition: p, Offset: o})
	}
	return t.Merge(nil).String()
}

// dashboard GETs the summary as u (with a consistency token when tok is
// not empty) and returns the status, the Consistency header and the body.
func dashboard(ctx context.Context, c *http.Client, base string, u *apiUser, tok string, keepBody bool) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+pathDashboard, nil)
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Authorization", "Bearer "+u.bearer)
	if tok != "" {
		req.Header.Set(headerToken, tok)
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer res.Body.Close()
	var body []byte
	if keepBody || res.StatusCode != http.StatusOK {
		body, err = io.ReadAll(res.Body)
	} else {
		_, err = io.Copy(io.Discard, res.Body)
	}
	return res.StatusCode, res.Header.Get(headerConsistency), body, err
}

// getDashboard is one dashboard request of a load phase.
func (a *api) getDashboard(ctx context.Context, c *http.Client, base string, seq uint64) error {
	u := a.users[seq%uint64(len(a.users))]
	status, _, body, err := dashboard(ctx, c, base, u, "", false)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", pathDashboard, status, bytes.TrimSpace(body[:min(len(body), 512)]))
	}
	return nil
}

// waitProjected waits until the projectors have applied every push
// acknowledged so far (a consistency-token read, repeated until it answers
// `Consistency: reached`), so a phase never pays for the previous phase's
// backlog.
func (a *api) waitProjected(ctx context.Context, c *http.Client, base string, timeout time.Duration) error {
	tok := a.pending()
	if tok == "" {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		status, consistency, body, err := dashboard(ctx, c, base, a.users[0], tok, false)
		if err == nil && status == http.StatusOK && consistency == "reached" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("projectors did not catch up within %s (last answer %d %q %v %s)", timeout, status, consistency, err, body)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freshnessEntry is the part of the summary's freshness list the probe
// reads.
type freshnessEntry struct {
	Provider       string    `json:"provider"`
	Device         string    `json:"device"`
	LastReceivedAt time.Time `json:"last_received_at"`
}

// reflects reports whether a summary body shows the push: its source's
// last_received_at is not older than the moment the push was sent (the
// server stamps received_at while handling it, on the same clock).
func reflects(body []byte, p pushInfo) bool {
	var d struct {
		Freshness []freshnessEntry `json:"freshness"`
	}
	if json.Unmarshal(body, &d) != nil {
		return false
	}
	sent := p.sent.Truncate(time.Microsecond) // PostgreSQL keeps microseconds
	for _, f := range d.Freshness {
		if f.Provider == p.source.Provider && f.Device == p.source.Device && !f.LastReceivedAt.Before(sent) {
			return true
		}
	}
	return false
}

// probeOutcome is one freshness measurement.
type probeOutcome struct {
	lat      time.Duration // webhook 2xx -> summary reflecting the push
	timedOut bool          // the token read answered Consistency: timeout
	polled   bool          // the token read did not show the push yet; plain reads did later
	err      error
}

// probe measures how long after its 2xx a push is visible in the user's
// summary: one read carrying the push's consistency token (which waits on
// the server until the projector passed it); should that answer not show
// the push yet, plain reads every 5 ms until it does (10 s at most).
func (a *api) probe(ctx context.Context, c *http.Client, base string, p pushInfo) probeOutcome {
	status, consistency, body, err := dashboard(ctx, c, base, p.user, p.token, true)
	if err != nil {
		return probeOutcome{err: err}
	}
	if status != http.StatusOK {
		return probeOutcome{err: fmt.Errorf("GET %s: %d %s", pathDashboard, status, body)}
	}
	out := probeOutcome{timedOut: consistency != "reached"}
	if reflects(body, p) {
		out.lat = time.Since(p.done)
		return out
	}
	out.polled = true
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		status, _, body, err = dashboard(ctx, c, base, p.user, "", true)
		if err == nil && status == http.StatusOK && reflects(body, p) {
			out.lat = time.Since(p.done)
			return out
		}
	}
	out.err = errors.New("push not visible in the summary after 10s")
	return out
}
