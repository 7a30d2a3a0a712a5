// Package accounts holds the HTTP handlers of an account's credentials and
// sessions: POST /v1/auth/register, /v1/auth/login, /v1/auth/refresh,
// /v1/auth/logout and /v1/auth/logout-all, GET /v1/auth/sessions, POST
// /v1/me/password, the TOTP routes under /v1/auth/mfa, and the mailed-token
// routes (POST /v1/auth/verify-email, /v1/auth/verify-email/resend,
// /v1/auth/password-reset, /v1/auth/password-reset/confirm). It translates
// HTTP to the ports in ports.go (commands/accounts, sessions and mfa
// behind them) and decides nothing itself.
package accounts
