package oura

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/biosync/biosync/commands/connections"
	"github.com/biosync/biosync/domain/provider"
	"github.com/biosync/biosync/domain/provider/oura"
)

// Oura's production endpoints, the defaults of Config.
const (
	DefaultAuthURL  = "https://cloud.ouraring.com/oauth/authorize"
	DefaultTokenURL = "https://api.ouraring.com/oauth/token"
	DefaultAPIURL   = "https://api.ouraring.com"
	// DefaultTolerance is the signature timestamp window (Oura documents
	// none; Standard Webhooks' 5 minutes).
	DefaultTolerance = 5 * time.Minute
)

// Scopes are the scopes BioSync asks Oura for.
var Scopes = provider.Scopes(provider.Oura)

// Webhook headers.
const (
	HeaderSignature = "x-oura-signature"
	HeaderTimestamp = "x-oura-timestamp"
)

// Config is the Oura app's registration and where Oura is.
type Config struct {
	ClientID, ClientSecret    string
	AuthURL, TokenURL, APIURL string
	VerificationToken         string
	// HTTP is the client of every call (default: 30 s timeout); redirects
	// are never followed whatever it says.
	HTTP *http.Client
	// Now is the clock of the signature window (default time.Now).
	Now func() time.Time
	// Tolerance is the signature timestamp window (DefaultTolerance).
	Tolerance time.Duration
}

// Client implements connections.Client for Oura.
type Client struct {
	cfg   Config
	oauth oauth2.Config
	api   *url.URL
	http  *http.Client
}

var _ connections.Client = (*Client)(nil)

// New checks cfg (a client id and secret are required) and returns the
// client.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("oura: client id and client secret are required")
	}
	if cfg.AuthURL == "" {
		cfg.AuthURL = DefaultAuthURL
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = DefaultTokenURL
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = DefaultTolerance
	}
	api, err := url.Parse(strings.TrimRight(cfg.APIURL, "/"))
	if err != nil || api.Host == "" || (api.Scheme != "https" && api.Scheme != "http") {
		return nil, fmt.Errorf("oura: API URL %q is not an http(s) URL", cfg.APIURL)
	}
	for _, u := range []string{cfg.AuthURL, cfg.TokenURL} {
		if p, err := url.Parse(u); err != nil || p.Host == "" {
			return nil, fmt.Errorf("oura: %q is not a URL", u)
		}
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if cfg.HTTP != nil {
		c := *cfg.HTTP
		hc = &c
	}
	// Never follow a redirect: every call goes to the configured host.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{
		cfg: cfg, api: api, http: hc,
		oauth: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Scopes: Scopes,
			Endpoint: oauth2.Endpoint{AuthURL: cfg.AuthURL, TokenURL: cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		},
	}, nil
}

// Name is "oura".
func (c *Client) Name() provider.Name { return provider.Oura }

// Scopes are the scopes asked for.
func (c *Client) Scopes() []string { return slices.Clone(Scopes) }

// PKCE: Oura does not support it.
func (c *Client) PKCE() bool { return false }

// DataTypes are the usercollection types fetched.
func (c *Client) DataTypes() []string { return oura.DataTypes() }

func (c *Client) withRedirect(redirectURI string) *oauth2.Config {
	o := c.oauth
	o.RedirectURL = redirectURI
	return &o
}

// AuthorizeURL is Oura's consent page.
func (c *Client) AuthorizeURL(state, redirectURI, _ string) string {
	return c.withRedirect(redirectURI).AuthCodeURL(state)
}

func (c *Client) oauthCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.http)
}

// Exchange trades the code for tokens.
func (c *Client) Exchange(ctx context.Context, code, redirectURI, _ string) (connections.Token, error) {
	t, err := c.withRedirect(redirectURI).Exchange(c.oauthCtx(ctx), code)
	if err != nil {
		return connections.Token{}, tokenError(err)
	}
	return token(t), nil
}

// Refresh trades the single-use refresh token for a new pair.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (connections.Token, error) {
	src := c.oauth.TokenSource(c.oauthCtx(ctx), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	t, err := src.Token()
	if err != nil {
		return connections.Token{}, tokenError(err)
	}
	return token(t), nil
}

func token(t *oauth2.Token) connections.Token {
	out := connections.Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, Expiry: t.Expiry}
	if s, ok := t.Extra("scope").(string); ok && s != "" {
		out.Scopes = strings.Fields(s)
	}
	return out
}

// tokenError classifies a token endpoint failure: invalid_grant means the
// user revoked access (never retried). The error text is oauth2's, which
// carries no token.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode == "invalid_grant" {
			return connections.ErrGrantRevoked
		}
		if re.Response != nil && re.Response.StatusCode == http.StatusTooManyRequests {
			return &connections.RateLimited{RetryAfter: retryAfter(re.Response.Header.Get("Retry-After"))}
		}
		return fmt.Errorf("oura token endpoint: %s %s", re.Response.Status, re.ErrorCode)
	}
	return fmt.Errorf("oura token endpoint: %w", err)
}

// Revoke ends the grant at Oura.
func (c *Client) Revoke(ctx context.Context, t connections.Token) error {
	u := *c.api
	u.Path += "/oauth/revoke"
	u.RawQuery = url.Values{"access_token": {t.AccessToken}}.Encode()
	_, err := c.get(ctx, &u, t.AccessToken)
	return err
}

// UserID reads personal_info's id.
func (c *Client) UserID(ctx context.Context, accessToken string) (string, error) {
	body, err := c.get(ctx, c.collection("personal_info"), accessToken)
	if err != nil {
		return "", err
	}
	var info struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &info); err != nil || info.ID == "" {
		return "", errors.New("oura personal_info: no id")
	}
	return info.ID, nil
}

// objectID is what a document id may look like (UUIDs and Oura's ids):
// nothing that could change the path.
var objectID = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// Fetch follows a pointer: GET /v2/usercollection/{data_type}/{object_id}.
// A delete, a type BioSync does not map, a pointer that is not an id, or a
// document Oura no longer has (404) fetches nothing.
func (c *Client) Fetch(ctx context.Context, accessToken string, n provider.Notified) ([]connections.Record, error) {
	if n.Operation == "delete" || !slices.Contains(oura.DataTypes(), n.DataType) || n.DataType == oura.HeartRate || !objectID.MatchString(n.ObjectID) {
		return nil, nil
	}
	body, err := c.get(ctx, c.collection(n.DataType, n.ObjectID), accessToken)
	if errors.Is(err, errAbsent) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !json.Valid(body) {
		return nil, errors.New("oura: a document that is not JSON")
	}
	return []connections.Record{{DataType: n.DataType, ID: n.ObjectID, Raw: body}}, nil
}

// List reads one page of a collection over [from, to] (dates for daily
// documents and sleep, instants for heart rate). A collection answered 403
// or 404 (a scope the user did not grant) is an empty page.
func (c *Client) List(ctx context.Context, accessToken, dataType string, from, to time.Time, page string) (connections.Page, error) {
	if !slices.Contains(oura.DataTypes(), dataType) {
		return connections.Page{}, nil
	}
	u := c.collection(dataType)
	q := url.Values{}
	if dataType == oura.HeartRate {
		q.Set("start_datetime", from.UTC().Format(time.RFC3339))
		q.Set("end_datetime", to.UTC().Format(time.RFC3339))
	} else {
		q.Set("start_date", from.UTC().Format(time.DateOnly))
		q.Set("end_date", to.UTC().Format(time.DateOnly))
	}
	if page != "" {
		q.Set("next_token", page)
	}
	u.RawQuery = q.Encode()
	body, err := c.get(ctx, u, accessToken)
	if errors.Is(err, errAbsent) {
		return connections.Page{}, nil // a collection the grant does not cover
	}
	if err != nil {
		return connections.Page{}, err
	}
	var resp struct {
		Data      []json.RawMessage `json:"data"`
		NextToken *string           `json:"next_token"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return connections.Page{}, fmt.Errorf("oura %s page: %w", dataType, err)
	}
	out := connections.Page{}
	if resp.NextToken != nil {
		out.Next = *resp.NextToken
	}
	if dataType == oura.HeartRate {
		if len(resp.Data) > 0 {
			raw, _ := json.Marshal(map[string]any{"data": resp.Data})
			id := "heartrate:" + from.UTC().Format(time.RFC3339) + ".." + to.UTC().Format(time.RFC3339) + ":" + page
			out.Records = append(out.Records, connections.Record{DataType: dataType, ID: id, Raw: raw})
		}
		return out, nil
	}
	for _, d := range resp.Data {
		id := oura.RecordID(d)
		if id == "" {
			continue
		}
		out.Records = append(out.Records, connections.Record{DataType: dataType, ID: id, Raw: d})
	}
	return out, nil
}

// collection is {API}/v2/usercollection/{parts...}, each part escaped.
func (c *Client) collection(parts ...string) *url.URL {
	u := *c.api
	u.Path += "/v2/usercollection"
	for _, p := range parts {
		u.Path += "/" + url.PathEscape(p)
	}
	return &u
}

// errAbsent is a 404 (a document deleted since it was announced) or a
// 403 (a scope the user did not grant): nothing to fetch, not a failure
// to retry.
var errAbsent = errors.New("not available")

// maxBody bounds one API answer.
const maxBody = 16 << 20

// get calls the API host (the URL was built from the configured base, so
// no other host is ever called) and classifies the answer.
func (c *Client) get(ctx context.Context, u *url.URL, accessToken string) ([]byte, error) {
	if u.Host != c.api.Host || u.Scheme != c.api.Scheme {
		return nil, errors.New("oura: refusing a request to a host other than the configured API host")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oura API: %w", errors.Unwrap(err)) // the URL may hold a token (revoke)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("oura API: reading the answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, connections.ErrUnauthorized
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, &connections.RateLimited{RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: oura API %s: %s", errAbsent, u.Path, resp.Status)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, fmt.Errorf("oura API %s: %s", u.Path, resp.Status)
	}
	return body, nil
}

// retryAfter reads Retry-After (seconds or an HTTP date); a minute when
// absent or unreadable.
func retryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return time.Minute
}

// Receive answers Oura's webhook calls: GET is the verification handshake
// (the verification token compared in constant time, the challenge echoed
// as {"challenge": ...}); POST is a notification whose x-oura-signature
// is checked over x-oura-timestamp and the raw body before it is parsed.
func (c *Client) Receive(d connections.Delivery) (connections.Answer, []provider.Notified, error) {
	switch d.Method {
	case http.MethodGet:
		token, challenge := d.Query.Get("verification_token"), d.Query.Get("challenge")
		if c.cfg.VerificationToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(c.cfg.VerificationToken)) != 1 || challenge == "" {
			return connections.Answer{}, nil, connections.ErrHandshake
		}
		return connections.Answer{Status: http.StatusOK, Body: map[string]string{"challenge": challenge}}, nil, nil
	case http.MethodPost:
		if err := c.Verify(d.Header, d.Body); err != nil {
			return connections.Answer{}, nil, err
		}
		var n struct {
			EventType string `json:"event_type"`
			DataType  string `json:"data_type"`
			ObjectID  string `json:"object_id"`
			EventTime string `json:"event_time"`
			UserID    string `json:"user_id"`
		}
		if err := json.Unmarshal(d.Body, &n); err != nil || n.UserID == "" || n.DataType == "" {
			// Signed by Oura but not a notification we can read: acknowledged
			// (a retry would say the same), nothing recorded.
			return connections.Answer{Status: http.StatusOK}, nil, nil
		}
		return connections.Answer{Status: http.StatusOK}, []provider.Notified{{
			Provider:       provider.Oura,
			DeliveryID:     strings.Join([]string{n.DataType, n.ObjectID, n.EventType, n.EventTime}, "/"),
			ProviderUserID: n.UserID, Operation: n.EventType, DataType: n.DataType, ObjectID: n.ObjectID, EventTime: n.EventTime,
		}}, nil
	default:
		return connections.Answer{Status: http.StatusMethodNotAllowed}, nil, nil
	}
}

// Verify checks x-oura-signature: upper-case hex of HMAC-SHA256 keyed with
// the client secret over the x-oura-timestamp value followed by the raw
// body, compared in constant time (any hex case accepted); a timestamp
// that reads as Unix seconds (or milliseconds) or RFC 3339 must lie within
// Tolerance of now. Returns an error wrapping connections.ErrSignature otherwise.
func (c *Client) Verify(h http.Header, body []byte) error {
	sig, ts := strings.TrimSpace(h.Get(HeaderSignature)), strings.TrimSpace(h.Get(HeaderTimestamp))
	if sig == "" || ts == "" {
		return fmt.Errorf("%w: %s and %s are required", connections.ErrSignature, HeaderSignature, HeaderTimestamp)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: the signature is not hex", connections.ErrSignature)
	}
	mac := hmac.New(sha256.New, []byte(c.cfg.ClientSecret))
	mac.Write([]byte(ts))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return fmt.Errorf("%w: the signature does not match", connections.ErrSignature)
	}
	var at time.Time
	if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
		at = time.Unix(n, 0)
		if n > 1e12 {
			at = time.UnixMilli(n)
		}
	} else if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		at = t
	} else {
		return nil // signed over, but not a time we can window (Oura documents no format)
	}
	if d := c.cfg.Now().Sub(at); d > c.cfg.Tolerance || d < -c.cfg.Tolerance {
		return fmt.Errorf("%w: the timestamp is outside the %s window", connections.ErrSignature, c.cfg.Tolerance)
	}
	return nil
}

// Sign is the signature Oura sends for body at timestamp: upper-case hex
// of HMAC-SHA256(secret, timestamp ‖ body). The fake Oura signs with it.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write(body)
	return strings.ToUpper(hex.EncodeToString(mac.Sum(nil)))
}
