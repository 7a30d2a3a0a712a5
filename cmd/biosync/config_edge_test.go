package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	require.NoError(t, err)
	auth := c.RateLimits[httpapi.RateClassAuth]
	require.Equal(t, httpapi.Rate{N: 3, Per: 5 * time.Minute}, auth.PerAccount, "auth %+v", auth)
	require.Equal(t, httpapi.DefaultRateLimits()[httpapi.RateClassAuth].PerIP, auth.PerIP, "auth %+v", auth)
	require.True(t, auth.FailClosed, "auth %+v", auth)
	wh := c.RateLimits[httpapi.RateClassWebhook]
	require.True(t, wh.PerIP.IsZero(), "webhook %+v", wh)
	require.True(t, wh.FailClosed, "webhook %+v", wh)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}, c.TrustedProxies)
	require.Zero(t, c.HSTSMaxAge, "HSTS on the embedded default (plain HTTP)")

	env = map[string]string{"BIOSYNC_REDIS_URL": "redis://x:6379/0"}
	c, _ = loadConfig(func(k string) string { return env[k] })
	require.Equal(t, defaultHSTSMaxAge, c.HSTSMaxAge, "production HSTS")
	for k, v := range map[string]string{"BIOSYNC_RATE_LIMIT_AUTH_IP": "lots", "BIOSYNC_RATE_LIMIT_AUTH_FAIL": "maybe", "BIOSYNC_TRUSTED_PROXIES": "not-an-ip", "BIOSYNC_HSTS_MAX_AGE": "2y"} {
		_, err := loadConfig(func(key string) string { return map[string]string{k: v}[key] })
		assert.Error(t, err, "%s=%s accepted", k, v)
	}
}

// serve runs the projectors unless BIOSYNC_PROJECTORS=off; the variable is
// read with the rest of the configuration.
func TestProjectorsRunUnlessTurnedOff(t *testing.T) {
	for v, want := range map[string]bool{"": true, "on": true, "off": false} {
		c, err := loadConfig(func(k string) string { return map[string]string{"BIOSYNC_PROJECTORS": v}[k] })
		require.NoError(t, err)
		assert.Equal(t, want, c.RunProjectors, "BIOSYNC_PROJECTORS=%q", v)
	}
}
