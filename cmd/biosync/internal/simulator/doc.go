// Package simulator fills a running BioSync server with realistic synthetic
// users and wearable data, so the API, projections and dashboards can be
// exercised end to end without a real device.
//
// It talks to the server only over its public HTTP API, exactly as a vendor
// bridge would: it registers users (POST /v1/auth/register), pushes one
// signed Standard Webhooks delivery per user-day to POST /v1/webhooks/push,
// confirms each login works (POST /v1/auth/login) and prints the
// credentials so a developer can log in as the simulated users.
//
// The data model lives in [GenerateDay], a pure function of a [Profile], a
// local calendar day and a seeded random source: heart rate every five
// minutes on a circadian curve with exercise bursts, 15-minute step buckets
// with consistent active energy and distance, nightly resting heart rate,
// HRV, SpO2, respiratory rate and skin temperature, periodic weight, and one
// sleep session per night with cycle-based stage architecture. Everything is
// deterministic for a given seed (math/rand/v2 PCG); only e-mail addresses,
// passwords and webhook ids are drawn from crypto/rand, because they must not
// collide across runs.
package simulator
