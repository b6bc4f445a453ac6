package apidocs

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// seedPaths are the HTTP routes of the seed's sections 1–9 (seed/api-endpoints.ko.md).
var seedPaths = map[string][]string{
	"/api/auth/register":                                  {"POST"},
	"/api/auth/login":                                     {"POST"},
	"/api/auth/refresh":                                   {"POST"},
	"/api/auth/me":                                        {"GET"},
	"/api/lectures":                                       {"GET", "POST"},
	"/api/lectures/{lecture_id}":                          {"GET", "PUT", "DELETE"},
	"/api/lectures/{lecture_id}/enroll":                   {"POST"},
	"/api/lectures/{lecture_id}/sessions":                 {"POST"},
	"/api/sessions/{session_id}":                          {"GET"}, // the seed's {session_code}
	"/api/sessions/{session_id}/join":                     {"POST"},
	"/api/sessions/{session_id}/participants":             {"GET"},
	"/api/sessions/{session_id}/start":                    {"POST"},
	"/api/sessions/{session_id}/next-step":                {"POST"},
	"/api/sessions/{session_id}/pause":                    {"POST"},
	"/api/sessions/{session_id}/resume":                   {"POST"},
	"/api/sessions/{session_id}/end":                      {"POST"},
	"/api/sessions/{session_id}/current":                  {"GET"},
	"/api/sessions/my-active":                             {"GET"},
	"/api/lectures/{lecture_id}/tasks":                    {"POST"},
	"/api/tasks/{task_id}":                                {"GET"},
	"/api/tasks/{task_id}/subtasks":                       {"POST"},
	"/api/subtasks/{subtask_id}":                          {"PUT", "DELETE"},
	"/api/progress/me":                                    {"GET"},
	"/api/progress/update":                                {"POST"},
	"/api/progress/users/{user_id}/lectures/{lecture_id}": {"GET"},
	"/api/logs/activity":                                  {"POST"},
	"/api/logs/batch":                                     {"POST"},
	"/api/help/request":                                   {"POST"},
	"/api/help/request/{help_request_id}":                 {"GET"},
	"/api/help/feedback":                                  {"POST"},
	"/api/dashboard/lectures/{lecture_id}/students":       {"GET"},
	"/api/dashboard/help-requests/pending":                {"GET"},
	"/api/dashboard/statistics/lecture/{lecture_id}":      {"GET"},
	"/api/dashboard/chart-data/progress-trend":            {"GET"},
	"/api/notifications":                                  {"GET"},
	"/api/notifications/{notification_id}/read":           {"POST"},
	"/api/help/request/{help_request_id}/respond":         {"POST"}, // CONTRACT.md: added
	"/api/analytics/sessions/{session_id}/events":         {"GET"},  // CONTRACT.md: added
	"/api/analytics/lectures/{lecture_id}/events":         {"GET"},
	"/api/analytics/sessions/{session_id}/state":          {"GET"},
	"/api/analytics/sessions/{session_id}/xapi":           {"GET"},
	"/api/admin/projections":                              {"GET"},
	"/api/admin/projections/{name}/rebuild":               {"POST"},
	"/api/admin/users":                                    {"GET"},
	"/api/admin/users/{user_id}":                          {"PATCH"},
	"/qr/{file}":                                          {"GET"},
	"/healthz":                                            {"GET"},
	"/readyz":                                             {"GET"},
}

// seedSockets are the socket addresses (seed section 10 and CONTRACT.md) with
// the message types each must list.
var seedSockets = map[string][]string{
	"/ws/session/{session_id}/student/":    {"session_state", "session_started", "step_changed", "session_paused", "session_resumed", "session_ended", "batch"},
	"/ws/session/{session_id}/instructor/": {"participants", "student_joined", "student_progress", "student_help_request", "student_disconnected", "batch"},
	"/ws/dashboard/lecture/{lecture_id}/":  {"progress_update", "help_request", "student_activity", "batch"},
	"/ws/dashboard/help-requests/":         {"new_help_request", "batch"},
	"/ws/help/{user_id}":                   {"HELP_AVAILABLE", "batch"},
	"/ws/replay/session/{session_id}/":     {"replay_finished", "step_changed", "batch"},
}

func loadOpenAPI(t *testing.T, data []byte) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	return doc
}

// TestOpenAPIValid: both served forms load and validate as OpenAPI 3.1 (the
// examples against their schemas too) and list every seed route.
func TestOpenAPIValid(t *testing.T) {
	for name, data := range map[string][]byte{"yaml": OpenAPIYAML(), "json": OpenAPIJSON()} {
		t.Run(name, func(t *testing.T) {
			doc := loadOpenAPI(t, data)
			if !doc.IsOpenAPI31OrLater() {
				t.Errorf("openapi = %q, want 3.1", doc.OpenAPI)
			}
			for p, methods := range seedPaths {
				item := doc.Paths.Find(p)
				if item == nil {
					t.Errorf("%s is not documented", p)
					continue
				}
				for _, m := range methods {
					if item.GetOperation(m) == nil {
						t.Errorf("%s %s is not documented", m, p)
					}
				}
			}
			if doc.Components.SecuritySchemes["bearerAuth"] == nil {
				t.Error("no bearerAuth security scheme")
			}
		})
	}
}

// TestOpenAPIRefusesUnknownFields: the error shape and the seed's responses
// are closed (additionalProperties: false), so a renamed field fails.
func TestOpenAPIRefusesUnknownFields(t *testing.T) {
	doc := loadOpenAPI(t, OpenAPIYAML())
	errSchema := doc.Components.Schemas["Error401"].Value
	good := map[string]any{"error": map[string]any{"code": "TOKEN_EXPIRED", "message": "token expired", "details": map[string]any{}}}
	if err := errSchema.VisitJSON(good); err != nil {
		t.Fatalf("a contract error is refused: %v", err)
	}
	renamed := map[string]any{"error": map[string]any{"kode": "TOKEN_EXPIRED", "message": "token expired", "details": map[string]any{}}}
	if err := errSchema.VisitJSON(renamed); err == nil {
		t.Error("an error with a renamed field passes")
	}
	wrongCode := map[string]any{"error": map[string]any{"code": "NOT_FOUND", "message": "x", "details": map[string]any{}}}
	if err := errSchema.VisitJSON(wrongCode); err == nil {
		t.Error("a 401 with code NOT_FOUND passes")
	}
	login := doc.Paths.Find("/api/auth/login").Post.Responses.Status(200).Value.Content["application/json"].Schema.Value
	resp := map[string]any{"access_token": "a", "refresh_token": "b", "user": map[string]any{"id": 1, "email": "e", "name": "n", "role": "STUDENT"}}
	if err := login.VisitJSON(resp); err != nil {
		t.Fatalf("the seed's login answer is refused: %v", err)
	}
	resp["token"] = "extra"
	if err := login.VisitJSON(resp); err == nil {
		t.Error("a login answer with an unknown field passes")
	}
}

// TestAsyncAPIValid: the AsyncAPI document is valid against the official
// AsyncAPI 3.0.0 JSON Schema (from @asyncapi/specs) and lists every socket
// and message type.
func TestAsyncAPIValid(t *testing.T) {
	raw, err := os.ReadFile("testdata/asyncapi-3.0.0.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	meta, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("asyncapi-3.0.0.json", meta); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("asyncapi-3.0.0.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(AsyncAPIJSON()))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("the AsyncAPI document is not valid AsyncAPI 3.0.0: %v", err)
	}
	var doc struct {
		AsyncAPI string `json:"asyncapi"`
		Channels map[string]struct {
			Address  string                     `json:"address"`
			Messages map[string]json.RawMessage `json:"messages"`
		} `json:"channels"`
		Components struct {
			Messages map[string]struct {
				Name    string         `json:"name"`
				Payload map[string]any `json:"payload"`
			} `json:"messages"`
		} `json:"components"`
	}
	if err := json.Unmarshal(AsyncAPIJSON(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.AsyncAPI != "3.0.0" {
		t.Errorf("asyncapi = %q", doc.AsyncAPI)
	}
	for addr, types := range seedSockets {
		found := false
		for _, ch := range doc.Channels {
			if ch.Address != addr {
				continue
			}
			found = true
			for _, typ := range types {
				if _, ok := ch.Messages[typ]; !ok {
					t.Errorf("%s does not list %s", addr, typ)
				}
			}
		}
		if !found {
			t.Errorf("no channel at %s", addr)
		}
	}
	for name, m := range doc.Components.Messages {
		props, _ := m.Payload["properties"].(map[string]any)
		if _, ok := props["position"]; !ok && name != "replay_control" {
			t.Errorf("message %s has no position", name)
		}
	}
}

// serveDocs is a test server of Routes alone, closed when the test ends.
func serveDocs(t *testing.T) *httptest.Server {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

// TestServed: the documents and the page are served with their types.
func TestServed(t *testing.T) {
	srv := serveDocs(t)
	for path, want := range map[string]string{
		"/openapi.json":                       "application/json",
		"/openapi.yaml":                       "application/yaml",
		"/asyncapi.json":                      "application/json",
		"/asyncapi.yaml":                      "application/yaml",
		"/docs":                               "text/html",
		"/docs/vendor/redoc.standalone.js":    "text/javascript",
		"/docs/vendor/asyncapi.standalone.js": "text/javascript",
		"/docs/vendor/docs.js":                "text/javascript",
		"/docs/vendor/asyncapi.min.css":       "text/css",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) {
			t.Errorf("GET %s: %d %s, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
		if path == "/docs" && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("/docs has no CSP")
		}
	}
	for _, path := range []string{"/docs/vendor/nope.js", "/docs/vendor/../apidocs.go", "/docs/vendor/"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	var doc map[string]any
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc["openapi"] != "3.1.0" {
		t.Errorf("/openapi.json: %v %v", err, doc["openapi"])
	}
}
