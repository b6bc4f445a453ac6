package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/lockstep/lockstep/domain"
)

func TestRegister_success(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/api/auth/register", regBody("Student@Example.com", "securePassword123", "role", "INSTRUCTOR"))
	expect(t, r, 201, "")
	want := map[string]any{"email": "Student@Example.com", "name": "김학생", "role": "INSTRUCTOR", "digital_level": "BEGINNER", "created_at": "2025-10-28T10:00:00Z"}
	for k, v := range want {
		if r.Body[k] != v {
			t.Errorf("%s = %v, want %v", k, r.Body[k], v)
		}
	}
	if id, _ := r.Body["id"].(float64); id <= 0 {
		t.Errorf("id %v", r.Body["id"])
	}
	if len(r.Body) != 6 {
		t.Errorf("fields beyond the contract's: %s", r.Raw)
	}
	if _, ok := r.Body["password"]; ok {
		t.Error("password echoed")
	}
	var hash string
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT password_hash FROM users WHERE id = $1`, int64(r.Body["id"].(float64))).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, "securePassword123") {
		t.Fatalf("stored hash %q", hash)
	}

	t.Run("defaults", func(t *testing.T) {
		r := e.call("POST", "/api/auth/register", map[string]any{"email": "min@example.com", "password": "12345678", "name": "Min"})
		expect(t, r, 201, "")
		if r.Body["role"] != "STUDENT" || r.Body["digital_level"] != "BEGINNER" {
			t.Fatalf("defaults: %s", r.Raw)
		}
		access, _ := e.mustLogin("min@example.com", "12345678")
		me := e.call("GET", "/api/auth/me", nil, withBearer(access))
		expect(t, me, 200, "")
		if me.Body["age"] != nil {
			t.Fatalf("age not given, yet %v", me.Body["age"])
		}
	})
}

func TestRegister_refusals(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("é", 129)
	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"role_admin", regBody("a@example.com", "password1", "role", "ADMIN"), "role"},
		{"role_analyst", regBody("a@example.com", "password1", "role", "ANALYST"), "role"},
		{"role_lowercase", regBody("a@example.com", "password1", "role", "student"), "role"},
		{"role_not_string", regBody("a@example.com", "password1", "role", 1), "role"},
		{"password_7_chars", regBody("a@example.com", "1234567"), "password"},
		{"password_129_chars", regBody("a@example.com", long), "password"},
		{"password_missing", regBody("a@example.com", "x", "password", nil), "password"},
		{"email_missing", regBody("", "password1"), "email"},
		{"email_invalid", regBody("not-an-email", "password1"), "email"},
		{"name_missing", regBody("a@example.com", "password1", "name", nil), "name"},
		{"name_blank", regBody("a@example.com", "password1", "name", "   "), "name"},
		{"age_zero", regBody("a@example.com", "password1", "age", 0), "age"},
		{"age_too_high", regBody("a@example.com", "password1", "age", 151), "age"},
		{"age_string", regBody("a@example.com", "password1", "age", "sixty"), "age"},
		{"digital_level_unknown", regBody("a@example.com", "password1", "digital_level", "EXPERT"), "digital_level"},
		{"phone_letters", regBody("a@example.com", "password1", "phone", "call me"), "phone"},
		{"malformed_json", `{"email": "a@example.com",`, "body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call("POST", "/api/auth/register", tc.body)
			expect(t, r, 400, "INVALID_REQUEST")
			if _, ok := r.details()[tc.field]; !ok {
				t.Fatalf("details do not name %s: %s", tc.field, r.Raw)
			}
		})
	}
	if n := e.count(`SELECT count(*) FROM users`); n != 0 {
		t.Fatalf("%d users created by refused registrations", n)
	}
	// 8 characters, counted as characters not bytes, is enough.
	expect(t, e.call("POST", "/api/auth/register", regBody("b@example.com", "éééééééé")), 201, "")
}

func TestRegister_duplicate_email_any_case(t *testing.T) {
	e := newEnv(t)
	e.mustRegister("kim@example.com", "password1", domain.RoleStudent)
	r := e.call("POST", "/api/auth/register", regBody("KIM@Example.COM", "password2"))
	expect(t, r, 409, "CONFLICT")
	if n := e.count(`SELECT count(*) FROM users`); n != 1 {
		t.Fatalf("%d users", n)
	}
}

func TestLogin_and_me(t *testing.T) {
	e := newEnv(t)
	id := e.mustRegister("kim@example.com", "securePassword123", domain.RoleStudent)

	r := e.login("KIM@example.com", "securePassword123")
	expect(t, r, 200, "")
	user, _ := r.Body["user"].(map[string]any)
	if user["id"] != float64(id) || user["email"] != "kim@example.com" || user["name"] != "김학생" || user["role"] != "STUDENT" || len(user) != 4 {
		t.Fatalf("user %v", user)
	}
	access, refresh := r.str("access_token"), r.str("refresh_token")
	if access == "" || len(refresh) < 43 {
		t.Fatalf("tokens %q %q", access, refresh)
	}
	if a, err := e.tokens.Verify(access); err != nil || a != (domain.Actor{UserID: id, Role: domain.RoleStudent}) {
		t.Fatalf("access token: %+v %v", a, err)
	}
	var stored int
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2`, hashToken(refresh), id).Scan(&stored); err != nil || stored != 1 {
		t.Fatalf("refresh token not stored by hash: %d %v", stored, err)
	}
	if e.count(`SELECT count(*) FROM refresh_tokens WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'`, refresh) != 0 {
		t.Fatal("refresh token stored in clear")
	}

	me := e.call("GET", "/api/auth/me", nil, withBearer(access))
	expect(t, me, 200, "")
	want := map[string]any{"id": float64(id), "email": "kim@example.com", "name": "김학생", "role": "STUDENT", "digital_level": "BEGINNER", "age": float64(65)}
	if len(me.Body) != len(want) {
		t.Fatalf("me %s", me.Raw)
	}
	for k, v := range want {
		if me.Body[k] != v {
			t.Errorf("me.%s = %v, want %v", k, me.Body[k], v)
		}
	}

	t.Run("same_refusal_for_unknown_email_and_wrong_password", func(t *testing.T) {
		wrong := e.login("kim@example.com", "wrongPassword")
		unknown := e.login("nobody@example.com", "securePassword123")
		expect(t, wrong, 401, "UNAUTHORIZED")
		expect(t, unknown, 401, "UNAUTHORIZED")
		if wrong.errMessage() != unknown.errMessage() || wrong.Raw != unknown.Raw {
			t.Fatalf("answers differ: %s vs %s", wrong.Raw, unknown.Raw)
		}
	})
	t.Run("unknown_email_with_the_dummy_password", func(t *testing.T) {
		expect(t, e.login("nobody@example.com", "lockstep-dummy-password"), 401, "UNAUTHORIZED")
	})
	t.Run("missing_fields", func(t *testing.T) {
		r := e.call("POST", "/api/auth/login", map[string]any{})
		expect(t, r, 400, "INVALID_REQUEST")
		if _, ok := r.details()["email"]; !ok {
			t.Fatalf("details %s", r.Raw)
		}
		if _, ok := r.details()["password"]; !ok {
			t.Fatalf("details %s", r.Raw)
		}
	})
	t.Run("me_without_token", func(t *testing.T) {
		expect(t, e.call("GET", "/api/auth/me", nil), 401, "UNAUTHORIZED")
	})
	t.Run("me_with_token_in_query_of_plain_request", func(t *testing.T) {
		expect(t, e.call("GET", "/api/auth/me?token="+access, nil), 401, "UNAUTHORIZED")
	})
	t.Run("me_with_refresh_token_as_bearer", func(t *testing.T) {
		expect(t, e.call("GET", "/api/auth/me", nil, withBearer(refresh)), 401, "UNAUTHORIZED")
	})
	t.Run("me_expired", func(t *testing.T) {
		e.clock.Advance(accessTTL - time.Second)
		expect(t, e.call("GET", "/api/auth/me", nil, withBearer(access)), 200, "")
		e.clock.Advance(time.Second)
		expect(t, e.call("GET", "/api/auth/me", nil, withBearer(access)), 401, "TOKEN_EXPIRED")
		expect(t, e.call("GET", "/api/auth/me", nil, withBearer(tamper(access))), 401, "UNAUTHORIZED")
	})
}

func TestLogin_rate_limit_per_email(t *testing.T) {
	e := newEnv(t) // the contract's defaults: 10 per email within 15 minutes
	e.mustRegister("kim@example.com", "rightPassword", domain.RoleStudent)

	for i := range 10 {
		// Different addresses: only the per-email limit is in play.
		expect(t, e.login("Kim@Example.com", fmt.Sprintf("wrong%d-password", i), fromAddr(fmt.Sprintf("10.0.0.%d", i+1))), 401, "UNAUTHORIZED")
		e.clock.Advance(time.Second)
	}
	expect(t, e.login("kim@example.com", "rightPassword", fromAddr("10.0.1.1")), 429, "RATE_LIMITED")
	expect(t, e.login("kim@example.com", "wrongPassword", fromAddr("10.0.1.1")), 429, "RATE_LIMITED")
	// Refused attempts are not failures: the window runs from the first failure.
	if n := e.count(`SELECT count(*) FROM login_failures`); n != 10 {
		t.Fatalf("%d failures recorded", n)
	}
	// Other emails are not affected.
	e.mustRegister("lee@example.com", "rightPassword", domain.RoleStudent)
	expect(t, e.login("lee@example.com", "rightPassword"), 200, "")

	// The first failure was at t0; at t0+15m it leaves the window.
	e.clock.Advance(15*time.Minute - 10*time.Second - time.Second)
	expect(t, e.login("kim@example.com", "rightPassword"), 429, "RATE_LIMITED")
	e.clock.Advance(time.Second)
	expect(t, e.login("kim@example.com", "rightPassword"), 200, "")

	t.Run("unknown_email_limited_too", func(t *testing.T) {
		for range 10 {
			expect(t, e.login("ghost@example.com", "whatever1"), 401, "UNAUTHORIZED")
		}
		expect(t, e.login("ghost@example.com", "whatever1"), 429, "RATE_LIMITED")
	})
}

func TestLogin_rate_limit_per_address(t *testing.T) {
	e := newEnv(t, WithLoginLimits(LoginLimits{PerAddress: 3, Window: time.Minute}))
	e.mustRegister("kim@example.com", "rightPassword", domain.RoleStudent)
	for i := range 3 {
		expect(t, e.login(email(i), "wrongPassword", fromAddr("192.0.2.7")), 401, "UNAUTHORIZED")
	}
	expect(t, e.login("kim@example.com", "rightPassword", fromAddr("192.0.2.7")), 429, "RATE_LIMITED")
	expect(t, e.login("kim@example.com", "rightPassword", fromAddr("192.0.2.8")), 200, "")
	e.clock.Advance(time.Minute)
	expect(t, e.login("kim@example.com", "rightPassword", fromAddr("192.0.2.7")), 200, "")
}

func TestLogin_successes_do_not_count(t *testing.T) {
	e := newEnv(t, WithLoginLimits(LoginLimits{PerEmail: 2}))
	e.mustRegister("kim@example.com", "rightPassword", domain.RoleStudent)
	for range 4 {
		expect(t, e.login("kim@example.com", "rightPassword"), 200, "")
	}
	expect(t, e.login("kim@example.com", "wrongPassword"), 401, "UNAUTHORIZED")
	expect(t, e.login("kim@example.com", "rightPassword"), 200, "")
	expect(t, e.login("kim@example.com", "wrongPassword"), 401, "UNAUTHORIZED")
	expect(t, e.login("kim@example.com", "rightPassword"), 429, "RATE_LIMITED")
}

// Two services on one database stand for two API instances: concurrent
// failures for one email across both never get past the limit.
func TestLogin_rate_limit_across_instances(t *testing.T) {
	e := newEnv(t, WithLoginLimits(LoginLimits{PerEmail: 5}))
	other := NewService(e.db.Pool, e.tokens, nil, e.clock.Now, WithLoginLimits(LoginLimits{PerEmail: 5}))
	id := e.mustRegister("kim@example.com", "rightPassword", domain.RoleStudent)
	// A production-cost hash widens the gap between counting failures and
	// recording one, where unsynchronized attempts would slip through.
	slow, err := argon2id.CreateHash("rightPassword", productionParams)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(t.Context(), `UPDATE users SET password_hash = $2 WHERE id = $1`, id, slow); err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[domain.Code]int{}
	)
	for i := range 16 {
		svc := e.svc
		if i%2 == 1 {
			svc = other
		}
		wg.Go(func() {
			_, err := svc.Login(t.Context(), "kim@example.com", "wrongPassword", fmt.Sprintf("10.1.0.%d", i))
			mu.Lock()
			defer mu.Unlock()
			codes[domain.ErrorCode(err)]++
		})
	}
	wg.Wait()
	if codes[domain.CodeUnauthorized] != 5 || codes[domain.CodeRateLimited] != 11 {
		t.Fatalf("outcomes %v, want 5 UNAUTHORIZED and 11 RATE_LIMITED", codes)
	}
}

func TestRefresh(t *testing.T) {
	e := newEnv(t)
	id := e.mustRegister("kim@example.com", "rightPassword", domain.RoleStudent)
	_, r1 := e.mustLogin("kim@example.com", "rightPassword")
	_, otherFamily := e.mustLogin("kim@example.com", "rightPassword")

	e.clock.Advance(time.Minute)
	r := e.call("POST", "/api/auth/refresh", map[string]any{"refresh_token": r1})
	expect(t, r, 200, "")
	access2, r2 := r.str("access_token"), r.str("refresh_token")
	if access2 == "" || r2 == "" || r2 == r1 || len(r.Body) != 2 {
		t.Fatalf("refresh answer %s", r.Raw)
	}
	if a, err := e.tokens.Verify(access2); err != nil || a.UserID != id {
		t.Fatalf("new access token: %+v %v", a, err)
	}
	me := e.call("GET", "/api/auth/me", nil, withBearer(access2))
	expect(t, me, 200, "")

	// The rotated token works once more down the chain.
	r = e.call("POST", "/api/auth/refresh", map[string]any{"refresh_token": r2})
	expect(t, r, 200, "")
	r3 := r.str("refresh_token")

	// r1 again: reuse. Refused, and the whole family (r3 included) is revoked.
	expect(t, e.call("POST", "/api/auth/refresh", map[string]any{"refresh_token": r1}), 401, "UNAUTHORIZED")
	expect(t, e.call("POST", "/api/auth/refresh", map[string]any{"refresh_token": r3}), 401, "UNAUTHORIZED")
	if !strings.Contains(e.logs.String(), "refresh token reused") {
		t.Error("reuse not logged")
	}
	// Another login's family is untouched.
	expect(t, e.call("POST", "/api/auth/refresh", map[string]any{"refresh_token": otherFamily}), 200, "")

	t.Run("refusals", func(t *testing.T) {
		access, _ := e.mustLogin("kim@example.com", "rightPassword")
		expect(t, e.call("POST", "/api/auth/refresh", map[string]any{"refresh_token": "made-up"}), 401, "UNAUTHORIZED")
		expect(t, e.call("POST", "/api/auth/refresh", map[string]any{"refresh_token": access}), 401, "UNAUTHORIZED")
		r := e.call("POST", "/api/auth/refresh", map[string]any{})
		expect(t, r, 400, "INVALID_REQUEST")
		if _, ok := r.details()["refresh_token"]; !ok {
			t.Fatalf("details %s", r.Raw)
		}
	})
	t.Run("expired", func(t *testing.T) {
		_, rt := e.mustLogin("kim@example.com", "rightPassword")
		e.clock.Advance(refreshTTL)
		expect(t, e.call("POST", "/api/auth/refresh", map[string]any{"refresh_token": rt}), 401, "TOKEN_EXPIRED")
	})
}

// A concurrent double refresh with one token: exactly one wins; the loser is
// treated as reuse, which revokes the winner's new token too.
func TestRefresh_concurrent_reuse(t *testing.T) {
	e := newEnv(t)
	e.mustRegister("kim@example.com", "rightPassword", domain.RoleStudent)
	_, rt := e.mustLogin("kim@example.com", "rightPassword")
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []Session
		errs []error
	)
	for range 8 {
		wg.Go(func() {
			s, err := e.svc.Refresh(t.Context(), rt)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else {
				wins = append(wins, s)
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 || len(errs) != 7 {
		t.Fatalf("%d wins, %d refusals", len(wins), len(errs))
	}
	for _, err := range errs {
		if domain.ErrorCode(err) != domain.CodeUnauthorized {
			t.Fatalf("refusal %v", err)
		}
	}
	if _, err := e.svc.Refresh(t.Context(), wins[0].RefreshToken); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("winner's token after reuse: %v", err)
	}
}

func TestRefresh_carries_current_role(t *testing.T) {
	e := newEnv(t)
	id := e.mustRegister("kim@example.com", "rightPassword", domain.RoleStudent)
	_, rt := e.mustLogin("kim@example.com", "rightPassword")
	if _, err := e.svc.SetRole(t.Context(), id, domain.RoleAnalyst); err != nil {
		t.Fatal(err)
	}
	s, err := e.svc.Refresh(t.Context(), rt)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := e.tokens.Verify(s.AccessToken); err != nil || a.Role != domain.RoleAnalyst {
		t.Fatalf("role after refresh: %+v %v", a, err)
	}
}

func TestAdminUsers(t *testing.T) {
	e := newEnv(t)
	if err := e.svc.EnsureAdmin(t.Context(), "admin@example.com", "adminPassword"); err != nil {
		t.Fatal(err)
	}
	adminAccess, _ := e.mustLogin("admin@example.com", "adminPassword")
	var ids []int64
	for i := range 4 {
		ids = append(ids, e.mustRegister(email(i), "password1", domain.RoleStudent))
	}
	studentAccess, _ := e.mustLogin(email(0), "password1")

	r := e.call("GET", "/api/admin/users?page=2&page_size=2", nil, withBearer(adminAccess))
	expect(t, r, 200, "")
	users, _ := r.Body["users"].([]any)
	if len(users) != 2 {
		t.Fatalf("users %s", r.Raw)
	}
	first := users[0].(map[string]any)
	if first["id"] != float64(ids[1]) || first["email"] != email(1) || first["role"] != "STUDENT" || first["phone"] != "01012345678" {
		t.Fatalf("user %v", first)
	}
	if _, ok := first["password_hash"]; ok {
		t.Fatal("hash exposed")
	}
	p, _ := r.Body["pagination"].(map[string]any)
	if p["page"] != float64(2) || p["page_size"] != float64(2) || p["total_count"] != float64(5) || p["total_pages"] != float64(3) {
		t.Fatalf("pagination %v", p)
	}
	r = e.call("GET", "/api/admin/users?role=ADMIN", nil, withBearer(adminAccess))
	expect(t, r, 200, "")
	if users, _ := r.Body["users"].([]any); len(users) != 1 || users[0].(map[string]any)["email"] != "admin@example.com" {
		t.Fatalf("role filter %s", r.Raw)
	}

	path := fmt.Sprintf("/api/admin/users/%d", ids[2])
	r = e.call("PATCH", path, map[string]any{"role": "INSTRUCTOR"}, withBearer(adminAccess))
	expect(t, r, 200, "")
	if r.Body["role"] != "INSTRUCTOR" || r.Body["id"] != float64(ids[2]) {
		t.Fatalf("patched %s", r.Raw)
	}
	if got, err := e.svc.User(t.Context(), ids[2]); err != nil || got.Role != domain.RoleInstructor {
		t.Fatalf("stored role %+v %v", got, err)
	}

	for _, tc := range []struct {
		name, method, path string
		body               any
		token              string
		status             int
		code, field        string
	}{
		{"list_as_student", "GET", "/api/admin/users", nil, studentAccess, 403, "FORBIDDEN", ""},
		{"list_without_token", "GET", "/api/admin/users", nil, "", 401, "UNAUTHORIZED", ""},
		{"list_bad_page_size", "GET", "/api/admin/users?page_size=101", nil, adminAccess, 400, "INVALID_REQUEST", "page_size"},
		{"list_bad_role", "GET", "/api/admin/users?role=ROOT", nil, adminAccess, 400, "INVALID_REQUEST", "role"},
		{"patch_as_student", "PATCH", path, map[string]any{"role": "ADMIN"}, studentAccess, 403, "FORBIDDEN", ""},
		{"patch_invalid_role", "PATCH", path, map[string]any{"role": "SUPERUSER"}, adminAccess, 400, "INVALID_REQUEST", "role"},
		{"patch_missing_role", "PATCH", path, map[string]any{}, adminAccess, 400, "INVALID_REQUEST", "role"},
		{"patch_unknown_id", "PATCH", "/api/admin/users/999999", map[string]any{"role": "ANALYST"}, adminAccess, 404, "NOT_FOUND", ""},
		{"patch_bad_id", "PATCH", "/api/admin/users/abc", map[string]any{"role": "ANALYST"}, adminAccess, 404, "NOT_FOUND", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []reqOpt
			if tc.token != "" {
				opts = append(opts, withBearer(tc.token))
			}
			r := e.call(tc.method, tc.path, tc.body, opts...)
			expect(t, r, tc.status, tc.code)
			if tc.field != "" {
				if _, ok := r.details()[tc.field]; !ok {
					t.Fatalf("details do not name %s: %s", tc.field, r.Raw)
				}
			}
		})
	}
	if got, _ := e.svc.User(t.Context(), ids[2]); got.Role != domain.RoleInstructor {
		t.Fatalf("refused patches changed the role to %s", got.Role)
	}
}

func TestEnsureAdmin(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for range 2 {
		if err := e.svc.EnsureAdmin(ctx, "root@example.com", "adminPassword"); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.count(`SELECT count(*) FROM users WHERE role = 'ADMIN'`); n != 1 {
		t.Fatalf("%d admins", n)
	}
	r := e.login("root@example.com", "adminPassword")
	expect(t, r, 200, "")
	if r.Body["user"].(map[string]any)["role"] != "ADMIN" {
		t.Fatalf("login %s", r.Raw)
	}

	t.Run("promotes_existing_account_and_resets_password", func(t *testing.T) {
		id := e.mustRegister("boss@example.com", "oldPassword", domain.RoleInstructor)
		if err := e.svc.EnsureAdmin(ctx, "Boss@Example.com", "newPassword"); err != nil {
			t.Fatal(err)
		}
		u, err := e.svc.User(ctx, id)
		if err != nil || u.Role != domain.RoleAdmin {
			t.Fatalf("%+v %v", u, err)
		}
		expect(t, e.login("boss@example.com", "oldPassword"), 401, "UNAUTHORIZED")
		expect(t, e.login("boss@example.com", "newPassword"), 200, "")
		if n := e.count(`SELECT count(*) FROM users WHERE lower(email) = 'boss@example.com'`); n != 1 {
			t.Fatalf("%d accounts", n)
		}
	})
	t.Run("refuses_bad_input", func(t *testing.T) {
		if err := e.svc.EnsureAdmin(ctx, "root@example.com", "short"); err == nil {
			t.Fatal("short password accepted")
		}
		if err := e.svc.EnsureAdmin(ctx, "root", "adminPassword"); err == nil {
			t.Fatal("bad email accepted")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() { errs <- e.svc.EnsureAdmin(ctx, "twice@example.com", "adminPassword") })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := e.count(`SELECT count(*) FROM users WHERE email = 'twice@example.com'`); n != 1 {
			t.Fatalf("%d accounts", n)
		}
	})
}

func TestUser_lookup(t *testing.T) {
	e := newEnv(t)
	id := e.mustRegister("kim@example.com", "password1", domain.RoleInstructor)
	u, err := e.svc.User(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != id || u.Email != "kim@example.com" || u.Name != "김학생" || u.Age != 65 || u.Phone != "01012345678" ||
		u.Role != domain.RoleInstructor || u.DigitalLevel != LevelBeginner || !u.CreatedAt.Equal(t0) || u.CreatedAt.Location() != time.UTC {
		t.Fatalf("%+v", u)
	}
	if _, err := e.svc.User(t.Context(), id+1000); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

// Passwords and tokens never reach the logs, whatever happens.
func TestLogs_hold_no_secrets(t *testing.T) {
	e := newEnv(t, WithLoginLimits(LoginLimits{PerEmail: 2}))
	e.mustRegister("kim@example.com", "secretPassword1", domain.RoleStudent)
	access, rt := e.mustLogin("kim@example.com", "secretPassword1")
	r := e.call("POST", "/api/auth/refresh", map[string]any{"refresh_token": rt})
	expect(t, r, 200, "")
	e.call("POST", "/api/auth/refresh", map[string]any{"refresh_token": rt}) // reuse
	e.call("GET", "/ws/test?token="+access, nil, func(r *http.Request) { asUpgrade(r) })
	e.login("kim@example.com", "wrongSecret99")
	e.login("kim@example.com", "wrongSecret99")
	e.login("kim@example.com", "secretPassword1") // rate limited
	logs := e.logs.String()
	if !strings.Contains(logs, "login failed") || !strings.Contains(logs, "login rate limited") {
		t.Fatalf("expected log lines missing:\n%s", logs)
	}
	for _, secret := range []string{"secretPassword1", "wrongSecret99", access, rt, r.str("access_token"), r.str("refresh_token")} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain a secret %q:\n%s", secret, logs)
		}
	}
}
