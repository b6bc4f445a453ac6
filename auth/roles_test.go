package auth

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/lockstep/lockstep/domain"
)

// A query token authenticates nothing but a socket upgrade: neither a write
// nor a plain read with WebSocket upgrade headers added by hand.
func TestQueryToken_with_upgrade_headers_is_not_a_login(t *testing.T) {
	e := newEnv(t)
	if err := e.svc.EnsureAdmin(t.Context(), "admin@example.com", "adminPassword"); err != nil {
		t.Fatal(err)
	}
	adminAccess, _ := e.mustLogin("admin@example.com", "adminPassword")
	id := e.mustRegister("kim@example.com", "password1", domain.RoleStudent)

	r := e.call("PATCH", fmt.Sprintf("/api/admin/users/%d?token=%s", id, adminAccess), map[string]any{"role": "ADMIN"}, asUpgrade)
	expect(t, r, 401, "UNAUTHORIZED")
	if u, _ := e.svc.User(t.Context(), id); u.Role != domain.RoleStudent {
		t.Fatalf("a query-token PATCH changed the role to %s", u.Role)
	}
	expect(t, e.call("GET", "/api/auth/me?token="+adminAccess, nil, asUpgrade), 401, "UNAUTHORIZED")
	expect(t, e.call("GET", "/api/admin/users?token="+adminAccess, nil, asUpgrade), 401, "UNAUTHORIZED")
	// The socket path still takes it (browsers cannot set headers there).
	expect(t, e.call("GET", "/ws/test?token="+adminAccess, nil, asUpgrade), 200, "")
}

func TestSetRole_last_admin_cannot_be_demoted(t *testing.T) {
	e := newEnv(t)
	if err := e.svc.EnsureAdmin(t.Context(), "admin@example.com", "adminPassword"); err != nil {
		t.Fatal(err)
	}
	adminAccess, _ := e.mustLogin("admin@example.com", "adminPassword")
	me := e.call("GET", "/api/auth/me", nil, withBearer(adminAccess))
	adminID := int64(me.Body["id"].(float64))
	self := fmt.Sprintf("/api/admin/users/%d", adminID)

	for _, role := range []string{"STUDENT", "INSTRUCTOR", "ANALYST"} {
		r := e.call("PATCH", self, map[string]any{"role": role}, withBearer(adminAccess))
		expect(t, r, 409, "CONFLICT")
		if _, ok := r.details()["role"]; !ok || r.errMessage() == "" {
			t.Fatalf("409 body %s", r.Raw)
		}
	}
	if u, _ := e.svc.User(t.Context(), adminID); u.Role != domain.RoleAdmin {
		t.Fatalf("refused demotion left role %s", u.Role)
	}
	// Setting ADMIN on the last admin is no demotion.
	expect(t, e.call("PATCH", self, map[string]any{"role": "ADMIN"}, withBearer(adminAccess)), 200, "")

	// With a second admin, either may step down, and then the other is the last.
	other := e.mustRegister("lee@example.com", "password1", domain.RoleStudent)
	expect(t, e.call("PATCH", fmt.Sprintf("/api/admin/users/%d", other), map[string]any{"role": "ADMIN"}, withBearer(adminAccess)), 200, "")
	expect(t, e.call("PATCH", self, map[string]any{"role": "INSTRUCTOR"}, withBearer(adminAccess)), 200, "")
	otherAccess, _ := e.mustLogin("lee@example.com", "password1")
	expect(t, e.call("PATCH", fmt.Sprintf("/api/admin/users/%d", other), map[string]any{"role": "STUDENT"}, withBearer(otherAccess)), 409, "CONFLICT")
	if n := e.count(`SELECT count(*) FROM users WHERE role = 'ADMIN'`); n != 1 {
		t.Fatalf("%d admins", n)
	}
}

// Two admins demoting each other at the same moment: one wins, the other is
// refused, and one ADMIN is left — every round.
func TestSetRole_concurrent_demotions_leave_an_admin(t *testing.T) {
	e := newEnv(t)
	a := e.mustRegister("a@example.com", "password1", domain.RoleStudent)
	b := e.mustRegister("b@example.com", "password1", domain.RoleStudent)
	for round := range 20 {
		if _, err := e.db.Pool.Exec(t.Context(), `UPDATE users SET role = 'ADMIN' WHERE id IN ($1, $2)`, a, b); err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, target := range []int64{b, a} { // a demotes b, b demotes a
			wg.Go(func() {
				<-start
				_, errs[i] = e.svc.SetRole(t.Context(), target, domain.RoleStudent)
			})
		}
		close(start)
		wg.Wait()
		if n := e.count(`SELECT count(*) FROM users WHERE role = 'ADMIN'`); n != 1 {
			t.Fatalf("round %d: %d admins left (errors %v)", round, n, errs)
		}
		refused := 0
		for _, err := range errs {
			switch {
			case err == nil:
			case errors.Is(err, domain.ErrConflict):
				refused++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if refused != 1 {
			t.Fatalf("round %d: %d refusals, want 1", round, refused)
		}
	}
}

// The role a request is judged by is the one its token carries: after a
// demotion, a fresh login (or refresh) gives a token with the new role,
// while a token issued before keeps the old one until it expires.
func TestRoleChange_reaches_the_next_token(t *testing.T) {
	e := newEnv(t)
	if err := e.svc.EnsureAdmin(t.Context(), "admin@example.com", "adminPassword"); err != nil {
		t.Fatal(err)
	}
	adminAccess, _ := e.mustLogin("admin@example.com", "adminPassword")
	id := e.mustRegister("kim@example.com", "password1", domain.RoleInstructor)
	old, rt := e.mustLogin("kim@example.com", "password1")
	expect(t, e.call("GET", "/instructors-only", nil, withBearer(old)), 200, "")

	expect(t, e.call("PATCH", fmt.Sprintf("/api/admin/users/%d", id), map[string]any{"role": "STUDENT"}, withBearer(adminAccess)), 200, "")
	fresh, _ := e.mustLogin("kim@example.com", "password1")
	expect(t, e.call("GET", "/instructors-only", nil, withBearer(fresh)), 403, "FORBIDDEN")
	r := e.call("POST", "/api/auth/refresh", map[string]any{"refresh_token": rt})
	expect(t, r, 200, "")
	expect(t, e.call("GET", "/instructors-only", nil, withBearer(r.str("access_token"))), 403, "FORBIDDEN")
	if me := e.call("GET", "/api/auth/me", nil, withBearer(fresh)); me.Body["role"] != "STUDENT" {
		t.Fatalf("me %s", me.Raw)
	}
	// Documented: the old token keeps its role until it expires (≤ access TTL).
	expect(t, e.call("GET", "/instructors-only", nil, withBearer(old)), 200, "")
	e.clock.Advance(accessTTL)
	expect(t, e.call("GET", "/instructors-only", nil, withBearer(old)), 401, "TOKEN_EXPIRED")
}
