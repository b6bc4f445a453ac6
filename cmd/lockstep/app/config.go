package app

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/lockstep/lockstep/auth"
)

// Config is everything the process is told from outside. Only the CLI
// (package main) reads the environment to fill it.
type Config struct {
	HTTPAddr      string
	PublicURL     string
	DatabaseURL   string
	EventStore    string
	EventStoreURL string
	Bus           string
	KafkaBrokers  []string
	RedisURL      string
	JWTSecret     string
	AccessTTL     time.Duration
	RefreshTTL    time.Duration
	AdminEmail    string
	AdminPassword string
	LogLevel      string
	Env           string

	// Roles this process plays; all on by default.
	API        bool
	Projectors bool
	Workers    bool

	LoginFailuresPerEmail int
	LoginFailuresPerAddr  int
	LoginWindow           time.Duration

	// Help analyzer and stuck detector (wire_help.go; validated there).
	// Env: ANALYZER, LLM_BASE_URL, LLM_MODEL, LLM_API_KEY, LLM_TIMEOUT,
	// STUCK_DETECTOR, STUCK_INTERVAL, STUCK_IDLE_AFTER, STUCK_COOLDOWN.
	Analyzer         string        // "rule" (default when empty) or "llm"
	LLMBaseURL       string        // OpenAI-compatible API base, e.g. https://api.openai.com/v1
	LLMModel         string        // model name
	LLMAPIKey        string        // optional bearer key
	LLMTimeout       time.Duration // one completion's bound (0: 5s); past it the rules answer
	StuckDetectorOff bool          // STUCK_DETECTOR=false turns the detector off
	StuckInterval    time.Duration // 0: 5s
	StuckIdleAfter   time.Duration // 0: 2m
	StuckCooldown    time.Duration // 0: 2m

	// Tool marks a one-shot command (replay, rebuild): the database must exist
	// and be migrated (nothing is created or migrated), no admin is ensured,
	// and a missing JWT secret is not warned about (no token is issued).
	Tool bool

	// ShutdownTimeout bounds the whole shutdown after SIGTERM (0: 30s).
	ShutdownTimeout time.Duration
	// HTTPReadTimeout bounds reading one request, body included (0: 30s);
	// HTTPIdleTimeout closes idle keep-alive connections (0: 120s).
	HTTPReadTimeout time.Duration
	HTTPIdleTimeout time.Duration

	// AnalyticsOff (ANALYTICS=off) leaves the analytics endpoints, the
	// replay socket and xAPI unmounted. With EVENT_STORE=eventstoredb they
	// are off anyway (they read the PostgreSQL events table); production
	// then requires ANALYTICS=off, so that nobody expects them.
	AnalyticsOff bool

	// MetricsAddr is the listen address of /metrics (METRICS_ADDR), apart
	// from the API port; empty: no metrics listener.
	MetricsAddr string

	// RateLimitsOff (RATE_LIMITS=off) turns the per-user limits off; the
	// limits are requests per minute per user on this instance (0: the
	// defaults DefaultRateLogs, DefaultRateHelp, DefaultRateCommands).
	RateLimitsOff      bool
	RateLogsPerMin     int
	RateHelpPerMin     int
	RateCommandsPerMin int

	// PresenceTimeout: a student with no open socket this long during a live
	// session becomes DISCONNECTED (0: SessionPresenceTimeout).
	PresenceTimeout time.Duration
}

// Defaults of the durations above.
const (
	DefaultShutdownTimeout = 30 * time.Second
	DefaultHTTPReadTimeout = 30 * time.Second
	DefaultHTTPIdleTimeout = 120 * time.Second

	// Per-user rate limits, requests per minute per instance.
	DefaultRateLogs     = 600
	DefaultRateHelp     = 60
	DefaultRateCommands = 300

	// MinProductionSecret is the shortest JWT_SECRET production accepts.
	MinProductionSecret = 32
)

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required"))
	}
	switch c.EventStore {
	case "postgres":
	case "eventstoredb":
		if c.EventStoreURL == "" {
			errs = append(errs, errors.New("EVENTSTORE_URL is required with EVENT_STORE=eventstoredb"))
		}
	default:
		errs = append(errs, fmt.Errorf("EVENT_STORE must be postgres or eventstoredb, not %q", c.EventStore))
	}
	switch c.Bus {
	case "postgres", "memory":
	case "kafka":
		if len(c.KafkaBrokers) == 0 {
			errs = append(errs, errors.New("KAFKA_BROKERS is required with BUS=kafka"))
		}
	default:
		errs = append(errs, fmt.Errorf("BUS must be postgres, kafka or memory, not %q", c.Bus))
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < MinProductionSecret {
		errs = append(errs, fmt.Errorf("JWT_SECRET must have at least %d bytes (it has %d): set a longer random key, e.g. `openssl rand -base64 48`", MinProductionSecret, len(c.JWTSecret)))
	}
	switch c.Env {
	case "development":
	case "production":
		if c.JWTSecret == "" {
			errs = append(errs, fmt.Errorf("JWT_SECRET is required in production (LOCKSTEP_ENV=production): set it to a random key of at least %d bytes, e.g. `openssl rand -base64 48`", MinProductionSecret))
		}
		if c.Bus == "memory" && !c.Tool {
			errs = append(errs, errors.New("BUS=memory is refused in production (LOCKSTEP_ENV=production): a 201 for a log would not be durable and instances would not see each other's events; set BUS=postgres (the default) or BUS=kafka"))
		}
		if c.EventStore == "eventstoredb" && !c.AnalyticsOff && !c.Tool {
			errs = append(errs, errors.New("EVENT_STORE=eventstoredb cannot serve analytics in production (LOCKSTEP_ENV=production): the event export, state?at=, xAPI, the replay socket and `lockstep replay` read the PostgreSQL events table and would be off; set ANALYTICS=off to run without them, or use EVENT_STORE=postgres"))
		}
	default:
		errs = append(errs, fmt.Errorf("LOCKSTEP_ENV must be development or production, not %q", c.Env))
	}
	if c.AccessTTL <= 0 || c.RefreshTTL <= 0 {
		errs = append(errs, errors.New("ACCESS_TOKEN_TTL and REFRESH_TOKEN_TTL must be positive"))
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		errs = append(errs, errors.New("ADMIN_EMAIL and ADMIN_PASSWORD go together: set both or neither"))
	} else if c.AdminEmail != "" && !c.Tool {
		if !strings.Contains(c.AdminEmail, "@") {
			errs = append(errs, fmt.Errorf("ADMIN_EMAIL %q is not an email address", c.AdminEmail))
		}
		if n := len([]rune(c.AdminPassword)); n < auth.MinPasswordLen || n > auth.MaxPasswordLen {
			errs = append(errs, fmt.Errorf("ADMIN_PASSWORD must have %d to %d characters (it has %d)", auth.MinPasswordLen, auth.MaxPasswordLen, n))
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("PUBLIC_URL must be an http:// or https:// base URL such as https://class.example.org, not %q", c.PublicURL))
		}
	} else if c.Env == "production" && !c.Tool {
		errs = append(errs, errors.New("PUBLIC_URL is required in production (LOCKSTEP_ENV=production): the base URL phones reach this server at, e.g. https://class.example.org (QR links, xAPI ids)"))
	}
	for name, d := range map[string]time.Duration{"SHUTDOWN_TIMEOUT": c.ShutdownTimeout, "HTTP_READ_TIMEOUT": c.HTTPReadTimeout, "HTTP_IDLE_TIMEOUT": c.HTTPIdleTimeout} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", name))
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("METRICS_ADDR must be HOST:PORT (e.g. 127.0.0.1:9090), or off, not %q", c.MetricsAddr))
		}
	}
	for name, n := range map[string]int{"RATE_LIMIT_LOGS": c.RateLogsPerMin, "RATE_LIMIT_HELP": c.RateHelpPerMin, "RATE_LIMIT_COMMANDS": c.RateCommandsPerMin} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative (0: the default)", name))
		}
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateHelp()...)
	return errors.Join(errs...)
}

// secret returns the JWT key, generating one in development.
func (c Config) secret(log *slog.Logger) []byte {
	if c.JWTSecret != "" {
		return []byte(c.JWTSecret)
	}
	if !c.Tool {
		log.Warn("JWT_SECRET is not set: generated a random one for this process only; tokens will not survive a restart and will not work across instances. Never run like this in production.")
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// fallbackURL is the base of links for requests that are not from this
// machine when PUBLIC_URL is not set (development only): http://HOST:PORT of
// HTTP_ADDR, with localhost for a wildcard host. It never comes from a
// request's Host header.
func (c Config) fallbackURL() string {
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return "http://localhost"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// ParseLevel parses LOG_LEVEL.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, not %q", s)
	}
	return l, nil
}
