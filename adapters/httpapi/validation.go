package httpapi

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"

	"github.com/biosync/biosync/adapters/httpapi/edge"
	"github.com/biosync/biosync/domain"
)

// validationOptions configures kin-openapi: report every problem, never
// rewrite the request (defaults are applied by the handlers, visibly), keep
// values out of messages, check `format: uuid` (kin-openapi treats unknown
// formats as annotations; without this a bad id would reach the generated
// binder and get its 400 instead of a 422 naming the field), and leave
// authentication to our own middleware.
func validationOptions(skipBody bool) *openapi3filter.Options {
	return &openapi3filter.Options{
		ExcludeRequestBody:  skipBody,
		MultiError:          true,
		SkipSettingDefaults: true,
		AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.DisableSchemaErrorDetails(),
			openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562)),
		},
	}
}

// validateRequest checks parameters, headers and (except for push batches,
// see route.domainBody) the body against the spec: 400 for what cannot be
// parsed, 422 for what breaks the schema, each naming the field.
func (s *server) validateRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := routeOf(c)
		if r == nil {
			return next(c)
		}
		req := c.Request()
		opts := s.validateOpts
		if r.domainBody {
			opts = s.validateNoBodyOpts
		}
		params := make(map[string]string, len(c.ParamNames()))
		for i, name := range c.ParamNames() {
			params[name] = c.ParamValues()[i]
		}
		err := openapi3filter.ValidateRequest(req.Context(), &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      r.kin,
			Options:    opts,
		})
		if body := edge.Body(c); body != nil {
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		if err != nil {
			return translateValidation(err)
		}
		return next(c)
	}
}

// translateValidation turns kin-openapi's errors into a domain error naming
// every field: a *domain.MalformedError (400) when anything could not be
// parsed or had the wrong JSON type, else a *domain.ValidationError (422).
func translateValidation(err error) error {
	t := &translator{}
	t.walk(err, "")
	if len(t.fields) == 0 {
		t.fields = []domain.FieldProblem{{Field: "", Detail: "the request does not match the API description"}}
		t.malformed = true
	}
	if t.malformed {
		first := t.fields[0]
		me := &domain.MalformedError{Field: first.Field, Detail: first.Detail}
		if len(t.fields) > 1 {
			return &edge.Error{Kind: edge.KindMalformed, Detail: "the request cannot be parsed; see errors", Fields: t.fields, Cause: me}
		}
		return me
	}
	return &domain.ValidationError{Problems: t.fields}
}

type translator struct {
	fields    []domain.FieldProblem
	malformed bool
}

func (t *translator) add(field, detail string, malformed bool) {
	t.fields = append(t.fields, domain.FieldProblem{Field: field, Detail: detail})
	t.malformed = t.malformed || malformed
}

// walk descends through MultiErrors and RequestErrors; base is the field
// name of the enclosing parameter ("" for the body). It matches concrete
// types first: a RequestError unwraps to a MultiError of its own.
func (t *translator) walk(err error, base string) {
	switch e := err.(type) {
	case openapi3.MultiError:
		for _, x := range e {
			t.walk(x, base)
		}
	case *openapi3filter.RequestError:
		t.request(e)
	case *openapi3.SchemaError:
		t.schema(e, base)
	case *openapi3filter.ParseError:
		t.add(base, "cannot be parsed", true)
	default:
		if u := errors.Unwrap(err); u != nil {
			t.walk(u, base)
			return
		}
		t.add(base, err.Error(), true)
	}
}

func (t *translator) request(e *openapi3filter.RequestError) {
	if p := e.Parameter; p != nil {
		field := paramField(p)
		switch {
		case errors.Is(e.Err, openapi3filter.ErrInvalidRequired):
			t.add(field, "is required", false)
		case errors.Is(e.Err, openapi3filter.ErrInvalidEmptyValue):
			t.add(field, "must not be empty", false)
		case e.Err != nil:
			t.walk(e.Err, field)
		default:
			t.add(field, e.Reason, false)
		}
		return
	}
	if e.RequestBody != nil {
		var schemaErr *openapi3.SchemaError
		switch {
		case errors.Is(e.Err, openapi3filter.ErrInvalidRequired):
			t.add("", "a JSON body is required", true)
		case errors.As(e.Err, &schemaErr):
			t.walk(e.Err, "")
		default:
			t.add("", "the body is not valid JSON", true)
		}
		return
	}
	t.add("", e.Error(), true)
}

var (
	unsupportedProp = regexp.MustCompile(`^property "(.*)" is unsupported$`)
	missingProp     = regexp.MustCompile(`^property "(.*)" is missing$`)
)

// schema names the field of one schema violation: the parameter for
// parameters, a JSON pointer into the body otherwise.
func (t *translator) schema(e *openapi3.SchemaError, base string) {
	ptr := e.JSONPointer()
	detail := e.Reason
	if m := unsupportedProp.FindStringSubmatch(detail); m != nil {
		ptr = append(ptr, m[1])
		detail = "unknown field"
	} else if m := missingProp.FindStringSubmatch(detail); m != nil {
		detail = "is required"
	}
	if e.SchemaField == "format" && e.Schema != nil {
		detail = "must be a valid " + e.Schema.Format
		if e.Schema.Format == "date-time" {
			detail = "must be an RFC 3339 date-time with offset, e.g. 2026-11-20T07:30:00%2B09:00 in a query string"
		}
	}
	if detail == "" {
		if e.Origin != nil {
			detail = e.Origin.Error()
		} else {
			detail = "does not match the schema (" + e.SchemaField + ")"
		}
	}
	field := base
	if len(ptr) > 0 {
		field = base + pointer(ptr)
	}
	// A value of the wrong JSON type is malformed input (400), as in the
	// domain's own parsers; everything else breaks a rule (422).
	t.add(field, detail, e.SchemaField == "type")
}

// pointer encodes path segments as an RFC 6901 JSON pointer.
func pointer(segs []string) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		s = strings.ReplaceAll(s, "~", "~0")
		b.WriteString(strings.ReplaceAll(s, "/", "~1"))
	}
	return b.String()
}

// paramField names a parameter in a problem: "/name" for path and query
// parameters (as the spec documents), the header name for headers.
func paramField(p *openapi3.Parameter) string {
	if p.In == openapi3.ParameterInHeader {
		return p.Name
	}
	return "/" + p.Name
}
