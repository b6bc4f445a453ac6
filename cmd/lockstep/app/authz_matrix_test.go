package app_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// The authorization matrix: every route the engine serves (HTTP and
// WebSocket, read from gin itself) must have a row in authzTable, and every
// cell — one of eight callers — is exercised against the running app. A
// new route without a row fails TestAuthorizationMatrix, so no endpoint
// ships without its authorization decided here.
//
// A cell is what the caller gets:
//
//	2xx          any success (HTTP)
//	400 401 403 404 409 410 …
//	             that status, with the contract's error code for it
//	             (authzCodes); "409:INVALID_STATE" names another code
//	ws           the socket opened (a first message, or none within the wait)
//	4401 4403 4404
//	             the socket opened only to close with that code
//
// A cell that passes authorization but meets the resource's own state (a
// 404 for an admin retrying a quarantined event that is not there, a 409 for
// a second enrolment) says so: what matters is that the refusals are the
// ones written, and that everyone else gets past them.
//
// LOCKSTEP_AUTHZ_PRINT=1 prints the matrix as observed (to write a new row).

// The eight callers, in the order of a row's cells.
const (
	anon       = iota // no token
	stranger          // a STUDENT neither enrolled in the lecture nor in the session
	self              // the STUDENT the resource is about: enrolled, joined, asked for help
	other             // another STUDENT, enrolled and joined too, but not the subject
	owner             // the INSTRUCTOR who owns the lecture
	otherInstr        // another INSTRUCTOR
	analyst           // an ANALYST
	admin             // the ADMIN
	nCallers
)

var callerNames = [nCallers]string{"anonymous", "stranger", "self", "other student", "owner", "other instructor", "analyst", "admin"}

// authzCodes is the contract's error code for each refusal status.
var authzCodes = map[int]string{
	400: "INVALID_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
	405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 429: "RATE_LIMITED", 503: "UNAVAILABLE",
}

// authzRow is one route's expected outcomes.
type authzRow struct {
	want string // eight cells, in caller order
	// fresh, when set, makes the cell's own resources (for routes that change
	// what later cells would see: delete, end, start…) and returns path
	// parameters that replace the shared fixture's.
	fresh func(t *testing.T, f *authzFixture, who int) map[string]string
	// always: call fresh for refused cells too (it maps a parameter).
	always bool
	// query is appended to the path ({name} filled from the parameters).
	query string
	// body is the request body (nil: none).
	body func(t *testing.T, f *authzFixture, who int) any
}

// Shorthands for the common rows.
const (
	public     = "2xx 2xx 2xx 2xx 2xx 2xx 2xx 2xx"
	anyUser    = "401 2xx 2xx 2xx 2xx 2xx 2xx 2xx"
	adminOnly  = "401 403 403 403 403 403 403 2xx"
	ownerAdmin = "401 403 403 403 2xx 403 403 2xx"
)

func authzTable() map[string]authzRow {
	return map[string]authzRow{
		// Console and operations: public.
		"GET /":                  {want: public},
		"HEAD /":                 {want: public},
		"GET /static/*filepath":  {want: public},
		"HEAD /static/*filepath": {want: public},
		"GET /replay":            {want: public},
		"HEAD /replay":           {want: public},
		"GET /replay/*rest":      {want: public},
		"HEAD /replay/*rest":     {want: public},
		"GET /join/:code":        {want: public},
		"HEAD /join/:code":       {want: public},
		"GET /qr/:file":          {want: public},
		"GET /healthz":           {want: public},
		"GET /readyz":            {want: public},
		// /metrics is not on the API port: it has its own listener
		// (METRICS_ADDR, loopback by default; TestMetricsOnlyOnTheirListener).
		// The API description (issue 15): public, like the console.
		"GET /openapi.json":  {want: public},
		"GET /openapi.yaml":  {want: public},
		"GET /asyncapi.json": {want: public},
		"GET /asyncapi.yaml": {want: public},
		"GET /docs":          {want: public},
		"GET /docs/vendor/*file": {want: public, always: true, fresh: func(*testing.T, *authzFixture, int) map[string]string {
			return map[string]string{"file": "redoc.standalone.js"}
		}},

		// Accounts.
		"POST /api/auth/login": {want: public, body: func(t *testing.T, f *authzFixture, who int) any {
			return map[string]any{"email": f.users[stranger].Email, "password": "password-123"}
		}},
		"POST /api/auth/register": {want: "201 201 201 201 201 201 201 201", body: func(t *testing.T, f *authzFixture, who int) any {
			f.seq++
			return map[string]any{"email": fmt.Sprintf("authz-reg-%d-%d@lockstep.test", f.seq, time.Now().UnixNano()), "password": "password-123",
				"name": "가입", "role": "STUDENT", "age": 70, "phone": "01012345678", "digital_level": "BEGINNER"}
		}},
		"POST /api/auth/refresh": {want: public, body: func(t *testing.T, f *authzFixture, who int) any {
			return map[string]any{"refresh_token": f.srv.Login(t, f.users[stranger].Email, "password-123").RefreshToken}
		}},
		"GET /api/auth/me":     {want: anyUser},
		"GET /api/admin/users": {want: adminOnly},
		"PATCH /api/admin/users/:user_id": {want: adminOnly, body: func(t *testing.T, f *authzFixture, who int) any {
			return map[string]any{"role": "STUDENT"}
		}, fresh: func(t *testing.T, f *authzFixture, who int) map[string]string {
			return map[string]string{"user_id": strconv.FormatInt(f.throwaway.ID, 10)}
		}},

		// Removing an account: ADMIN only, on a fresh account each time.
		"DELETE /api/admin/users/:user_id": {want: adminOnly, fresh: func(t *testing.T, f *authzFixture, who int) map[string]string {
			return map[string]string{"user_id": strconv.FormatInt(f.srv.NewUser(t, "STUDENT", "삭제").ID, 10)}
		}},

		// Projection administration: ADMIN only. An admin retrying or
		// skipping an event that is not quarantined meets 404; unparking a
		// projector that is not parked, 409.
		"GET /api/admin/projections":                                   {want: adminOnly},
		"GET /api/admin/projections/:name/quarantine":                  {want: adminOnly},
		"POST /api/admin/projections/:name/quarantine/:position/retry": {want: "401 403 403 403 403 403 403 404"},
		"POST /api/admin/projections/:name/quarantine/:position/skip":  {want: "401 403 403 403 403 403 403 404"},
		"POST /api/admin/projections/:name/rebuild":                    {want: adminOnly},
		"POST /api/admin/projections/:name/unpark":                     {want: adminOnly},
		"GET /api/admin/logs/dead-letters":                             {want: adminOnly},

		// Analytics: the lecture's owner, analysts and admins.
		"GET /api/analytics/lectures/:lecture_id/events": {want: "401 403 403 403 2xx 403 2xx 2xx"},
		"GET /api/analytics/sessions/:session_id/events": {want: "401 403 403 403 2xx 403 2xx 2xx"},
		"GET /api/analytics/sessions/:session_id/state":  {want: "401 403 403 403 2xx 403 2xx 2xx", query: "?at=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)},
		"GET /api/analytics/sessions/:session_id/xapi":   {want: "401 403 403 403 2xx 403 2xx 2xx"},

		// Dashboards.
		"GET /api/dashboard/chart-data/progress-trend":      {want: "401 403 403 403 2xx 403 2xx 2xx", query: "?lecture_id={lecture_id}"},
		"GET /api/dashboard/help-requests/pending":          {want: "401 403 403 403 2xx 2xx 2xx 2xx"},
		"GET /api/dashboard/lectures/:lecture_id/students":  {want: "401 403 403 403 2xx 403 2xx 2xx"},
		"GET /api/dashboard/statistics/lecture/:lecture_id": {want: "401 403 403 403 2xx 403 2xx 2xx"},

		// Help.
		"POST /api/help/request": {want: "401 403 201 201 403 403 403 201", body: func(t *testing.T, f *authzFixture, who int) any {
			return map[string]any{"subtask_id": f.subtask}
		}},
		"GET /api/help/request/:help_request_id": {want: "401 403 2xx 403 2xx 403 2xx 2xx"},
		"POST /api/help/request/:help_request_id/respond": {want: ownerAdmin, body: func(t *testing.T, f *authzFixture, who int) any {
			return map[string]any{"help_content": "설정 버튼을 눌러 보세요", "help_type": "TEXT"}
		}, fresh: func(t *testing.T, f *authzFixture, who int) map[string]string {
			return map[string]string{"help_request_id": strconv.FormatInt(f.helpRequest(t), 10)}
		}},
		"POST /api/help/feedback": {want: "401 403 201 403 403 403 403 403", body: func(t *testing.T, f *authzFixture, who int) any {
			return map[string]any{"help_response_id": f.helpResponse, "rating": 5}
		}},

		// Lectures, tasks and subtasks.
		"GET /api/lectures":             {want: anyUser},
		"POST /api/lectures":            {want: "401 403 403 403 201 201 403 201", body: lectureBody},
		"GET /api/lectures/:lecture_id": {want: anyUser},
		"PUT /api/lectures/:lecture_id": {want: ownerAdmin, body: lectureBody},
		"DELETE /api/lectures/:lecture_id": {want: ownerAdmin, fresh: func(t *testing.T, f *authzFixture, who int) map[string]string {
			return map[string]string{"lecture_id": strconv.FormatInt(f.newLecture(t), 10)}
		}},
		"POST /api/lectures/:lecture_id/enroll": {want: "401 201 201 201 403 403 403 201", fresh: func(t *testing.T, f *authzFixture, who int) map[string]string {
			return map[string]string{"lecture_id": strconv.FormatInt(f.newLecture(t), 10)}
		}},
		"POST /api/lectures/:lecture_id/sessions": {want: "401 403 403 403 201 403 403 201"},
		"POST /api/lectures/:lecture_id/tasks": {want: "401 403 403 403 201 403 403 201", body: func(t *testing.T, f *authzFixture, who int) any {
			f.seq++
			return map[string]any{"title": "과제", "order_index": 100 + f.seq}
		}},
		"GET /api/tasks/:task_id": {want: anyUser},
		"PUT /api/tasks/:task_id": {want: ownerAdmin, body: func(t *testing.T, f *authzFixture, who int) any {
			return map[string]any{"title": "과제", "order_index": 1}
		}},
		"POST /api/tasks/:task_id/subtasks": {want: "401 403 403 403 201 403 403 201", body: func(t *testing.T, f *authzFixture, who int) any {
			f.seq++
			return subtaskBody(100 + f.seq)
		}},
		"PUT /api/subtasks/:subtask_id": {want: ownerAdmin, body: func(t *testing.T, f *authzFixture, who int) any { return subtaskBody(1) }},
		"DELETE /api/subtasks/:subtask_id": {want: ownerAdmin, fresh: func(t *testing.T, f *authzFixture, who int) map[string]string {
			f.seq++
			id := apptest.ID(t, apptest.MustError(t, f.srv.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", f.task), f.users[owner].Token, subtaskBody(200+f.seq)), 201, ""), "id")
			return map[string]string{"subtask_id": strconv.FormatInt(id, 10)}
		}},

		// Activity logs: any signed-in user, for themselves.
		// A stranger or another instructor naming a subtask of a lecture
		// they neither learn nor teach is refused as bad input (activitylog's
		// rules), an analyst outright.
		"POST /api/logs/activity": {want: "401 400 201 201 201 400 403 201", body: func(t *testing.T, f *authzFixture, who int) any {
			return logBody(f, who)
		}},
		"POST /api/logs/batch": {want: "401 400 201 201 201 400 403 201", body: func(t *testing.T, f *authzFixture, who int) any {
			return map[string]any{"logs": []any{logBody(f, who)}}
		}},

		// Notifications: each user their own.
		"GET /api/notifications":                        {want: anyUser},
		"POST /api/notifications/:notification_id/read": {want: "401 404 404 404 2xx 404 404 404"},

		// Progress.
		// Only a learner has progress: anyone else (and a student in no
		// lecture) gets 404.
		"GET /api/progress/me": {want: "401 404 2xx 2xx 404 404 404 404"},
		"POST /api/progress/update": {want: "401 403 2xx 2xx 403 403 403 2xx", body: func(t *testing.T, f *authzFixture, who int) any {
			return map[string]any{"subtask_id": f.subtask, "status": "IN_PROGRESS"}
		}},
		"GET /api/progress/users/:user_id/lectures/:lecture_id": {want: "401 403 2xx 403 2xx 403 2xx 2xx"},

		// Sessions.
		// With no active session the seed's shape answers 404 with
		// {"active_session": null, "message"} (no error code: "404:").
		"GET /api/sessions/my-active": {want: "401 404: 2xx 2xx 404: 404: 404: 404:"},
		// The :session_id of this route is the session's code.
		"GET /api/sessions/:session_id": {want: anyUser, always: true, fresh: func(t *testing.T, f *authzFixture, who int) map[string]string {
			return map[string]string{"session_id": f.code}
		}},
		"GET /api/sessions/:session_id/current":      {want: "401 403 2xx 2xx 2xx 403 2xx 2xx"},
		"GET /api/sessions/:session_id/participants": {want: ownerAdmin},
		// On a fresh session each time. A session id alone admits no one
		// (CONTRACT "Admission"): the stranger, not enrolled and without
		// the code, is refused; self and other are enrolled. The stranger
		// tries a session of a lecture of its own (always: the shared
		// session was looked up by code by every caller in the row above,
		// which admits for an hour), so that a join, were it admitted,
		// would not make it a member of the fixture's lecture.
		"POST /api/sessions/:session_id/join": {want: "401 403 201 201 403 403 403 201", body: emptyBody, always: true, fresh: func(t *testing.T, fx *authzFixture, who int) map[string]string {
			lecture, state := fx.lecture, sessionRunning
			if who == stranger {
				lecture, state = fx.newLecture(t), sessionWaiting // a lecture without subtasks cannot start
			}
			return map[string]string{"session_id": strconv.FormatInt(fx.newSessionOf(t, lecture, state), 10)}
		}},
		"POST /api/sessions/:session_id/start":     {want: ownerAdmin, fresh: f(sessionWaiting), body: emptyBody},
		"POST /api/sessions/:session_id/next-step": {want: ownerAdmin, fresh: f(sessionRunning), body: emptyBody},
		"POST /api/sessions/:session_id/pause":     {want: ownerAdmin, fresh: f(sessionRunning), body: emptyBody},
		"POST /api/sessions/:session_id/resume":    {want: ownerAdmin, fresh: f(sessionPaused), body: emptyBody},
		"POST /api/sessions/:session_id/end":       {want: ownerAdmin, fresh: f(sessionRunning), body: emptyBody},

		// Sockets.
		"GET /ws/session/:session_id/student":     {want: "4401 4403 ws ws ws 4403 4403 ws"},
		"GET /ws/session/:session_id/student/":    {want: "4401 4403 ws ws ws 4403 4403 ws"},
		"GET /ws/session/:session_id/instructor":  {want: "4401 4403 4403 4403 ws 4403 4403 ws"},
		"GET /ws/session/:session_id/instructor/": {want: "4401 4403 4403 4403 ws 4403 4403 ws"},
		"GET /ws/dashboard/lecture/:lecture_id":   {want: "4401 4403 4403 4403 ws 4403 ws ws"},
		"GET /ws/dashboard/lecture/:lecture_id/":  {want: "4401 4403 4403 4403 ws 4403 ws ws"},
		"GET /ws/dashboard/help-requests":         {want: "4401 4403 4403 4403 ws ws 4403 ws"},
		"GET /ws/dashboard/help-requests/":        {want: "4401 4403 4403 4403 ws ws 4403 ws"},
		"GET /ws/help/:user_id":                   {want: "4401 4403 ws 4403 4403 4403 4403 4403"},
		"GET /ws/help/:user_id/":                  {want: "4401 4403 ws 4403 4403 4403 4403 4403"},
		"GET /ws/replay/session/:session_id":      {want: "4401 4403 4403 4403 ws 4403 ws ws", query: "?speed=0"},
		"GET /ws/replay/session/:session_id/":     {want: "4401 4403 4403 4403 ws 4403 ws ws", query: "?speed=0"},
	}
}

func emptyBody(*testing.T, *authzFixture, int) any { return map[string]any{} }

func lectureBody(*testing.T, *authzFixture, int) any {
	return map[string]any{"title": "카카오톡 기초", "description": "사진 보내기"}
}

func subtaskBody(order int) map[string]any {
	return map[string]any{"title": "앱 열기", "order_index": order, "target_action": "CLICK", "guide_text": "눌러주세요"}
}

func logBody(f *authzFixture, who int) map[string]any {
	return map[string]any{"user_id": f.users[who].ID, "subtask_id": f.subtask, "event_type": "CLICK",
		"event_data": map[string]any{"x": 1, "y": 2}, "timestamp": time.Now().UTC().Format(time.RFC3339)}
}

// Session states a fresh session can be made in.
const (
	sessionWaiting = iota
	sessionRunning
	sessionPaused
)

func f(state int) func(t *testing.T, fx *authzFixture, who int) map[string]string {
	return func(t *testing.T, fx *authzFixture, who int) map[string]string {
		return map[string]string{"session_id": strconv.FormatInt(fx.newSession(t, state), 10)}
	}
}

// authzFixture is built once: a lecture of the owner with a task and a
// subtask, a running session both students joined, a help request of self's
// answered by the owner, and a notification of the owner's.
type authzFixture struct {
	srv       *apptest.Server
	users     [nCallers]apptest.User
	throwaway apptest.User
	lecture   int64
	task      int64
	subtask   int64
	session   int64
	code      string
	help      int64
	// helpResponse is the owner's answer to help, for self's feedback.
	helpResponse int64
	notification int64
	projector    string
	seq          int
}

func newAuthzFixture(t *testing.T) *authzFixture {
	t.Helper()
	s := apptest.Start(t)
	fx := &authzFixture{srv: s}
	fx.users[admin] = s.Admin(t)
	fx.users[stranger] = s.NewUser(t, "STUDENT", "낯선학생")
	fx.users[self] = s.NewUser(t, "STUDENT", "김학생")
	fx.users[other] = s.NewUser(t, "STUDENT", "이학생")
	fx.users[owner] = s.NewUser(t, "INSTRUCTOR", "박강사")
	fx.users[otherInstr] = s.NewUser(t, "INSTRUCTOR", "최강사")
	a := s.NewUser(t, "STUDENT", "정분석")
	apptest.MustError(t, s.Patch(t, fmt.Sprintf("/api/admin/users/%d", a.ID), fx.users[admin].Token, map[string]any{"role": "ANALYST"}), 200, "")
	fx.users[analyst] = s.Login(t, a.Email, "password-123")
	fx.throwaway = s.NewUser(t, "STUDENT", "임시")

	tok := fx.users[owner].Token
	fx.lecture = fx.newLecture(t)
	fx.task = apptest.ID(t, apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", fx.lecture), tok, map[string]any{"title": "과제", "order_index": 1}), 201, ""), "id")
	fx.subtask = apptest.ID(t, apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", fx.task), tok, subtaskBody(1)), 201, ""), "id")
	apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", fx.task), tok, subtaskBody(2)), 201, "") // so that next-step has a next
	fx.session = fx.newSession(t, sessionRunning)
	for _, who := range []int{self, other} {
		apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", fx.lecture), fx.users[who].Token, map[string]any{}), 201, "")
		apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/sessions/%d/join", fx.session), fx.users[who].Token, map[string]any{}), 201, "")
	}
	fx.help = fx.helpRequest(t)
	answer := apptest.MustError(t, s.Post(t, fmt.Sprintf("/api/help/request/%d/respond", fx.help), tok, map[string]any{"help_content": "설정을 눌러 보세요", "help_type": "TEXT"}), 200, "").JSON(t)
	resp, _ := answer["help_response"].(map[string]any)
	fx.helpResponse = idOfMap(t, resp, "id")
	apptest.Eventually(t, "the owner's notification of the help request", 20*time.Second, func() bool {
		var list struct {
			Notifications []struct {
				ID int64 `json:"id"`
			} `json:"notifications"`
		}
		apptest.MustError(t, s.Get(t, "/api/notifications", tok), 200, "").Decode(t, &list)
		if len(list.Notifications) > 0 {
			fx.notification = list.Notifications[0].ID
		}
		return fx.notification != 0
	})
	fx.projector = s.App.ProjectionNames()[0]
	return fx
}

func (fx *authzFixture) newLecture(t *testing.T) int64 {
	return apptest.ID(t, apptest.MustError(t, fx.srv.Post(t, "/api/lectures", fx.users[owner].Token, map[string]any{"title": "카카오톡 기초"}), 201, ""), "id")
}

func (fx *authzFixture) newSession(t *testing.T, state int) int64 {
	return fx.newSessionOf(t, fx.lecture, state)
}

func (fx *authzFixture) newSessionOf(t *testing.T, lecture int64, state int) int64 {
	tok := fx.users[owner].Token
	created := apptest.MustError(t, fx.srv.Post(t, fmt.Sprintf("/api/lectures/%d/sessions", lecture), tok, nil), 201, "")
	id := apptest.ID(t, created, "session_id")
	if fx.code == "" {
		fx.code, _ = created.JSON(t)["session_code"].(string)
	}
	if state >= sessionRunning {
		apptest.MustError(t, fx.srv.Post(t, fmt.Sprintf("/api/sessions/%d/start", id), tok, map[string]any{}), 200, "")
	}
	if state == sessionPaused {
		apptest.MustError(t, fx.srv.Post(t, fmt.Sprintf("/api/sessions/%d/pause", id), tok, map[string]any{}), 200, "")
	}
	return id
}

// helpRequest is a new help request of self's, escalated to the owner.
func (fx *authzFixture) helpRequest(t *testing.T) int64 {
	id := apptest.ID(t, apptest.MustError(t, fx.srv.Post(t, "/api/help/request", fx.users[self].Token,
		map[string]any{"subtask_id": fx.subtask}), 201, ""), "help_request_id")
	apptest.Eventually(t, "the help request escalated", 20*time.Second, func() bool {
		st, _ := apptest.MustError(t, fx.srv.Get(t, fmt.Sprintf("/api/help/request/%d", id), fx.users[owner].Token), 200, "").JSON(t)["status"].(string)
		return st == "ESCALATED"
	})
	return id
}

func idOfMap(t *testing.T, m map[string]any, key string) int64 {
	t.Helper()
	v, ok := m[key].(float64)
	if !ok || v <= 0 {
		t.Fatalf("no %s in %v", key, m)
	}
	return int64(v)
}

// params are the shared fixture's path parameters.
func (fx *authzFixture) params(who int) map[string]string {
	return map[string]string{
		"lecture_id":      strconv.FormatInt(fx.lecture, 10),
		"task_id":         strconv.FormatInt(fx.task, 10),
		"subtask_id":      strconv.FormatInt(fx.subtask, 10),
		"session_id":      strconv.FormatInt(fx.session, 10),
		"help_request_id": strconv.FormatInt(fx.help, 10),
		"notification_id": strconv.FormatInt(fx.notification, 10),
		"user_id":         strconv.FormatInt(fx.users[self].ID, 10),
		"code":            fx.code,
		"file":            fx.code + ".png",
		"name":            fx.projector,
		"position":        "1",
		"filepath":        "app.css",
		"rest":            "1",
	}
}

// concrete fills a gin route's :params and *wildcards.
func concrete(route string, params map[string]string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
			v, ok := params[p[1:]]
			if !ok {
				panic("no fixture for " + p + " in " + route)
			}
			parts[i] = v
		}
	}
	return strings.Join(parts, "/")
}

// refused reports whether a cell is a refusal (not 2xx and not an open socket).
func refused(cell string) bool {
	return !strings.HasPrefix(cell, "2") && cell != "ws"
}

// fillQuery fills {name} in a query from params.
func fillQuery(q string, params map[string]string) string {
	for k, v := range params {
		q = strings.ReplaceAll(q, "{"+k+"}", v)
	}
	return q
}

func TestAuthorizationMatrix(t *testing.T) {
	fx := newAuthzFixture(t)
	table := authzTable()
	routes := fx.srv.App.RoutesForTest()
	seen := map[string]bool{}
	print := os.Getenv("LOCKSTEP_AUTHZ_PRINT") != ""
	var observed []string
	for _, r := range routes {
		key := r.Method + " " + r.Path
		seen[key] = true
		row, ok := table[key]
		if !ok {
			t.Errorf("%s has no row in the authorization matrix: decide who may call it (authz_matrix_test.go)", key)
			continue
		}
		cells := strings.Fields(row.want)
		if len(cells) != nCallers {
			t.Errorf("%s: %d cells, want %d", key, len(cells), nCallers)
			continue
		}
		got := make([]string, nCallers)
		for who := range nCallers {
			params := fx.params(who)
			// A refusal changes nothing, so only the cells that get through
			// need resources of their own.
			if row.fresh != nil && (row.always || !refused(cells[who])) {
				for k, v := range row.fresh(t, fx, who) {
					params[k] = v
				}
			}
			path := concrete(r.Path, params) + fillQuery(row.query, params)
			token := ""
			if who != anon {
				token = fx.users[who].Token
			}
			var outcome, detail string
			if strings.HasPrefix(r.Path, "/ws/") {
				outcome = socketOutcome(t, fx.srv, path, token)
			} else {
				var body any
				if row.body != nil {
					body = row.body(t, fx, who)
				}
				resp := fx.srv.Do(t, apptest.Request{Method: r.Method, Path: path, Token: token, Body: body})
				outcome, detail = httpOutcome(resp, cells[who])
			}
			got[who] = outcome
			if outcome != cells[who] {
				t.Errorf("%s as %s (%s): got %s, want %s %s", key, callerNames[who], path, outcome, cells[who], detail)
			}
		}
		observed = append(observed, fmt.Sprintf("%-60s %s", key, strings.Join(got, " ")))
	}
	for key := range table {
		if !seen[key] {
			t.Errorf("the matrix has a row for %s, which the engine does not serve: remove it", key)
		}
	}
	if print {
		sort.Strings(observed)
		fmt.Println(strings.Join(observed, "\n"))
	}
}

// httpOutcome is the cell an HTTP answer makes: "2xx", or the status when
// the body carries the contract's error code for it (or the one the
// expected cell names), else the status with what came instead.
func httpOutcome(resp *apptest.Response, want string) (string, string) {
	if resp.Status >= 200 && resp.Status < 300 {
		if want == strconv.Itoa(resp.Status) {
			return want, ""
		}
		return "2xx", ""
	}
	code := resp.ErrorCode()
	status := strconv.Itoa(resp.Status)
	if s, c, ok := strings.Cut(want, ":"); ok && s == status && c == code {
		return want, ""
	}
	if authzCodes[resp.Status] == code {
		return status, ""
	}
	return status + ":" + code, string(resp.Body)
}

// socketOutcome dials path: "ws" when it opens and stays open (or sends a
// message), the close code when it opens only to close, the HTTP status
// when the upgrade is refused.
func socketOutcome(t *testing.T, s *apptest.Server, path, token string) string {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(s.WSURL(path), h)
	if err != nil {
		if resp != nil {
			return strconv.Itoa(resp.StatusCode)
		}
		t.Fatalf("dial %s: %v", path, err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return strconv.Itoa(ce.Code)
	}
	return "ws"
}
