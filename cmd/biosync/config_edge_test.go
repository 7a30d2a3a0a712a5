package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/biosync/biosync/adapters/httpapi"
)

func TestAbuseLimitsAndEdgeSettingsComeFromTheEnvironment(t *testing.T) {
	env := map[string]string{
		"BIOSYNC_RATE_LIMIT_AUTH_ACCOUNT": "3/5m",
		"BIOSYNC_RATE_LIMIT_WEBHOOK_IP":   "off",
		"BIOSYNC_RATE_LIMIT_WEBHOOK_FAIL": "closed",
		"BIOSYNC_TRUSTED_PROXIES":         "10.0.0.0/8, 192.0.2.7",
	}
	c, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	auth := c.RateLimits[httpapi.RateClassAuth]
	if auth.PerAccount != (httpapi.Rate{N: 3, Per: 5 * time.Minute}) || auth.PerIP != httpapi.DefaultRateLimits()[httpapi.RateClassAuth].PerIP || !auth.FailClosed {
		t.Fatalf("auth %+v", auth)
	}
	if wh := c.RateLimits[httpapi.RateClassWebhook]; !wh.PerIP.IsZero() || !wh.FailClosed {
		t.Fatalf("webhook %+v", wh)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[0] != want[0] || c.TrustedProxies[1] != want[1] {
		t.Fatalf("proxies %v", c.TrustedProxies)
	}
	if c.HSTSMaxAge != 0 {
		t.Fatal("HSTS on the embedded default (plain HTTP)")
	}

	env = map[string]string{"BIOSYNC_REDIS_URL": "redis://x:6379/0"}
	if c, _ = loadConfig(func(k string) string { return env[k] }); c.HSTSMaxAge != defaultHSTSMaxAge {
		t.Fatalf("production HSTS %v", c.HSTSMaxAge)
	}
	for k, v := range map[string]string{"BIOSYNC_RATE_LIMIT_AUTH_IP": "lots", "BIOSYNC_RATE_LIMIT_AUTH_FAIL": "maybe", "BIOSYNC_TRUSTED_PROXIES": "not-an-ip", "BIOSYNC_HSTS_MAX_AGE": "2y"} {
		if _, err := loadConfig(func(key string) string { return map[string]string{k: v}[key] }); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
}
