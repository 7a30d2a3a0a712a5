package httpapi

import (
	"context"
	"encoding/json"
	"github.com/biosync/biosync/adapters/auth"
	"slices"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
)

func loadSpecFile(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(specBytes(t))
	require.NoError(t, err, "loading schemas/openapi.yaml")
	return doc
}

func TestSpecIsValid(t *testing.T) {
	require.NoError(t, loadSpecFile(t).Validate(context.Background()))
}

// TestGeneratedCodeIsCurrent fails when schemas/openapi.yaml changed but
// `go generate ./adapters/httpapi/gen` was not run.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	embedded, err := gen.GetSpec()
	require.NoError(t, err)
	// oapi-codegen capitalises operation ids in what it embeds.
	for _, item := range embedded.Paths.Map() {
		for _, op := range item.Operations() {
			op.OperationID = lowerFirst(op.OperationID)
		}
	}
	a, err := json.Marshal(embedded)
	require.NoError(t, err)
	b, err := json.Marshal(loadSpecFile(t))
	require.NoError(t, err)
	assert.JSONEq(t, string(b), string(a), "adapters/httpapi/gen is stale: run go generate ./adapters/httpapi/gen")
}

// TestMetricTypeEnumMatchesDomain keeps the published enum equal to
// metric.Types(), so the API neither rejects a type the domain knows nor
// advertises one it does not.
func TestMetricTypeEnumMatchesDomain(t *testing.T) {
	schema := loadSpecFile(t).Components.Schemas["MetricType"]
	require.NotNil(t, schema, "spec has no MetricType schema")
	require.NotNil(t, schema.Value, "spec has no MetricType schema")
	var spec []string
	for _, v := range schema.Value.Enum {
		spec = append(spec, v.(string))
	}
	var domain []string
	for _, ty := range metric.Types() {
		domain = append(domain, string(ty))
	}
	slices.Sort(spec)
	assert.Equal(t, domain, spec, "spec MetricType enum (sorted) != metric.Types()")
}

// TestSleepStageEnumMatchesDomain does the same for sleep stages.
func TestSleepStageEnumMatchesDomain(t *testing.T) {
	schema := loadSpecFile(t).Components.Schemas["SleepStage"].Value.Properties["stage"].Value
	var spec []string
	for _, v := range schema.Enum {
		spec = append(spec, v.(string))
	}
	assert.Equal(t, ingest.SleepStages, spec, "spec SleepStage stages != ingest.SleepStages")
}

// TestPushExamplesAgree checks that the push bodies the tests send are
// valid under the spec's schemas too, since at run time the domain parser,
// not the spec, validates them.
func TestPushExamplesAgree(t *testing.T) {
	doc := loadSpecFile(t)
	for name, body := range map[string]string{"WebhookPushBatch": webhookBody, "PushBatch": appBody} {
		var v any
		require.NoError(t, json.Unmarshal([]byte(body), &v), "%s example", name)
		assert.NoError(t, doc.Components.Schemas[name].Value.VisitJSON(v), "%s example rejected by the spec", name)
		_, err := ingest.Parse([]byte(body), name == "WebhookPushBatch", time.Time{})
		assert.NoError(t, err, "%s example rejected by the domain", name)
	}
}

// TestDeletableTypeEnumMatchesDomain: a deletion narrows to a metric type
// or to sleep sessions, the values the domain's Deletion accepts.
func TestDeletableTypeEnumMatchesDomain(t *testing.T) {
	schema := loadSpecFile(t).Components.Schemas["DeletableType"]
	require.NotNil(t, schema, "spec has no DeletableType schema")
	var spec []string
	for _, v := range schema.Value.Enum {
		spec = append(spec, v.(string))
	}
	want := []string{ingest.SleepType}
	for _, ty := range metric.Types() {
		want = append(want, string(ty))
	}
	slices.Sort(spec)
	slices.Sort(want)
	assert.Equal(t, want, spec, "spec DeletableType != metric.Types() + sleep")
}

// TestPasswordLengthsOfTheSpecAreTheServers: every new password the spec
// describes has the policy auth.CheckPassword enforces, counted the same
// way (characters); the spec said 8 to 1024 while the server took 10 to
// 256 bytes.
func TestPasswordLengthsOfTheSpecAreTheServers(t *testing.T) {
	schemas := loadSpecFile(t).Components.Schemas
	for _, f := range []struct{ schema, field string }{
		{"RegisterRequest", "password"}, {"ChangePasswordRequest", "new_password"}, {"PasswordResetConfirm", "password"},
	} {
		s := schemas[f.schema]
		require.NotNil(t, s, f.schema)
		p := s.Value.Properties[f.field]
		require.NotNil(t, p, "%s.%s", f.schema, f.field)
		assert.Equal(t, uint64(auth.MinPasswordLen), p.Value.MinLength, "%s.%s minLength", f.schema, f.field)
		require.NotNil(t, p.Value.MaxLength, "%s.%s maxLength", f.schema, f.field)
		assert.Equal(t, uint64(auth.MaxPasswordLen), *p.Value.MaxLength, "%s.%s maxLength", f.schema, f.field)
	}
}
