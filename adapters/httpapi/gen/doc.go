// Package gen is generated from schemas/openapi.yaml by oapi-codegen: the
// echo ServerInterface that adapters/httpapi implements, the request and
// response types, and the embedded spec that the request validator reads, so
// routes, types and validation can never drift from the published contract.
// Do not edit api.gen.go; change the spec and run `go generate`.
package gen

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../../schemas/openapi.yaml
