package app

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"
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

	// PresenceTimeout: a student with no open socket this long during a live
	// session becomes DISCONNECTED (0: SessionPresenceTimeout).
	PresenceTimeout time.Duration
}

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
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("JWT_SECRET must have at least 32 characters"))
	}
	switch c.Env {
	case "development":
	case "production":
		if c.JWTSecret == "" {
			errs = append(errs, errors.New("JWT_SECRET is required in production (LOCKSTEP_ENV=production)"))
		}
	default:
		errs = append(errs, fmt.Errorf("LOCKSTEP_ENV must be development or production, not %q", c.Env))
	}
	if c.AccessTTL <= 0 || c.RefreshTTL <= 0 {
		errs = append(errs, errors.New("ACCESS_TOKEN_TTL and REFRESH_TOKEN_TTL must be positive"))
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		errs = append(errs, errors.New("ADMIN_EMAIL and ADMIN_PASSWORD go together"))
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
	log.Warn("JWT_SECRET is not set: generated a random one for this process only; tokens will not survive a restart and will not work across instances. Never run like this in production.")
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// ParseLevel parses LOG_LEVEL.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, not %q", s)
	}
	return l, nil
}
