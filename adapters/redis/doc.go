// Package redis adapts go-redis to BioSync's cache ports: the dashboard
// summary cache (metrics.Cache), the delivery dedup store (ingestion.Dedup),
// the Idempotency-Key store (commands.IdempotencyStore) and the abuse-limit
// counters. Redis is never a source of truth: losing it loses nothing,
// reads fall back to PostgreSQL.
//
// It also holds the HTTP edge's shared short-lived state: Idempotency-Key
// outcomes (Idempotency: a SET NX lock, then the response for 24 h) and
// abuse-limit counters (Limiter, go-redis/redis_rate). Losing those forgets
// replays and resets counters; while Redis is down the HTTP layer refuses
// what it cannot do safely without them (see adapters/httpapi).
package redis
