// Package schemas holds BioSync's published contracts: the OpenAPI spec of
// the HTTP API (openapi.yaml) and one JSON Schema per event type and schema
// version (events/<type>.v<N>.schema.json). Golden tests in this package
// pin the wire format of every event: changing a payload struct without a
// new schema version fails them.
package schemas

import "embed"

// Events holds the event JSON Schemas.
//
//go:embed events/*.json
var Events embed.FS

// OpenAPI returns the HTTP API spec (schemas/openapi.yaml) as served at
// GET /openapi.yaml.
func OpenAPI() ([]byte, error) { return openapi.ReadFile("openapi.yaml") }

//go:embed openapi.yaml
var openapi embed.FS
