// Package erasure holds the HTTP handlers of account deletion (GDPR art.
// 17): POST /v1/me/deletion-requests, GET and DELETE
// /v1/me/deletion-requests/{id}. They relay requests to the Erasure port;
// the grace period and the purge are decided in commands/erasure.
package erasure
