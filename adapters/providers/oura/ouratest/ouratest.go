// Package ouratest is a fake Oura: OAuth authorize (consent given at once
// for the current user) and token endpoints (client credentials in the
// form body, single-use refresh tokens, invalid_grant after a revocation),
// personal_info, the usercollection endpoints with the recorded shapes
// and next_token pagination, /oauth/revoke, and signed webhook
// notifications sent the way Oura sends them. The tests and
// `biosync simulate --provider oura` drive the real connect flow against
// it.
package ouratest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/biosync/biosync/adapters/providers/oura"
)

// Server is a running fake Oura.
type Server struct {
	*httptest.Server
	ClientID, ClientSecret string
	// AccessTTL is the lifetime of issued access tokens (default 1 h).
	AccessTTL time.Duration
	// PageSize is how many documents one page holds (default 2, so
	// pagination is exercised).
	PageSize int

	mu        sync.Mutex
	current   string // the user who consents on the authorize page
	users     map[string]*user
	codes     map[string]code
	access    map[string]accessToken
	refresh   map[string]string // refresh token -> user; deleted when used
	fail429   int
	failAll   int
	failAfter int // API calls still answered before every call answers 500 (-1: off)
	requests  []string
	refreshes int
}

type user struct {
	id      string
	revoked bool
	docs    map[string][]json.RawMessage // data type -> documents
}

type code struct {
	user, redirect string
}

type accessToken struct {
	user    string
	expires time.Time
}

// Start runs a fake Oura for the app clientID/clientSecret.
func Start(clientID, clientSecret string) *Server {
	s := &Server{ClientID: clientID, ClientSecret: clientSecret, AccessTTL: time.Hour, PageSize: 2, failAfter: -1,
		users: map[string]*user{}, codes: map[string]code{}, access: map[string]accessToken{}, refresh: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/authorize", s.authorize)
	mux.HandleFunc("POST /oauth/token", s.token)
	mux.HandleFunc("GET /oauth/revoke", s.revoke)
	mux.HandleFunc("GET /v2/usercollection/personal_info", s.personalInfo)
	mux.HandleFunc("GET /v2/usercollection/{type}", s.list)
	mux.HandleFunc("GET /v2/usercollection/{type}/{id}", s.document)
	s.Server = httptest.NewServer(s.logged(mux))
	return s
}

// AuthURL, TokenURL and APIURL are what BIOSYNC_OURA_*_URL point at.
func (s *Server) AuthURL() string  { return s.URL + "/oauth/authorize" }
func (s *Server) TokenURL() string { return s.URL + "/oauth/token" }
func (s *Server) APIURL() string   { return s.URL }

// AddUser creates an Oura user and makes them the one who consents next.
func (s *Server) AddUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = &user{id: id, docs: map[string][]json.RawMessage{}}
	s.current = id
}

// AddDocument stores a document (with its "id") of dataType for user;
// heart rate rows are stored the same way, one row per call.
func (s *Server) AddDocument(userID, dataType string, doc []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	u.docs[dataType] = append(u.docs[dataType], json.RawMessage(doc))
}

// RevokeUser makes Oura forget the user's grant: tokens stop working and
// a refresh answers invalid_grant.
func (s *Server) RevokeUser(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[userID].revoked = true
}

// ExpireAccessTokens makes every issued access token answer 401.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, a := range s.access {
		a.expires = time.Unix(0, 0)
		s.access[k] = a
	}
}

// Answer429 makes the next n API calls answer 429 with Retry-After: 1.
func (s *Server) Answer429(n int) { s.mu.Lock(); s.fail429 = n; s.mu.Unlock() }

// Answer500 makes the next n API calls answer 500.
func (s *Server) Answer500(n int) { s.mu.Lock(); s.failAll = n; s.mu.Unlock() }

// FailAfter answers the next n API calls, then 500 to every call until
// Recover: an outage in the middle of a backfill.
func (s *Server) FailAfter(n int) { s.mu.Lock(); s.failAfter = n; s.mu.Unlock() }

// Recover ends the outage of FailAfter and Answer500.
func (s *Server) Recover() { s.mu.Lock(); s.failAfter, s.failAll = -1, 0; s.mu.Unlock() }

// Refreshes is how many refresh grants were honoured.
func (s *Server) Refreshes() int { s.mu.Lock(); defer s.mu.Unlock(); return s.refreshes }

// Requests lists the paths called so far ("GET /v2/usercollection/sleep").
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// authorize is the consent page: the current user consents at once and is
// sent back to redirect_uri with a code and the state.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.ClientID || q.Get("response_type") != "code" || q.Get("redirect_uri") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	c := random()
	s.codes[c] = code{user: s.current, redirect: q.Get("redirect_uri")}
	s.mu.Unlock()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	bq := back.Query()
	bq.Set("code", c)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token serves authorization_code and refresh_token grants; the client
// authenticates in the form body.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	f := r.PostForm
	if f.Get("client_id") != s.ClientID || f.Get("client_secret") != s.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var uid string
	switch f.Get("grant_type") {
	case "authorization_code":
		c, ok := s.codes[f.Get("code")]
		delete(s.codes, f.Get("code"))
		if !ok || c.redirect != f.Get("redirect_uri") {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
		uid = c.user
	case "refresh_token":
		u, ok := s.refresh[f.Get("refresh_token")]
		delete(s.refresh, f.Get("refresh_token")) // single-use
		if !ok || s.users[u] == nil || s.users[u].revoked {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
		uid = u
		s.refreshes++
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	at, rt := random(), random()
	s.access[at] = accessToken{user: uid, expires: time.Now().Add(s.AccessTTL)}
	s.refresh[rt] = uid
	writeJSON(w, http.StatusOK, map[string]any{"access_token": at, "refresh_token": rt, "token_type": "bearer",
		"expires_in": int(s.AccessTTL / time.Second), "scope": strings.Join(oura.Scopes, " ")})
}

// caller authenticates an API call; it also applies the injected 429s
// and 500s.
func (s *Server) caller(w http.ResponseWriter, r *http.Request) (*user, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail429 > 0 {
		s.fail429--
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"detail": "rate limit exceeded"})
		return nil, false
	}
	if s.failAfter == 0 || s.failAll > 0 {
		if s.failAll > 0 {
			s.failAll--
		}
		writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": "internal error"})
		return nil, false
	}
	if s.failAfter > 0 {
		s.failAfter--
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a, ok := s.access[tok]
	if !ok || time.Now().After(a.expires) || s.users[a.user] == nil || s.users[a.user].revoked {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "invalid or expired token"})
		return nil, false
	}
	return s.users[a.user], true
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.access, r.URL.Query().Get("access_token"))
	w.WriteHeader(http.StatusOK)
}

func (s *Server) personalInfo(w http.ResponseWriter, r *http.Request) {
	u, ok := s.caller(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": u.id, "age": 36, "weight": 64.2, "height": 1.71, "biological_sex": "female", "email": "oura-user@example.com"})
}

func (s *Server) document(w http.ResponseWriter, r *http.Request) {
	u, ok := s.caller(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range u.docs[r.PathValue("type")] {
		var id struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(d, &id) == nil && id.ID == r.PathValue("id") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(d)
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"detail": "document not found"})
}

// list serves a collection page: documents whose day (or heart rate
// timestamp) lies in the asked window, PageSize at a time, next_token
// being the index of the next document.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	u, ok := s.caller(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	typ := r.PathValue("type")
	s.mu.Lock()
	docs := append([]json.RawMessage(nil), u.docs[typ]...)
	s.mu.Unlock()
	var in []json.RawMessage
	for _, d := range docs {
		var k struct {
			Day       string `json:"day"`
			Timestamp string `json:"timestamp"`
		}
		_ = json.Unmarshal(d, &k)
		if typ == "heartrate" {
			ts, _ := time.Parse(time.RFC3339, k.Timestamp)
			from, _ := time.Parse(time.RFC3339, q.Get("start_datetime"))
			to, _ := time.Parse(time.RFC3339, q.Get("end_datetime"))
			if ts.Before(from) || ts.After(to) {
				continue
			}
		} else if k.Day < q.Get("start_date") || k.Day > q.Get("end_date") {
			continue
		}
		in = append(in, d)
	}
	sort.SliceStable(in, func(i, j int) bool { return bytes.Compare(in[i], in[j]) < 0 })
	start, _ := strconv.Atoi(q.Get("next_token"))
	end := min(start+s.PageSize, len(in))
	if start > len(in) {
		start = len(in)
	}
	var next any
	if end < len(in) {
		next = strconv.Itoa(end)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": in[start:end], "next_token": next})
}

// Notification is the body Oura posts to a webhook subscription.
type Notification struct {
	EventType string `json:"event_type"`
	DataType  string `json:"data_type"`
	ObjectID  string `json:"object_id"`
	EventTime string `json:"event_time"`
	UserID    string `json:"user_id"`
}

// SignedRequest builds the POST Oura sends to webhookURL for n, signed
// with the client secret at timestamp (Unix seconds).
func (s *Server) SignedRequest(webhookURL string, n Notification, at time.Time) (*http.Request, error) {
	body, err := json.Marshal(n)
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, webhookURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(oura.HeaderTimestamp, ts)
	req.Header.Set(oura.HeaderSignature, oura.Sign(s.ClientSecret, ts, body))
	return req, nil
}

// Notify posts n to webhookURL the way Oura does and returns the status.
func (s *Server) Notify(webhookURL string, n Notification) (int, error) {
	req, err := s.SignedRequest(webhookURL, n, time.Now())
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Consent follows an authorize URL as the user's browser would, up to the
// redirect back to BioSync, and returns that callback URL.
func Consent(authorizeURL string) (string, error) {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authorizeURL)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return "", fmt.Errorf("authorize answered %s", resp.Status)
	}
	return resp.Header.Get("Location"), nil
}
