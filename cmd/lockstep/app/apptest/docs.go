package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/lockstep/lockstep/apidocs"
)

// The API documents (apidocs) are checked against every request a test sends
// through Server.Do, every answer it gets, and every socket message read
// through Socket: a field renamed in the code or in a document fails the test
// that saw it. The validators are built once per test binary.

type docsCheck struct {
	openapi *openapi3.T
	router  routers.Router
	errBody *openapi3.Schema
	sockets []socketChannel
}

// socketChannel is one AsyncAPI channel: its address as a pattern, and the
// payload schema of each message type it may carry.
type socketChannel struct {
	name     string
	address  *regexp.Regexp
	messages map[string]*jsonschema.Schema
}

var (
	docsOnce   sync.Once
	docsLoaded *docsCheck
	docsErr    error
)

func docs(t testing.TB) *docsCheck {
	t.Helper()
	docsOnce.Do(func() { docsLoaded, docsErr = loadDocs() })
	if docsErr != nil {
		t.Fatalf("API documents: %v", docsErr)
	}
	return docsLoaded
}

func init() {
	// Bodies that are not JSON are checked for their status and content type only.
	for _, ct := range []string{"image/png", "application/x-ndjson", "text/html", "application/yaml", "text/plain"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
}

func loadDocs() (*docsCheck, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(apidocs.OpenAPIYAML())
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil { // apidocs tests the examples
		return nil, fmt.Errorf("openapi.yaml is not valid: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi.yaml: %w", err)
	}
	d := &docsCheck{openapi: doc, router: router, errBody: doc.Components.Schemas["Error"].Value}
	if d.sockets, err = loadSockets(); err != nil {
		return nil, err
	}
	return d, nil
}

func loadSockets() ([]socketChannel, error) {
	raw := apidocs.AsyncAPIJSON()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7) // AsyncAPI's schema format is a superset of draft 7
	c.AssertFormat()
	const base = "urn:lockstep:asyncapi.json"
	if err := c.AddResource(base, inst); err != nil {
		return nil, err
	}
	var doc struct {
		Channels map[string]struct {
			Address  string `json:"address"`
			Messages map[string]struct {
				Ref string `json:"$ref"`
			} `json:"messages"`
		} `json:"channels"`
		Components struct {
			Messages map[string]struct {
				Payload struct {
					Properties struct {
						Type struct {
							Const string `json:"const"`
						} `json:"type"`
					} `json:"properties"`
				} `json:"payload"`
			} `json:"messages"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	var out []socketChannel
	for name, ch := range doc.Channels {
		pattern := regexp.QuoteMeta(strings.TrimSuffix(ch.Address, "/"))
		pattern = regexp.MustCompile(`\\\{[a-z_]+\\\}`).ReplaceAllString(pattern, `[^/]+`)
		sc := socketChannel{name: name, address: regexp.MustCompile("^" + pattern + "/?$"), messages: map[string]*jsonschema.Schema{}}
		for _, m := range ch.Messages {
			key := strings.TrimPrefix(m.Ref, "#/components/messages/")
			comp, ok := doc.Components.Messages[key]
			if !ok {
				return nil, fmt.Errorf("asyncapi channel %s: no message %s", name, m.Ref)
			}
			sch, err := c.Compile(base + "#/components/messages/" + key + "/payload")
			if err != nil {
				return nil, fmt.Errorf("asyncapi message %s: %w", key, err)
			}
			if typ := comp.Payload.Properties.Type.Const; typ != "" {
				sc.messages[typ] = sch
			}
		}
		out = append(out, sc)
	}
	return out, nil
}

// checkHTTP validates one exchange of Server.Do against the OpenAPI document:
// the request when the server accepted it (a test may send a bad request on
// purpose), and the answer always.
func (s *Server) checkHTTP(t testing.TB, hr *http.Request, resp *Response, checkRequest bool) {
	t.Helper()
	d := docs(t)
	if hr.Method == http.MethodHead || !documented(hr.URL.Path) {
		return
	}
	req := hr.Clone(context.Background())
	if hr.GetBody != nil {
		body, err := hr.GetBody()
		if err != nil {
			t.Fatal(err)
		}
		req.Body = body
	} else {
		req.Body = http.NoBody
	}
	route, params, err := d.router.FindRoute(req)
	if err != nil {
		// An unknown path or method: the answer is still the contract's error.
		if resp.Status < 300 {
			t.Errorf("%s %s answered %d but is not in openapi.yaml: %v", hr.Method, hr.URL.Path, resp.Status, err)
			return
		}
		s.checkErrorBody(t, d, hr, resp)
		return
	}
	if resp.Status == http.StatusInternalServerError {
		s.checkErrorBody(t, d, hr, resp) // undocumented on purpose: a 500 is a bug the test reports itself
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerAuth, MultiError: true},
	}
	if resp.Status < 300 && checkRequest {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("openapi.yaml refuses the request %s %s (answered %d): %v", hr.Method, hr.URL.Path, resp.Status, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.Status,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(resp.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("openapi.yaml refuses the answer to %s %s (%d): %v\nbody: %.2000s", hr.Method, hr.URL.Path, resp.Status, err, resp.Body)
	}
}

// documented: the paths openapi.yaml describes (the console's pages and
// files, and the sockets, are checked elsewhere).
func documented(path string) bool {
	switch {
	case strings.HasPrefix(path, "/api/"), strings.HasPrefix(path, "/qr/"):
		return true
	}
	switch path {
	case "/healthz", "/readyz", "/openapi.json", "/openapi.yaml", "/asyncapi.json", "/asyncapi.yaml", "/docs":
		return true
	}
	return false
}

func (s *Server) checkErrorBody(t testing.TB, d *docsCheck, hr *http.Request, resp *Response) {
	t.Helper()
	var v any
	if err := json.Unmarshal(resp.Body, &v); err != nil {
		t.Errorf("%s %s answered %d with a body that is not JSON: %.200s", hr.Method, hr.URL.Path, resp.Status, resp.Body)
		return
	}
	if err := d.errBody.VisitJSON(v); err != nil {
		t.Errorf("%s %s answered %d outside the error shape of openapi.yaml: %v", hr.Method, hr.URL.Path, resp.Status, err)
	}
}

// bearerAuth accepts the bearerAuth scheme when the request carries a bearer
// token (the server, not this check, decides whether it is good).
func bearerAuth(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "bearerAuth" {
		return in.NewError(fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName))
	}
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") || len(h) == len("Bearer ") {
		return in.NewError(errors.New("no Authorization: Bearer token"))
	}
	return nil
}

// CheckMessage validates one socket frame received on path (e.g.
// "/ws/session/3/student/?token=…") against asyncapi.yaml: its type must be
// one of that channel's messages and its payload must match that message's
// schema (each message of a batch frame too).
func CheckMessage(t testing.TB, path string, frame []byte) {
	t.Helper()
	if err := checkMessage(docs(t), path, frame); err != nil {
		shown, _, _ := strings.Cut(path, "?token=") // no token in test logs
		t.Errorf("asyncapi.yaml refuses a message of %s: %v\nmessage: %.2000s", shown, err, frame)
	}
}

func checkMessage(d *docsCheck, path string, frame []byte) error {
	path, _, _ = strings.Cut(path, "?")
	var ch *socketChannel
	for i := range d.sockets {
		if d.sockets[i].address.MatchString(path) {
			ch = &d.sockets[i]
			break
		}
	}
	if ch == nil {
		return fmt.Errorf("no channel of asyncapi.yaml has the address %s", path)
	}
	return ch.check(frame, true)
}

func (ch *socketChannel) check(frame []byte, outer bool) error {
	var head struct {
		Type     string            `json:"type"`
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(frame, &head); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	sch, ok := ch.messages[head.Type]
	if !ok {
		return fmt.Errorf("channel %s has no message of type %q", ch.name, head.Type)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(frame))
	if err != nil {
		return err
	}
	if err := sch.Validate(inst); err != nil {
		return err
	}
	if head.Type == "batch" {
		if !outer {
			return errors.New("a batch inside a batch")
		}
		for i, m := range head.Messages {
			if err := ch.check(m, false); err != nil {
				return fmt.Errorf("batch message %d: %w", i, err)
			}
		}
	}
	return nil
}
