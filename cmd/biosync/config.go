package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/biosync/biosync/adapters/embedded"
	"github.com/biosync/biosync/adapters/httpapi"
	httpingest "github.com/biosync/biosync/adapters/httpapi/ingest"
	"github.com/biosync/biosync/adapters/httpapi/webhooks"
	"github.com/biosync/biosync/adapters/mail"
	"github.com/biosync/biosync/adapters/providers/oura"
	"github.com/biosync/biosync/commands/connections"
	"github.com/biosync/biosync/commands/erasure"
	"github.com/biosync/biosync/commands/sessions"
	"github.com/biosync/biosync/eventstore"
)

// config is everything BioSync reads from its environment, in one struct
// filled in run (no os.Getenv anywhere else).
type config struct {
	DataDir      string
	HTTPAddr     string
	KafkaBrokers []string
	DatabaseURL  string
	RedisURL     string
	// PostgresBin is where the embedded default finds initdb and postgres
	// (BIOSYNC_PG_BIN; empty: PATH, then /usr/lib/postgresql/*/bin).
	PostgresBin       string
	Topic             string
	Partitions        int32
	ReplicationFactor int16
	MasterKey         string
	JWTKey            string
	PseudonymKey      string // base64; keys the pseudonyms of `events --pseudonymize`
	PushSecrets       []string
	OTLPEndpoint      string
	LogLevel          string
	ConsistencyWait   time.Duration
	CORSOrigins       []string
	// SMTPURL is the mail relay, smtp://[user:pass@]host:port[?tls=starttls|tls|none];
	// empty starts the embedded relay (inbox <data dir>/mail) on the
	// embedded default and disables account mail otherwise.
	SMTPURL  string
	MailFrom string // sender of account mail
	AppURL   string // the frontend's base URL, for links in mail
	// ErasureGrace is how long a deletion request can be cancelled
	// (BIOSYNC_ERASURE_GRACE_PERIOD); ErasureRepurge separates the two
	// purges of an erasure (BIOSYNC_ERASURE_REPURGE_AFTER) and must exceed
	// the key cache age (eventstore.KeyCacheMaxAge).
	ErasureGrace, ErasureRepurge time.Duration
	// MaxFutureSkew is how far ahead of the receiving clock a pushed value
	// may lie (BIOSYNC_MAX_FUTURE_SKEW, default a day).
	MaxFutureSkew time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (BIOSYNC_TRUSTED_PROXIES, CIDRs or addresses).
	TrustedProxies []netip.Prefix
	// HSTSMaxAge: Strict-Transport-Security is sent when positive; on by
	// default with real backends (production is served over TLS), off on
	// the embedded default (plain HTTP on localhost).
	HSTSMaxAge time.Duration
	// RateLimits are the abuse-limit classes (httpapi.DefaultRateLimits,
	// adjusted by BIOSYNC_RATE_LIMIT_<CLASS>_{IP,ACCOUNT,FAIL}).
	RateLimits map[string]httpapi.RateLimit
	// RefreshTTL is the absolute lifetime of a session (refresh-token
	// family): rotation never extends it.
	RefreshTTL time.Duration
	// AdminRequireMFA makes admin routes require a session opened with
	// MFA (BIOSYNC_ADMIN_REQUIRE_MFA, default true everywhere, the
	// embedded default included: a dev turns it off explicitly).
	AdminRequireMFA bool
	// AdminNetworks, when set, are the only client networks admin routes
	// answer (BIOSYNC_ADMIN_IPS, CIDRs or addresses).
	AdminNetworks []netip.Prefix
	// MetricsNetworks may scrape /metrics besides loopback
	// (BIOSYNC_METRICS_IPS, CIDRs or addresses).
	MetricsNetworks []netip.Prefix
	// RunProjectors makes serve run the projectors beside the API; false
	// with BIOSYNC_PROJECTORS=off (they run elsewhere, e.g. in
	// `biosync projections run`).
	RunProjectors bool
	// PublicURL is the base of every redirect URI and webhook URL the
	// server tells providers about (BIOSYNC_PUBLIC_URL; empty: the
	// address serve listens on, fine for local development only).
	PublicURL string
	// Oura is the Oura app (BIOSYNC_OURA_*); without a client id Oura is
	// listed as not configured and its routes answer 404.
	Oura oura.Config
	// ProviderBackfill is the history fetched on connect
	// (BIOSYNC_PROVIDER_BACKFILL, default 30 days).
	ProviderBackfill time.Duration
}

// defaultHSTSMaxAge is two years, the preload list's expectation.
const defaultHSTSMaxAge = 2 * 365 * 24 * time.Hour

// embedded reports whether every backend runs in-process (the default with
// no configuration).
func (c config) embedded() bool {
	return len(c.KafkaBrokers) == 0 && c.DatabaseURL == "" && c.RedisURL == ""
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		DataDir:         envOr(getenv, "BIOSYNC_DATA_DIR", ".biosync"),
		HTTPAddr:        envOr(getenv, "BIOSYNC_HTTP_ADDR", "127.0.0.1:8080"),
		DatabaseURL:     getenv("BIOSYNC_DATABASE_URL"),
		RedisURL:        getenv("BIOSYNC_REDIS_URL"),
		PostgresBin:     getenv(embedded.PostgresBinEnv),
		Topic:           envOr(getenv, "BIOSYNC_KAFKA_TOPIC", "biosync.events.v1"),
		MasterKey:       getenv("BIOSYNC_MASTER_KEY"),
		JWTKey:          getenv("BIOSYNC_JWT_KEY"),
		PseudonymKey:    getenv("BIOSYNC_PSEUDONYM_KEY"),
		OTLPEndpoint:    getenv("BIOSYNC_OTLP_ENDPOINT"),
		LogLevel:        envOr(getenv, "BIOSYNC_LOG_LEVEL", "info"),
		ConsistencyWait: 5 * time.Second,
		SMTPURL:         getenv("BIOSYNC_SMTP_URL"),
		MailFrom:        envOr(getenv, "BIOSYNC_MAIL_FROM", "BioSync <no-reply@localhost>"),
		AppURL:          envOr(getenv, "BIOSYNC_APP_URL", "http://localhost:3000"),
		RefreshTTL:      sessions.DefaultRefreshTTL,
		AdminRequireMFA: true,
		RunProjectors:   getenv("BIOSYNC_PROJECTORS") != "off",
		PublicURL:       strings.TrimRight(getenv("BIOSYNC_PUBLIC_URL"), "/"),
		Oura: oura.Config{
			ClientID:          getenv("BIOSYNC_OURA_CLIENT_ID"),
			ClientSecret:      getenv("BIOSYNC_OURA_CLIENT_SECRET"),
			AuthURL:           envOr(getenv, "BIOSYNC_OURA_AUTH_URL", oura.DefaultAuthURL),
			TokenURL:          envOr(getenv, "BIOSYNC_OURA_TOKEN_URL", oura.DefaultTokenURL),
			APIURL:            envOr(getenv, "BIOSYNC_OURA_API_URL", oura.DefaultAPIURL),
			VerificationToken: getenv("BIOSYNC_OURA_VERIFICATION_TOKEN"),
		},
	}
	if c.Oura.ClientID != "" && c.Oura.ClientSecret == "" {
		return c, errors.New("BIOSYNC_OURA_CLIENT_SECRET is required with BIOSYNC_OURA_CLIENT_ID (it also keys the webhook signatures)")
	}
	if b := getenv("BIOSYNC_KAFKA_BROKERS"); b != "" {
		c.KafkaBrokers = splitList(b)
	}
	if s := getenv("BIOSYNC_PUSH_SECRET"); s != "" {
		c.PushSecrets = strings.Fields(s)
	}
	if o := getenv("BIOSYNC_CORS_ORIGINS"); o != "" {
		c.CORSOrigins = splitList(o)
	}
	p, err := strconv.ParseInt(envOr(getenv, "BIOSYNC_KAFKA_PARTITIONS", "12"), 10, 32)
	if err != nil || p < 1 {
		return c, errors.New("BIOSYNC_KAFKA_PARTITIONS must be a positive integer")
	}
	c.Partitions = int32(p)
	rf, err := strconv.ParseInt(envOr(getenv, "BIOSYNC_KAFKA_REPLICATION_FACTOR", "1"), 10, 16)
	if err != nil || rf < 1 {
		return c, errors.New("BIOSYNC_KAFKA_REPLICATION_FACTOR must be a positive integer")
	}
	c.ReplicationFactor = int16(rf)
	if w := getenv("BIOSYNC_CONSISTENCY_WAIT"); w != "" {
		if c.ConsistencyWait, err = time.ParseDuration(w); err != nil {
			return c, fmt.Errorf("BIOSYNC_CONSISTENCY_WAIT: %w", err)
		}
	}
	for _, d := range []struct {
		name string
		into *time.Duration
		def  time.Duration
	}{
		{"BIOSYNC_ERASURE_GRACE_PERIOD", &c.ErasureGrace, erasure.DefaultErasureGracePeriod},
		{"BIOSYNC_ERASURE_REPURGE_AFTER", &c.ErasureRepurge, 3 * eventstore.KeyCacheMaxAge},
		{"BIOSYNC_MAX_FUTURE_SKEW", &c.MaxFutureSkew, httpingest.DefaultMaxFutureSkew},
		{"BIOSYNC_PROVIDER_BACKFILL", &c.ProviderBackfill, connections.DefaultBackfill},
	} {
		*d.into = d.def
		if v := getenv(d.name); v != "" {
			if *d.into, err = time.ParseDuration(v); err != nil || *d.into <= 0 {
				return c, fmt.Errorf("%s must be a positive Go duration such as 168h", d.name)
			}
		}
	}
	if c.SMTPURL != "" {
		if _, err := parseSMTPURL(c.SMTPURL, c.MailFrom); err != nil {
			return c, fmt.Errorf("BIOSYNC_SMTP_URL: %w", err)
		}
	}
	for _, s := range splitList(getenv("BIOSYNC_TRUSTED_PROXIES")) {
		p, err := parsePrefix(s)
		if err != nil {
			return c, fmt.Errorf("BIOSYNC_TRUSTED_PROXIES: %w", err)
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	for _, s := range splitList(getenv("BIOSYNC_ADMIN_IPS")) {
		p, err := parsePrefix(s)
		if err != nil {
			return c, fmt.Errorf("BIOSYNC_ADMIN_IPS: %w", err)
		}
		c.AdminNetworks = append(c.AdminNetworks, p)
	}
	for _, s := range splitList(getenv("BIOSYNC_METRICS_IPS")) {
		p, err := parsePrefix(s)
		if err != nil {
			return c, fmt.Errorf("BIOSYNC_METRICS_IPS: %w", err)
		}
		c.MetricsNetworks = append(c.MetricsNetworks, p)
	}
	if v := getenv("BIOSYNC_ADMIN_REQUIRE_MFA"); v != "" {
		if c.AdminRequireMFA, err = strconv.ParseBool(v); err != nil {
			return c, errors.New("BIOSYNC_ADMIN_REQUIRE_MFA must be true or false")
		}
	}
	if !c.embedded() {
		c.HSTSMaxAge = defaultHSTSMaxAge
	}
	if v := getenv("BIOSYNC_HSTS_MAX_AGE"); v != "" {
		if c.HSTSMaxAge, err = time.ParseDuration(v); err != nil || c.HSTSMaxAge < 0 {
			return c, fmt.Errorf("BIOSYNC_HSTS_MAX_AGE: want a Go duration such as 17520h, or 0 to disable")
		}
	}
	if c.RateLimits, err = rateLimits(getenv); err != nil {
		return c, err
	}
	if v := getenv("BIOSYNC_REFRESH_TTL"); v != "" {
		if c.RefreshTTL, err = time.ParseDuration(v); err != nil || c.RefreshTTL <= 0 {
			return c, errors.New("BIOSYNC_REFRESH_TTL must be a positive Go duration, e.g. 720h")
		}
	}
	return c, nil
}

// parseSMTPURL reads smtp://[user:pass@]host:port[?tls=starttls|tls|none]
// (default starttls: credentials never cross the network in clear).
func parseSMTPURL(raw, from string) (mail.Config, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		return mail.Config{}, errors.New("want smtp://[user:pass@]host:port[?tls=starttls|tls|none]")
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || port <= 0 {
		return mail.Config{}, errors.New("missing or bad port")
	}
	c := mail.Config{Host: u.Hostname(), Port: port, From: from, TLS: u.Query().Get("tls")}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	_, err = mail.New(c)
	return c, err
}

// parsePrefix reads a CIDR or a single address (its /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// rateLimits starts from the safe defaults and applies, per class,
// BIOSYNC_RATE_LIMIT_<CLASS>_IP and _ACCOUNT ("N/duration" or "off") and
// _FAIL ("open" or "closed": what happens while Redis is down).
func rateLimits(getenv func(string) string) (map[string]httpapi.RateLimit, error) {
	out := httpapi.DefaultRateLimits()
	for class, l := range out {
		prefix := "BIOSYNC_RATE_LIMIT_" + strings.ToUpper(class) + "_"
		for _, r := range []struct {
			suffix string
			dst    *httpapi.Rate
		}{{"IP", &l.PerIP}, {"ACCOUNT", &l.PerAccount}} {
			if v := getenv(prefix + r.suffix); v != "" {
				rate, err := httpapi.ParseRate(v)
				if err != nil {
					return nil, fmt.Errorf("%s%s: %w", prefix, r.suffix, err)
				}
				*r.dst = rate
			}
		}
		switch v := strings.ToLower(getenv(prefix + "FAIL")); v {
		case "":
		case "closed":
			l.FailClosed = true
		case "open":
			l.FailClosed = false
		default:
			return nil, fmt.Errorf("%sFAIL: want open or closed, got %q", prefix, v)
		}
		out[class] = l
	}
	return out, nil
}

// secrets fills in missing secrets. On the embedded default each is
// generated once into the data dir (mode 0600) and reused; with any real
// backend configured they are required, so a production instance can never
// silently start with a fresh master key (which would make every stored
// user key unreadable).
func (c *config) secrets(announce func(format string, args ...any)) error {
	if !c.embedded() {
		var missing []string
		if c.MasterKey == "" {
			missing = append(missing, "BIOSYNC_MASTER_KEY")
		}
		if c.JWTKey == "" {
			missing = append(missing, "BIOSYNC_JWT_KEY")
		}
		if len(c.PushSecrets) == 0 {
			missing = append(missing, "BIOSYNC_PUSH_SECRET")
		}
		if len(missing) > 0 {
			return fmt.Errorf("production configuration needs %s (the embedded default generates them only when no backend is configured)", strings.Join(missing, ", "))
		}
		return nil
	}
	var err error
	if c.MasterKey == "" {
		if c.MasterKey, _, err = secretFile(c.DataDir, "master_key", eventstore.NewMasterKeys); err != nil {
			return err
		}
	}
	if c.JWTKey == "" {
		if c.JWTKey, _, err = secretFile(c.DataDir, "jwt_key", randomKey); err != nil {
			return err
		}
	}
	if c.PseudonymKey == "" {
		if c.PseudonymKey, _, err = secretFile(c.DataDir, "pseudonym_key", randomKey); err != nil {
			return err
		}
	}
	if len(c.PushSecrets) == 0 {
		s, created, err := secretFile(c.DataDir, "push_secret", webhooks.NewSecret)
		if err != nil {
			return err
		}
		if created {
			announce("generated a push webhook secret (shown once; also in %s): %s", filepath.Join(c.DataDir, "push_secret"), s)
		}
		c.PushSecrets = []string{s}
	}
	return nil
}

func randomKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// secretFile returns the secret stored in dir/name, generating it first if
// the file does not exist.
func secretFile(dir, name string, gen func() (string, error)) (string, bool, error) {
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, err
	}
	s, err := gen()
	if err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	_, err = f.WriteString(s + "\n")
	return s, true, err
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
