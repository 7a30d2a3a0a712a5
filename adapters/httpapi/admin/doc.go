// Package admin holds the HTTP handlers of the operator API: GET
// /v1/admin/projections, POST /v1/admin/projections/{name}/rebuild and
// /rollback, DELETE /v1/admin/projections/{name}/generations/{generation},
// GET /v1/admin/dead-letters, POST /v1/admin/dead-letters/retry and
// /v1/admin/dead-letters/{event_id}/skip, and GET /v1/admin/audit. The
// edge lets only administrators (role, MFA session, allowed network)
// reach them.
package admin
