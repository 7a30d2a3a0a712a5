// Package redis adapts go-redis to BioSync's cache ports: the dashboard
// summary cache (projections.Cache) and the delivery dedup store
// (commands.Dedup). Redis is never a source of truth: losing it loses
// nothing, reads fall back to PostgreSQL.
package redis
