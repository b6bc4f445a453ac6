package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"
)

// Limits that keep a run bounded.
const (
	MaxStudents = 20000
	MaxSteps    = 200
)

// Account is a user the simulator acts as.
type Account struct {
	ID       int64
	Email    string
	Password string // "" when the account was made without one (tests)
	Name     string
	Token    string // access token
}

// AccountSource makes accounts of role ("STUDENT" or "INSTRUCTOR") with
// these names. The default registers and logs in over HTTP; benchmarks and
// tests may insert users directly instead (registration hashes a password,
// which is slow on purpose).
type AccountSource func(ctx context.Context, role string, names []string) ([]Account, error)

// Config configures a simulated class.
type Config struct {
	// Server is the base URL of a running Lockstep (default http://localhost:8080).
	Server string
	// Students is the class size (1..MaxStudents).
	Students int
	// Steps is the number of subtasks the instructor goes through (default 5).
	Steps int
	// HelpRate is the chance that a student asks for help at a step (0..1).
	HelpRate float64
	// LogRate is the chance that a student sends a batch of activity logs at a step (0..1).
	LogRate float64
	// Speed divides every human delay (reading, tapping, the instructor's
	// patience); 0 means no delays at all.
	Speed float64
	// Timeout bounds the whole run (default 10 minutes).
	Timeout time.Duration
	// StepTimeout is how long every student has to receive a step (default 30 s).
	StepTimeout time.Duration
	// Concurrency bounds the requests of the set-up phase (default 32).
	Concurrency int
	// Seed seeds the students' behaviour (0: random).
	Seed int64
	// Out receives the live progress lines (nil: discarded).
	Out io.Writer
	// Terminal says Out is a terminal: the set-up's progress is then a bar
	// redrawn in place with carriage returns; otherwise it is printed as
	// plain lines every 2 s (a log file or a pipe gets no \r).
	Terminal bool
	// Accounts makes the users (nil: register over HTTP).
	Accounts AccountSource
	// HTTPClient is used for every request (nil: a pooled client).
	HTTPClient *http.Client
	// NoSockets makes Setup join the students without opening their
	// sockets (for measuring the sockets from another process).
	NoSockets bool
	// Retries is how many times a request that got no answer, or a 502,
	// 503, 504 or a Retry-After, is sent again with the same
	// Idempotency-Key (0: never; the answer counts as an error).
	Retries int
	// ReconnectFor is how long a student whose socket closed keeps trying
	// to reopen it with ?after= (0: a few quick attempts).
	ReconnectFor time.Duration
	// Loopback, on Linux (which routes all of 127.0.0.0/8 to the loopback
	// interface), opens each student's socket from an address of its own,
	// 127.1.x.y, as phones come from their own addresses: per-address
	// limits and the kernel's per-address port tables then see N clients,
	// not one. The benchmarks set it; the server must listen on 127.0.0.1.
	Loopback bool
	// StudentServer, when set, is the base URL the students use (their
	// look-up, join and sockets), Server staying the instructor's: a class
	// spread over two instances, the messages crossing the bus between them.
	StudentServer string
}

func (c *Config) setDefaults() {
	if c.Server == "" {
		c.Server = "http://localhost:8080"
	}
	if c.Steps == 0 {
		c.Steps = 5
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.StepTimeout <= 0 {
		c.StepTimeout = 30 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Students < 1 || c.Students > MaxStudents {
		errs = append(errs, fmt.Errorf("students must be 1..%d (got %d)", MaxStudents, c.Students))
	}
	if c.Steps < 1 || c.Steps > MaxSteps {
		errs = append(errs, fmt.Errorf("steps must be 1..%d (got %d)", MaxSteps, c.Steps))
	}
	if c.HelpRate < 0 || c.HelpRate > 1 {
		errs = append(errs, fmt.Errorf("help rate must be between 0 and 1 (got %g)", c.HelpRate))
	}
	if c.LogRate < 0 || c.LogRate > 1 {
		errs = append(errs, fmt.Errorf("log rate must be between 0 and 1 (got %g)", c.LogRate))
	}
	if c.Speed < 0 {
		errs = append(errs, fmt.Errorf("speed must not be negative (got %g)", c.Speed))
	}
	return errors.Join(errs...)
}

// Subtask is a subtask of the simulated lecture.
type Subtask struct {
	ID     int64
	TaskID int64
	Title  string
}

// Kinds of step a class goes through, and the student message each causes.
const (
	KindStart = "start" // POST …/start → session_started
	KindNext  = "next"  // POST …/next-step → step_changed
	KindEnd   = "end"   // POST …/end → session_ended
)

var kindMessage = map[string]string{KindStart: "session_started", KindNext: "step_changed", KindEnd: "session_ended"}

// step is one instructor command every student must see exactly once.
type step struct {
	index     int
	kind      string
	subtaskID int64 // 0 for KindEnd
	sentAt    time.Time
	remaining atomic.Int64
	done      chan struct{}
}

// Class is a running simulated class: an instructor and students with open
// student sockets on one session.
type Class struct {
	cfg  Config
	api  *api
	sapi *api // the students' (Config.StudentServer; else api)
	t0   time.Time
	runs string // unique per run, in emails and titles

	Instructor  Account
	Students    []*Student
	LectureID   int64
	SessionID   int64
	SessionCode string
	Subtasks    []Subtask // in lecture order

	teacher *instructorSocket

	// refusedAfterJoin counts student sockets refused (4403) after the
	// join had answered: the participants read model was behind.
	refusedAfterJoin atomic.Int64
	// registered counts the accounts registered so far (the progress bar).
	registered atomic.Int64

	mu      sync.RWMutex
	steps   []*step
	closing atomic.Bool
	readers sync.WaitGroup
}

// Setup makes the accounts, the lecture and the session, joins every student
// and opens every socket (the instructor's first). Close the class when done.
func Setup(ctx context.Context, cfg Config) (*Class, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Class{cfg: cfg, api: newAPI(cfg.Server, cfg.HTTPClient, cfg.Retries), t0: time.Now(), runs: uuid.NewString()[:8]}
	if cfg.StudentServer != "" {
		c.sapi = newAPI(cfg.StudentServer, cfg.HTTPClient, cfg.Retries)
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	if err := c.accounts(ctx); err != nil {
		return nil, err
	}
	if err := c.lecture(ctx); err != nil {
		return nil, err
	}
	if err := c.open(ctx); err != nil {
		return nil, err
	}
	if err := c.join(ctx); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

func (c *Class) printf(format string, args ...any) { fmt.Fprintf(c.cfg.Out, format, args...) }

func (c *Class) accounts(ctx context.Context) error {
	began := time.Now()
	source := c.cfg.Accounts
	stop := func() {}
	heading := fmt.Sprintf("  making 1 instructor and %s …", plural(c.cfg.Students, "student", "students"))
	if source == nil {
		source = c.register
		heading = fmt.Sprintf("  registering 1 instructor and %s …", plural(c.cfg.Students, "student", "students"))
	}
	if c.cfg.Accounts == nil && c.cfg.Terminal {
		// The bar says it while it runs; the heading follows with its time.
		total := int64(c.cfg.Students + 1)
		stop = c.progress(func() string {
			return progressBar("registering", c.registered.Load(), total, "accounts")
		})
	} else {
		c.printf("%s", heading)
		heading = ""
	}
	defer stop()
	teacher, err := source(ctx, "INSTRUCTOR", []string{"박강사"})
	if err != nil {
		return fmt.Errorf("instructor account: %w", err)
	}
	c.Instructor = teacher[0]
	names := make([]string, c.cfg.Students)
	for i := range names {
		names[i] = studentName(i)
	}
	accts, err := source(ctx, "STUDENT", names)
	stop()
	if err != nil {
		return fmt.Errorf("student accounts: %w", err)
	}
	c.Students = make([]*Student, len(accts))
	for i, a := range accts {
		c.Students[i] = &Student{Account: a, class: c, index: i}
		if c.cfg.Loopback {
			c.Students[i].local = nextLoopback()
		}
	}
	c.printf("%s done in %s\n", heading, round(time.Since(began)))
	return nil
}

// register is the default AccountSource: register, then log in.
func (c *Class) register(ctx context.Context, role string, names []string) ([]Account, error) {
	out := make([]Account, len(names))
	g, ctx := errgroup.WithContext(ctx)
	// Registration and login hash passwords on purpose: a few at a time.
	g.SetLimit(min(8, c.cfg.Concurrency))
	for i, name := range names {
		g.Go(func() error {
			email := fmt.Sprintf("sim-%s-%s-%d@lockstep.example", c.runs, map[string]string{"STUDENT": "s", "INSTRUCTOR": "t"}[role], i+1)
			const password = "simulated-pass-1"
			body := map[string]any{"email": email, "password": password, "name": name, "role": role,
				"age": 60 + i%25, "phone": fmt.Sprintf("010%08d", i), "digital_level": "BEGINNER"}
			if err := c.api.call(ctx, http.MethodPost, "/api/auth/register", "", body, nil); err != nil {
				return err
			}
			var login struct {
				AccessToken string `json:"access_token"`
				User        struct {
					ID int64 `json:"id"`
				} `json:"user"`
			}
			if err := c.api.call(ctx, http.MethodPost, "/api/auth/login", "", map[string]any{"email": email, "password": password}, &login); err != nil {
				return err
			}
			out[i] = Account{ID: login.User.ID, Email: email, Password: password, Name: name, Token: login.AccessToken}
			c.registered.Add(1)
			return nil
		})
	}
	return out, g.Wait()
}

func (c *Class) lecture(ctx context.Context) error {
	tok := c.Instructor.Token
	var lec struct {
		ID int64 `json:"id"`
	}
	title := "카카오톡 기초 (시뮬레이션 " + c.runs + ")"
	if err := c.api.call(ctx, http.MethodPost, "/api/lectures", tok, map[string]any{
		"title": title, "description": "카카오톡으로 메시지와 사진을 보내는 법을 배웁니다",
	}, &lec); err != nil {
		return fmt.Errorf("create lecture: %w", err)
	}
	c.LectureID = lec.ID
	var taskID int64
	for i := range c.cfg.Steps {
		if i%stepsPerTask == 0 {
			var task struct {
				ID int64 `json:"id"`
			}
			if err := c.api.call(ctx, http.MethodPost, fmt.Sprintf("/api/lectures/%d/tasks", lec.ID), tok, map[string]any{
				"title": taskTitle(i / stepsPerTask), "order_index": i/stepsPerTask + 1,
			}, &task); err != nil {
				return fmt.Errorf("create task: %w", err)
			}
			taskID = task.ID
		}
		s := stepContent(i)
		var sub struct {
			ID int64 `json:"id"`
		}
		if err := c.api.call(ctx, http.MethodPost, fmt.Sprintf("/api/tasks/%d/subtasks", taskID), tok, map[string]any{
			"title": s.title, "description": s.guide, "order_index": i%stepsPerTask + 1, "target_action": s.action,
			"guide_text": s.guide, "voice_guide_text": s.guide,
		}, &sub); err != nil {
			return fmt.Errorf("create subtask: %w", err)
		}
		c.Subtasks = append(c.Subtasks, Subtask{ID: sub.ID, TaskID: taskID, Title: s.title})
	}
	c.printf("  lecture %d %q: %s in %s\n", c.LectureID, title, plural(c.cfg.Steps, "step", "steps"),
		plural((c.cfg.Steps+stepsPerTask-1)/stepsPerTask, "task", "tasks"))
	return nil
}

func (c *Class) open(ctx context.Context) error {
	var s struct {
		SessionID   int64  `json:"session_id"`
		SessionCode string `json:"session_code"`
		QRCodeURL   string `json:"qr_code_url"`
	}
	if err := c.api.call(ctx, http.MethodPost, fmt.Sprintf("/api/lectures/%d/sessions", c.LectureID), c.Instructor.Token, map[string]any{
		"title": time.Now().Format("2006-01-02 15:04") + " 시뮬레이션반", "scheduled_at": time.Now().UTC().Format(time.RFC3339),
	}, &s); err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	c.SessionID, c.SessionCode = s.SessionID, s.SessionCode
	c.printf("  session %d opened: code %s, QR %s\n", s.SessionID, s.SessionCode, s.QRCodeURL)
	t, err := c.dialInstructor(ctx)
	if err != nil {
		return err
	}
	c.teacher = t
	return nil
}

// join: every student looks the session up by its code, joins and opens
// the student socket, and gets session_state.
func (c *Class) join(ctx context.Context) error {
	began := time.Now()
	var joined, connected atomic.Int64
	var stop func()
	if c.cfg.Terminal {
		total := int64(len(c.Students))
		stop = c.progress(func() string {
			return progressBar("joining", joined.Load(), total, fmt.Sprintf("joined, %d connected", connected.Load()))
		})
	} else {
		stop = c.ticker(func() {
			c.printf("    … %d/%d joined, %d connected\n", joined.Load(), len(c.Students), connected.Load())
		})
	}
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.cfg.Concurrency)
	for _, s := range c.Students {
		g.Go(func() error {
			var found struct {
				SessionID int64 `json:"session_id"`
			}
			if err := c.studentAPI().call(gctx, http.MethodGet, "/api/sessions/"+c.SessionCode, s.Token, nil, &found); err != nil {
				return fmt.Errorf("look the session up by code: %w", err)
			}
			if found.SessionID != c.SessionID {
				return fmt.Errorf("code %s names session %d, not %d", c.SessionCode, found.SessionID, c.SessionID)
			}
			if err := c.studentAPI().call(gctx, http.MethodPost, fmt.Sprintf("/api/sessions/%d/join", c.SessionID), s.Token, map[string]any{"user_id": s.ID}, nil); err != nil {
				return fmt.Errorf("join: %w", err)
			}
			joined.Add(1)
			if c.cfg.NoSockets {
				return nil
			}
			if err := s.connect(gctx, nil); err != nil {
				return err
			}
			connected.Add(1)
			return nil
		})
	}
	err := g.Wait()
	stop()
	if err != nil {
		return err
	}
	c.printf("  %d/%d students joined, %s connected, in %s\n", joined.Load(), len(c.Students),
		plural(int(connected.Load()), "socket", "sockets"), round(time.Since(began)))
	if n := c.refusedAfterJoin.Load(); n > 0 {
		c.printf("  ! %d student sockets were refused (4403, not a participant yet) after their join had answered, and retried\n", n)
	}
	return nil
}

// ticker calls f every 2 seconds until stop is called; stop returns once f
// no longer runs (so what is printed next is not interleaved with it).
func (c *Class) ticker(f func()) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { once.Do(func() { close(done); <-finished }) }
}

// progress redraws line() in place every 250 ms with a carriage return (Out
// is a terminal; the cursor is at the start of a line); stop erases it,
// leaving the cursor at the start of that line.
func (c *Class) progress(line func() string) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			c.printf("\r\x1b[K%s", line())
			select {
			case <-done:
				c.printf("\r\x1b[K")
				return
			case <-t.C:
			}
		}
	}()
	return func() { once.Do(func() { close(done); <-finished }) }
}

// progressBar is one frame of a progress bar: "    joining [█████░░░░░] 12/30 joined".
func progressBar(label string, done, total int64, what string) string {
	const width = 24
	filled := 0
	if total > 0 {
		filled = int(min(max(done, 0), total) * width / total)
	}
	return fmt.Sprintf("    %s [%s%s] %d/%d %s", label, strings.Repeat("█", filled), strings.Repeat("░", width-filled), done, total, what)
}

// StepResult is what one instructor command's fan-out measured.
type StepResult struct {
	Index     int
	Kind      string // KindStart, KindNext or KindEnd
	SubtaskID int64
	Title     string
	Expected  int // students who should get it
	Received  int // students who got it in time
	// Latencies are, for each student who got it, the time from the HTTP
	// call being sent to the student's message arriving (sorted).
	Latencies []time.Duration
	// Answered is how long the HTTP call took.
	Answered time.Duration
}

// Last is the time to the last student's message (0 when none arrived).
func (r StepResult) Last() time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[len(r.Latencies)-1]
}

// Start starts the session at the first subtask and waits until every
// student got session_started (or StepTimeout passed).
func (c *Class) Start(ctx context.Context) (StepResult, error) {
	first := c.Subtasks[0]
	return c.command(ctx, KindStart, first, fmt.Sprintf("/api/sessions/%d/start", c.SessionID), map[string]any{
		"first_subtask_id": first.ID, "message": "수업을 시작하겠습니다. 첫 번째 단계를 함께 진행해봅시다.",
	})
}

// Next moves the class to subtask i of Subtasks (any of them, also one
// shown before) and waits until every student got step_changed.
func (c *Class) Next(ctx context.Context, i int) (StepResult, error) {
	s := c.Subtasks[i]
	return c.command(ctx, KindNext, s, fmt.Sprintf("/api/sessions/%d/next-step", c.SessionID), map[string]any{
		"next_subtask_id": s.ID, "message": instructorMessages[c.sentSteps()%len(instructorMessages)],
	})
}

// End ends the session and waits until every student got session_ended.
func (c *Class) End(ctx context.Context) (StepResult, error) {
	return c.command(ctx, KindEnd, Subtask{Title: "수업 종료"}, fmt.Sprintf("/api/sessions/%d/end", c.SessionID), map[string]any{
		"message": "수고하셨습니다! 복습 모드에서 다시 보실 수 있습니다.",
	})
}

func (c *Class) command(ctx context.Context, kind string, s Subtask, path string, body any) (StepResult, error) {
	st := &step{kind: kind, subtaskID: s.ID, done: make(chan struct{})}
	st.remaining.Store(int64(len(c.Students)))
	c.mu.Lock()
	st.index = len(c.steps)
	c.steps = append(c.steps, st)
	st.sentAt = time.Now()
	c.mu.Unlock()
	err := c.api.call(ctx, http.MethodPost, path, c.Instructor.Token, body, nil)
	answered := time.Since(st.sentAt)
	if err != nil {
		c.mu.Lock()
		c.steps = c.steps[:st.index] // nothing was sent: no student expects it
		c.mu.Unlock()
		return StepResult{}, fmt.Errorf("instructor: %w", err)
	}
	timer := time.NewTimer(c.cfg.StepTimeout)
	defer timer.Stop()
	select {
	case <-st.done:
	case <-timer.C:
	case <-ctx.Done():
		return StepResult{}, ctx.Err()
	}
	res := StepResult{Index: st.index, Kind: kind, SubtaskID: s.ID, Title: s.Title, Expected: len(c.Students), Answered: answered}
	res.Latencies = make([]time.Duration, 0, len(c.Students))
	for _, stu := range c.Students {
		if at, ok := stu.arrival(st.index); ok {
			res.Latencies = append(res.Latencies, at.Sub(st.sentAt))
		}
	}
	slices.Sort(res.Latencies)
	res.Received = len(res.Latencies)
	return res, nil
}

func (c *Class) stepAt(i int) *step {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if i < len(c.steps) {
		return c.steps[i]
	}
	return nil
}

func (c *Class) sentSteps() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.steps)
}

// Close closes every socket.
func (c *Class) Close() {
	c.closing.Store(true)
	for _, s := range c.Students {
		s.close()
	}
	if c.teacher != nil {
		c.teacher.close()
	}
	c.readers.Wait()
}

// dialer keeps each client small: the messages are a few hundred bytes.
var dialer = websocket.Dialer{HandshakeTimeout: 20 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 256, Proxy: nil}

// frame is a received socket message, decoded as far as the simulator needs.
type frame struct {
	Type     string `json:"type"`
	Position uint64 `json:"position"`
	Data     struct {
		CurrentSubtask *struct {
			ID int64 `json:"id"`
		} `json:"current_subtask"`
		Status string `json:"status"`
	} `json:"data"`
}

// studentAPI is the students' server (Config.StudentServer), else the class's.
func (c *Class) studentAPI() *api {
	if c.sapi != nil {
		return c.sapi
	}
	return c.api
}

func (c *Class) socketURL(kind string, token string, after *uint64) string {
	a := c.api
	if kind == "student" {
		a = c.studentAPI()
	}
	u := a.wsURL(fmt.Sprintf("/ws/session/%d/%s/?token=%s", c.SessionID, kind, token))
	if after != nil {
		u += "&after=" + strconv.FormatUint(*after, 10)
	}
	return u
}

// dial opens a socket, retrying a refused handshake a few times (a server
// under a burst of connections may turn some away).
func dial(ctx context.Context, url string) (*websocket.Conn, error) {
	return dialFrom(ctx, url, nil)
}

// loopbackSeq numbers the students' loopback addresses across classes.
var loopbackSeq atomic.Int64

// nextLoopback is the next address of 127.1.0.1–127.1.249.250.
func nextLoopback() *net.TCPAddr {
	i := loopbackSeq.Add(1) - 1
	i %= 250 * 250
	return &net.TCPAddr{IP: net.IPv4(127, 1, byte(i/250), byte(i%250+1))}
}

// dialFrom is dial from a local address (nil: any).
func dialFrom(ctx context.Context, url string, local *net.TCPAddr) (*websocket.Conn, error) {
	d := dialer
	if local != nil {
		d.NetDialContext = (&net.Dialer{LocalAddr: local, Timeout: d.HandshakeTimeout}).DialContext
	}
	var err error
	for attempt := range 5 {
		var conn *websocket.Conn
		var resp *http.Response
		conn, resp, err = d.DialContext(ctx, url, nil)
		if err == nil {
			return conn, nil
		}
		if resp != nil && resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
		}
	}
	return nil, err
}

// Student is one simulated student with an open student socket.
type Student struct {
	Account
	class *Class
	index int
	local *net.TCPAddr // Config.Loopback: the socket's own source address

	mu         sync.Mutex
	conn       *websocket.Conn
	lastPos    uint64
	arrivals   []time.Time // arrival of step i's message, in step order
	problems   []string
	duplicates int
	closed     bool // closed by the simulator (the class is over)

	// A socket the server closed mid-class: lost counts them, reconnected
	// and reconnectFailed count how reopening it with ?after= went, down
	// says the student has no socket now (closed and not reopened, or still
	// trying), lastErr is the latest failure.
	lost, reconnected, reconnectFailed int
	down                               bool
	lostErr, reconnectErr              string
}

func (s *Student) problem(format string, args ...any) {
	if len(s.problems) < 20 {
		s.problems = append(s.problems, fmt.Sprintf(format, args...))
	}
}

func (s *Student) arrival(i int) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < len(s.arrivals) {
		return s.arrivals[i], true
	}
	return time.Time{}, false
}

// connect opens the student socket; with after == nil it waits for the
// session_state snapshot, which must come first. A socket refused as "not a
// participant" right after the join answered (the read model lagging behind
// the join under load) is retried for a while, and counted.
func (s *Student) connect(ctx context.Context, after *uint64) error {
	var conn *websocket.Conn
	for attempt := 0; ; attempt++ {
		var err error
		conn, err = dialFrom(ctx, s.class.socketURL("student", s.Token, after), s.local)
		if err != nil {
			return fmt.Errorf("student %d socket: %w", s.ID, err)
		}
		if after != nil {
			break
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		var f frame
		err = conn.ReadJSON(&f)
		if err == nil && f.Type != "session_state" {
			conn.Close()
			return fmt.Errorf("student %d: first message is %s, not session_state", s.ID, f.Type)
		}
		if err == nil {
			_ = conn.SetReadDeadline(time.Time{})
			s.mu.Lock()
			s.lastPos = f.Position
			s.mu.Unlock()
			break
		}
		conn.Close()
		if !websocket.IsCloseError(err, 4403) || attempt >= 20 {
			return fmt.Errorf("student %d: no session_state: %w", s.ID, err)
		}
		s.class.refusedAfterJoin.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(100*(attempt+1)) * time.Millisecond):
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return nil
	}
	s.conn = conn
	s.mu.Unlock()
	s.class.readers.Add(1)
	go s.read(conn)
	return nil
}

func (s *Student) read(conn *websocket.Conn) {
	defer s.class.readers.Done()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			s.socketLost(conn, err)
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			s.mu.Lock()
			s.problem("not JSON: %.80s", data)
			s.mu.Unlock()
			continue
		}
		s.handle(f, time.Now())
	}
}

func (s *Student) handle(f frame, at time.Time) {
	if f.Type != "session_started" && f.Type != "step_changed" && f.Type != "session_ended" {
		return // session_paused, session_resumed: not steps
	}
	s.mu.Lock()
	if f.Position <= s.lastPos {
		s.duplicates++
		s.problem("%s at position %d after position %d (duplicate or out of order)", f.Type, f.Position, s.lastPos)
		s.mu.Unlock()
		return
	}
	s.lastPos = f.Position
	i := len(s.arrivals)
	st := s.class.stepAt(i)
	var got int64
	if f.Data.CurrentSubtask != nil {
		got = f.Data.CurrentSubtask.ID
	}
	switch {
	case st == nil:
		s.problem("unexpected %s (subtask %d) at position %d: only %d steps were sent", f.Type, got, f.Position, i)
		s.mu.Unlock()
		return
	case kindMessage[st.kind] != f.Type || (st.kind != KindEnd && got != st.subtaskID):
		s.problem("step %d: got %s for subtask %d, want %s for subtask %d (a step missed or out of order)",
			i+1, f.Type, got, kindMessage[st.kind], st.subtaskID)
		s.mu.Unlock()
		return
	}
	s.arrivals = append(s.arrivals, at)
	s.mu.Unlock()
	if st.remaining.Add(-1) == 0 {
		close(st.done)
	}
}

// socketLost handles a socket that ended: unless the class is closing, the
// student reconnects with ?after= and gets what it missed, as a phone would.
// Whether it could is counted (Report.SocketsClosed, Reconnected,
// ReconnectFailed); only a failure is a problem, as a socket that reopened
// and caught up lost nothing (the delivery checks say whether it did).
func (s *Student) socketLost(conn *websocket.Conn, err error) {
	s.mu.Lock()
	if s.closed || s.class.closing.Load() || s.conn != conn {
		s.mu.Unlock()
		return
	}
	s.lost++
	s.down = true
	s.lostErr = closeReason(err)
	after := s.lastPos
	s.mu.Unlock()
	conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), max(30*time.Second, s.class.cfg.ReconnectFor))
	defer cancel()
	until := time.Now().Add(s.class.cfg.ReconnectFor)
	for {
		err = s.connect(ctx, &after)
		if err == nil || time.Now().After(until) || s.class.closing.Load() {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.reconnectFailed++
		s.reconnectErr = err.Error()
		s.problem("socket closed (%s) and reconnecting with ?after=%d failed: %v", s.lostErr, after, err)
		return
	}
	s.reconnected++
	s.down = false
}

// closeReason says how a socket ended, briefly ("1001 going away: server
// shutting down", "unexpected EOF").
func closeReason(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Text != "" {
			return fmt.Sprintf("close %d: %s", ce.Code, ce.Text)
		}
		return fmt.Sprintf("close %d", ce.Code)
	}
	return err.Error()
}

func (s *Student) close() {
	s.mu.Lock()
	s.closed = true
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		conn.Close()
	}
}

// instructorSocket follows the instructor socket: it counts the messages by
// type and checks that positions never go down. When it closes mid-class
// and Config.ReconnectFor is set, it reopens with ?after= (the last
// position it saw), like a console would.
type instructorSocket struct {
	mu          sync.Mutex
	conn        *websocket.Conn
	counts      map[string]int
	lastPos     uint64
	reconnected int
	problems    []string
}

func (c *Class) dialInstructor(ctx context.Context) (*instructorSocket, error) {
	conn, err := dial(ctx, c.socketURL("instructor", c.Instructor.Token, nil))
	if err != nil {
		return nil, fmt.Errorf("instructor socket: %w", err)
	}
	t := &instructorSocket{conn: conn, counts: map[string]int{}}
	c.readers.Add(1)
	go func() {
		defer c.readers.Done()
		for conn != nil {
			t.read(c, conn)
			conn = t.reopen(c)
		}
	}()
	return t, nil
}

// read counts conn's messages until it ends.
func (t *instructorSocket) read(c *Class, conn *websocket.Conn) {
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			if !c.closing.Load() {
				t.mu.Lock()
				t.problems = append(t.problems, fmt.Sprintf("instructor socket closed: %v", err))
				t.mu.Unlock()
			}
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			continue
		}
		t.mu.Lock()
		t.counts[f.Type]++
		if f.Position < t.lastPos && len(t.problems) < 10 {
			t.problems = append(t.problems, fmt.Sprintf("instructor socket: %s at position %d after %d", f.Type, f.Position, t.lastPos))
		}
		t.lastPos = max(t.lastPos, f.Position)
		t.mu.Unlock()
	}
}

// reopen reconnects with ?after= for up to Config.ReconnectFor after the
// socket closed mid-class; nil when it should not or could not (the close
// then stays a problem).
func (t *instructorSocket) reopen(c *Class) *websocket.Conn {
	if c.closing.Load() || c.cfg.ReconnectFor <= 0 {
		return nil
	}
	t.mu.Lock()
	after := t.lastPos
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), max(30*time.Second, c.cfg.ReconnectFor))
	defer cancel()
	until := time.Now().Add(c.cfg.ReconnectFor)
	for !c.closing.Load() {
		conn, err := dial(ctx, c.socketURL("instructor", c.Instructor.Token, &after))
		if err == nil {
			t.mu.Lock()
			defer t.mu.Unlock()
			// The close was recovered from: the socket caught up from after.
			if n := len(t.problems); n > 0 && strings.HasPrefix(t.problems[n-1], "instructor socket closed") {
				t.problems = t.problems[:n-1]
			}
			t.reconnected++
			t.conn = conn
			return conn
		}
		if time.Now().After(until) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

func (t *instructorSocket) count(typ string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[typ]
}

func (t *instructorSocket) close() {
	t.mu.Lock()
	conn := t.conn
	t.mu.Unlock()
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	conn.Close()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
