package httpapi

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/biosync/biosync/adapters/httpapi/gen"
	"github.com/biosync/biosync/domain/ingest"
	"github.com/biosync/biosync/domain/metric"
)

func loadSpecFile(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(specBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestSpecIsValid(t *testing.T) {
	if err := loadSpecFile(t).Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestGeneratedCodeIsCurrent fails when schemas/openapi.yaml changed but
// `go generate ./adapters/httpapi/gen` was not run.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	embedded, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	// oapi-codegen capitalises operation ids in what it embeds.
	for _, item := range embedded.Paths.Map() {
		for _, op := range item.Operations() {
			op.OperationID = lowerFirst(op.OperationID)
		}
	}
	a, _ := json.Marshal(embedded)
	b, _ := json.Marshal(loadSpecFile(t))
	if string(a) != string(b) {
		t.Fatal("adapters/httpapi/gen is stale: run go generate ./adapters/httpapi/gen")
	}
}

// TestMetricTypeEnumMatchesDomain keeps the published enum equal to
// metric.Types(), so the API neither rejects a type the domain knows nor
// advertises one it does not.
func TestMetricTypeEnumMatchesDomain(t *testing.T) {
	schema := loadSpecFile(t).Components.Schemas["MetricType"]
	if schema == nil || schema.Value == nil {
		t.Fatal("spec has no MetricType schema")
	}
	var spec []string
	for _, v := range schema.Value.Enum {
		spec = append(spec, v.(string))
	}
	var domain []string
	for _, ty := range metric.Types() {
		domain = append(domain, string(ty))
	}
	slices.Sort(spec)
	if !slices.Equal(spec, domain) {
		t.Fatalf("spec MetricType enum %v != metric.Types() %v", spec, domain)
	}
}

// TestSleepStageEnumMatchesDomain does the same for sleep stages.
func TestSleepStageEnumMatchesDomain(t *testing.T) {
	schema := loadSpecFile(t).Components.Schemas["SleepStage"].Value.Properties["stage"].Value
	var spec []string
	for _, v := range schema.Enum {
		spec = append(spec, v.(string))
	}
	if !slices.Equal(spec, ingest.SleepStages) {
		t.Fatalf("spec stages %v != ingest.SleepStages %v", spec, ingest.SleepStages)
	}
}

// TestPushExamplesAgree checks that the push bodies the tests send are
// valid under the spec's schemas too, since at run time the domain parser,
// not the spec, validates them.
func TestPushExamplesAgree(t *testing.T) {
	doc := loadSpecFile(t)
	for name, body := range map[string]string{"WebhookPushBatch": webhookBody, "PushBatch": appBody} {
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		if err := doc.Components.Schemas[name].Value.VisitJSON(v); err != nil {
			t.Errorf("%s example rejected by the spec: %v", name, err)
		}
		if _, err := ingest.Parse([]byte(body), name == "WebhookPushBatch"); err != nil {
			t.Errorf("%s example rejected by the domain: %v", name, err)
		}
	}
}
