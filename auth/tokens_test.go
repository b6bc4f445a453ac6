package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/lockstep/lockstep/domain"
)

func newTestTokens(t *testing.T) (*Tokens, *testClock) {
	t.Helper()
	clk := &testClock{now: t0}
	tok, err := NewTokens(Config{Secret: testSecret, AccessTTL: accessTTL, RefreshTTL: refreshTTL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return tok, clk
}

func TestConfig_validate(t *testing.T) {
	_, err := NewTokens(Config{Secret: []byte("short"), AccessTTL: -time.Second})
	if err == nil {
		t.Fatal("short secret and negative TTL accepted")
	}
	for _, want := range []string{"secret", "access token TTL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
	tok, err := NewTokens(Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessTTL() != DefaultAccessTTL || tok.RefreshTTL() != DefaultRefreshTTL {
		t.Fatalf("defaults not applied: %v %v", tok.AccessTTL(), tok.RefreshTTL())
	}
}

func TestIssue_claims(t *testing.T) {
	tok, _ := newTestTokens(t)
	s, err := tok.Issue(domain.Actor{UserID: 42, Role: domain.RoleInstructor})
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	parsed, _, err := jwt.NewParser().ParseUnverified(s, &c)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Method.Alg() != "HS256" {
		t.Errorf("alg %s", parsed.Method.Alg())
	}
	if c.Subject != "42" || c.Role != domain.RoleInstructor || c.TokenType != "access" || c.Issuer != "lockstep" {
		t.Errorf("claims %+v", c)
	}
	if !c.IssuedAt.Time.Equal(t0) || !c.ExpiresAt.Time.Equal(t0.Add(accessTTL)) {
		t.Errorf("iat %v exp %v", c.IssuedAt, c.ExpiresAt)
	}
	if _, err := tok.Issue(domain.Actor{UserID: 0, Role: domain.RoleStudent}); err == nil {
		t.Error("issued a token for user 0")
	}
}

// sign signs arbitrary claims with method and key, for forged tokens.
func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodClaims() claims {
	return claims{Role: domain.RoleAdmin, TokenType: "access", RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "lockstep", Subject: "7", IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Minute)),
	}}
}

func TestVerify(t *testing.T) {
	tok, clk := newTestTokens(t)
	valid, err := tok.Issue(domain.Actor{UserID: 7, Role: domain.RoleStudent})
	if err != nil {
		t.Fatal(err)
	}
	a, err := tok.Verify(valid)
	if err != nil || a != (domain.Actor{UserID: 7, Role: domain.RoleStudent}) {
		t.Fatalf("valid token: %+v %v", a, err)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	withType := func(typ string) claims { c := goodClaims(); c.TokenType = typ; return c }
	withSub := func(sub string) claims { c := goodClaims(); c.Subject = sub; return c }
	withRole := func(r domain.Role) claims { c := goodClaims(); c.Role = r; return c }
	noExp := goodClaims()
	noExp.ExpiresAt = nil
	otherIssuer := goodClaims()
	otherIssuer.Issuer = "someone-else"
	expiredForged := goodClaims()
	expiredForged.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Minute))

	cases := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not-a-jwt"},
		{"alg_none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims())},
		{"rs256_signed", sign(t, jwt.SigningMethodRS256, rsaKey, goodClaims())},
		{"hs384_with_our_secret", sign(t, jwt.SigningMethodHS384, testSecret, goodClaims())},
		{"hs256_other_secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), goodClaims())},
		{"expired_with_other_secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), expiredForged)},
		{"refresh_token_type", sign(t, jwt.SigningMethodHS256, testSecret, withType("refresh"))},
		{"no_token_type", sign(t, jwt.SigningMethodHS256, testSecret, withType(""))},
		{"no_expiry", sign(t, jwt.SigningMethodHS256, testSecret, noExp)},
		{"other_issuer", sign(t, jwt.SigningMethodHS256, testSecret, otherIssuer)},
		{"non_numeric_subject", sign(t, jwt.SigningMethodHS256, testSecret, withSub("alice"))},
		{"zero_subject", sign(t, jwt.SigningMethodHS256, testSecret, withSub("0"))},
		{"unknown_role", sign(t, jwt.SigningMethodHS256, testSecret, withRole("ROOT"))},
		{"tampered_payload", tamper(valid)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tok.Verify(tc.token)
			if domain.ErrorCode(err) != domain.CodeUnauthorized {
				t.Fatalf("want UNAUTHORIZED, got %v", err)
			}
		})
	}

	// The well-formed forged claims are accepted when signed properly, so the
	// cases above fail for the reason they name.
	if _, err := tok.Verify(sign(t, jwt.SigningMethodHS256, testSecret, goodClaims())); err != nil {
		t.Fatalf("control token refused: %v", err)
	}

	t.Run("expired", func(t *testing.T) {
		clk.Advance(accessTTL)
		_, err := tok.Verify(valid)
		if !errors.Is(err, domain.ErrTokenExpired) {
			t.Fatalf("want TOKEN_EXPIRED, got %v", err)
		}
	})
}

// tamper swaps the token's payload for one naming another user as ADMIN,
// keeping the original header and signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	payload, _ := json.Marshal(map[string]any{"iss": "lockstep", "sub": "999", "role": "ADMIN", "token_type": "access", "exp": t0.Add(time.Hour).Unix()})
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
}

func TestBearer_query_token_only_on_upgrade(t *testing.T) {
	tok, _ := newTestTokens(t)
	valid, _ := tok.Issue(domain.Actor{UserID: 3, Role: domain.RoleStudent})
	gin.SetMode(gin.TestMode)
	r := gin.New()
	whoami := func(c *gin.Context) { c.String(200, strconv.FormatInt(ActorFrom(c).UserID, 10)) }
	for _, p := range []string{"/ws", "/ws/session/1/student", "/api/lectures", "/wsx"} {
		r.GET(p, tok.Authenticate(), whoami)
		r.POST(p, tok.Authenticate(), whoami)
	}
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}

	cases := []struct {
		name    string
		method  string
		url     string
		header  map[string]string
		status  int
		message string
	}{
		// ?token= is for socket upgrades only: a GET upgrade of /ws or below.
		{"query_with_upgrade_below_ws", "GET", "/ws/session/1/student?token=" + valid, upgrade, 200, "3"},
		{"query_with_upgrade_on_post", "POST", "/ws?token=" + valid, upgrade, 401, ""},
		{"query_with_upgrade_on_api_post", "POST", "/api/lectures?token=" + valid, upgrade, 401, ""},
		{"query_with_upgrade_on_api_get", "GET", "/api/lectures?token=" + valid, upgrade, 401, ""},
		{"query_with_upgrade_on_ws_lookalike", "GET", "/wsx?token=" + valid, upgrade, 401, ""},
		{"header_on_api_post", "POST", "/api/lectures", map[string]string{"Authorization": "Bearer " + valid}, 200, "3"},
		{"query_without_upgrade", "GET", "/ws?token=" + valid, nil, 401, ""},
		{"query_with_upgrade", "GET", "/ws?token=" + valid, map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, 200, "3"},
		{"query_with_upgrade_mixed_case", "GET", "/ws?token=" + valid, map[string]string{"Connection": "keep-alive, upgrade", "Upgrade": "WebSocket"}, 200, "3"},
		{"query_with_connection_only", "GET", "/ws?token=" + valid, map[string]string{"Connection": "Upgrade"}, 401, ""},
		{"query_with_other_upgrade", "GET", "/ws?token=" + valid, map[string]string{"Connection": "Upgrade", "Upgrade": "h2c"}, 401, ""},
		{"header", "GET", "/ws", map[string]string{"Authorization": "Bearer " + valid}, 200, "3"},
		{"header_lowercase_scheme", "GET", "/ws", map[string]string{"Authorization": "bearer " + valid}, 200, "3"},
		{"basic_scheme", "GET", "/ws", map[string]string{"Authorization": "Basic " + valid}, 401, ""},
		{"bad_header_beats_query", "GET", "/ws?token=" + valid, map[string]string{"Authorization": "Bearer x", "Connection": "Upgrade", "Upgrade": "websocket"}, 401, ""},
		{"none", "GET", "/ws", nil, 401, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.url, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status == 200 && w.Body.String() != tc.message {
				t.Fatalf("actor %q, want %q", w.Body, tc.message)
			}
			if tc.status == 401 && !strings.Contains(w.Body.String(), `"code":"UNAUTHORIZED"`) {
				t.Fatalf("body %s", w.Body)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		role   domain.Role
		status int
		code   string
	}{
		{domain.RoleStudent, 403, "FORBIDDEN"},
		{domain.RoleAnalyst, 403, "FORBIDDEN"},
		{domain.RoleInstructor, 200, ""},
		{domain.RoleAdmin, 200, ""},
	} {
		t.Run(strings.ToLower(string(tc.role)), func(t *testing.T) {
			tok, err := e.tokens.Issue(domain.Actor{UserID: 5, Role: tc.role})
			if err != nil {
				t.Fatal(err)
			}
			r := e.call("GET", "/instructors-only", nil, withBearer(tok))
			expect(t, r, tc.status, tc.code)
			if tc.status == 200 && (r.Body["role"] != string(tc.role) || r.Body["user_id"] != float64(5)) {
				t.Fatalf("actor %s", r.Raw)
			}
		})
	}
	expect(t, e.call("GET", "/instructors-only", nil), 401, "UNAUTHORIZED")

	// Require without Authenticate refuses rather than letting anyone through.
	r := gin.New()
	r.GET("/x", Require(domain.RoleStudent), func(c *gin.Context) { c.Status(200) })
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	if w.Code != 401 {
		t.Fatalf("unauthenticated Require: %d", w.Code)
	}
}
