package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
)

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/lockstep?sslmode=disable"

// databaseFlags are taken by every command that opens the database.
func databaseFlags(usage string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "database-url", Value: defaultDatabaseURL, Usage: usage, Sources: cli.EnvVars("DATABASE_URL")},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error (serve logs one access line per request at info)", Sources: cli.EnvVars("LOG_LEVEL")},
	}
}

func eventStoreFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "event-store", Value: "postgres", Usage: "postgres or eventstoredb", Sources: cli.EnvVars("EVENT_STORE")},
		&cli.StringFlag{Name: "eventstore-url", Usage: "EventStoreDB connection string for --event-store=eventstoredb (esdb://HOST:2113?tls=false)", Sources: cli.EnvVars("EVENTSTORE_URL")},
	}
}

func serveFlags() []cli.Flag {
	flags := databaseFlags("PostgreSQL: read models, users, the default event store (the database is created and migrated if needed)")
	flags = append(flags, eventStoreFlags()...)
	return append(flags,
		&cli.StringFlag{Name: "http-addr", Value: ":8080", Usage: "listen address (HOST:PORT; an empty host listens on every interface)", Sources: cli.EnvVars("HTTP_ADDR")},
		&cli.StringFlag{Name: "public-url", Usage: "base URL phones and browsers reach this server at, e.g. https://class.example.org: QR join links, qr_code_url and xAPI ids use it. Required in production. Unset in development: requests from this machine get their own Host, any other the http-addr URL", Sources: cli.EnvVars("PUBLIC_URL")},
		&cli.StringFlag{Name: "bus", Value: "postgres", Usage: "message bus: postgres, kafka or memory (memory: one process only)", Sources: cli.EnvVars("BUS")},
		&cli.StringFlag{Name: "kafka-brokers", Usage: "comma-separated Kafka brokers (HOST:PORT) for --bus=kafka", Sources: cli.EnvVars("KAFKA_BROKERS")},
		&cli.StringFlag{Name: "redis-url", Usage: "optional Redis read cache of lecture documents (redis://HOST:6379/0)", Sources: cli.EnvVars("REDIS_URL")},
		&cli.StringFlag{Name: "jwt-secret", Usage: "HMAC key of the tokens, at least 32 characters; required with --env=production (in development a random one is made per start, with a warning)", Sources: cli.EnvVars("JWT_SECRET")},
		&cli.DurationFlag{Name: "access-token-ttl", Value: 15 * time.Minute, Usage: "lifetime of an access token", Sources: cli.EnvVars("ACCESS_TOKEN_TTL")},
		&cli.DurationFlag{Name: "refresh-token-ttl", Value: 720 * time.Hour, Usage: "lifetime of a refresh token", Sources: cli.EnvVars("REFRESH_TOKEN_TTL")},
		&cli.StringFlag{Name: "admin-email", Usage: "with --admin-password: make sure this ADMIN account exists at start", Sources: cli.EnvVars("ADMIN_EMAIL")},
		&cli.StringFlag{Name: "admin-password", Usage: "password of --admin-email (8 to 128 characters; used only when the account is created)", Sources: cli.EnvVars("ADMIN_PASSWORD")},
		&cli.StringFlag{Name: "env", Value: "development", Usage: "development or production (production requires --jwt-secret and --public-url)", Sources: cli.EnvVars("LOCKSTEP_ENV")},
		&cli.BoolFlag{Name: "api", Value: true, Usage: "serve the HTTP API and WebSockets (--api=false: only /healthz and /readyz; /metrics is on --metrics-addr)", Sources: cli.EnvVars("ROLE_API")},
		&cli.BoolFlag{Name: "projectors", Value: true, Usage: "run the projectors", Sources: cli.EnvVars("ROLE_PROJECTORS")},
		&cli.BoolFlag{Name: "workers", Value: true, Usage: "run the log writer, help analyzer, stuck detector and housekeeping", Sources: cli.EnvVars("ROLE_WORKERS")},
		&cli.StringFlag{Name: "analyzer", Value: "rule", Usage: "help analyzer: rule or llm", Sources: cli.EnvVars("ANALYZER")},
		&cli.StringFlag{Name: "llm-base-url", Usage: "OpenAI-compatible API base for --analyzer=llm, e.g. http://127.0.0.1:11434/v1", Sources: cli.EnvVars("LLM_BASE_URL")},
		&cli.StringFlag{Name: "llm-model", Usage: "model name for --analyzer=llm", Sources: cli.EnvVars("LLM_MODEL")},
		&cli.StringFlag{Name: "llm-api-key", Usage: "bearer key for --llm-base-url (optional)", Sources: cli.EnvVars("LLM_API_KEY")},
		&cli.DurationFlag{Name: "llm-timeout", Value: 5 * time.Second, Usage: "bound on one LLM answer; past it the rules answer", Sources: cli.EnvVars("LLM_TIMEOUT")},
		&cli.BoolFlag{Name: "stuck-detector", Value: true, Usage: "raise AUTO help requests for stuck students", Sources: cli.EnvVars("STUCK_DETECTOR")},
		&cli.DurationFlag{Name: "stuck-interval", Value: 5 * time.Second, Usage: "how often the stuck detector looks", Sources: cli.EnvVars("STUCK_INTERVAL")},
		&cli.DurationFlag{Name: "stuck-idle-after", Value: 2 * time.Minute, Usage: "a student idle this long on a step counts as stuck", Sources: cli.EnvVars("STUCK_IDLE_AFTER")},
		&cli.DurationFlag{Name: "stuck-cooldown", Value: 2 * time.Minute, Usage: "at most one AUTO help request per student per this long", Sources: cli.EnvVars("STUCK_COOLDOWN")},
		&cli.DurationFlag{Name: "presence-timeout", Value: 30 * time.Second, Usage: "a student with no socket this long in a live session is DISCONNECTED", Sources: cli.EnvVars("PRESENCE_TIMEOUT")},
		&cli.IntFlag{Name: "login-failures-per-email", Value: 10, Usage: "failed logins for one email within --login-window before logins for it are refused", Sources: cli.EnvVars("LOGIN_FAILURES_PER_EMAIL")},
		&cli.IntFlag{Name: "login-failures-per-address", Value: 100, Usage: "failed logins from one client address within --login-window before its logins are refused", Sources: cli.EnvVars("LOGIN_FAILURES_PER_ADDRESS")},
		&cli.DurationFlag{Name: "login-window", Value: 15 * time.Minute, Usage: "window of the login rate limit", Sources: cli.EnvVars("LOGIN_WINDOW")},
		&cli.DurationFlag{Name: "shutdown-timeout", Value: app.DefaultShutdownTimeout, Usage: "after SIGTERM, the most the drain and stop may take; past it the process exits anyway", Sources: cli.EnvVars("SHUTDOWN_TIMEOUT")},
		&cli.DurationFlag{Name: "http-read-timeout", Value: app.DefaultHTTPReadTimeout, Usage: "the most reading one request (headers and body) may take; a slower client is cut off", Sources: cli.EnvVars("HTTP_READ_TIMEOUT")},
		&cli.StringFlag{Name: "analytics", Value: "on", Usage: "on or off: the analytics endpoints (export, state?at=, xAPI, replay socket); off anyway with --event-store=eventstoredb, which production refuses unless this is off", Sources: cli.EnvVars("ANALYTICS")},
		&cli.StringFlag{Name: "metrics-addr", Value: "127.0.0.1:9090", Usage: "listen address of GET /metrics, apart from the API port (empty or off: none); a second instance on one machine needs its own", Sources: cli.EnvVars("METRICS_ADDR")},
		&cli.StringFlag{Name: "rate-limits", Value: "on", Usage: "on or off: per-user request limits (429 RATE_LIMITED), counted per instance", Sources: cli.EnvVars("RATE_LIMITS")},
		&cli.IntFlag{Name: "rate-limit-logs", Value: app.DefaultRateLogs, Usage: "log requests (single or batch) per user per minute on this instance", Sources: cli.EnvVars("RATE_LIMIT_LOGS")},
		&cli.IntFlag{Name: "rate-limit-help", Value: app.DefaultRateHelp, Usage: "help requests (and their feedback) per user per minute on this instance", Sources: cli.EnvVars("RATE_LIMIT_HELP")},
		&cli.IntFlag{Name: "rate-limit-commands", Value: app.DefaultRateCommands, Usage: "session commands (join, start, next, pause, …, progress) per user per minute on this instance", Sources: cli.EnvVars("RATE_LIMIT_COMMANDS")},
		&cli.DurationFlag{Name: "http-idle-timeout", Value: app.DefaultHTTPIdleTimeout, Usage: "an idle keep-alive connection is closed after this long", Sources: cli.EnvVars("HTTP_IDLE_TIMEOUT")},
	)
}

func splitList(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// configFrom reads serve's flags.
func configFrom(cmd *cli.Command) app.Config {
	return app.Config{
		HTTPAddr:              cmd.String("http-addr"),
		PublicURL:             strings.TrimRight(cmd.String("public-url"), "/"),
		DatabaseURL:           cmd.String("database-url"),
		EventStore:            cmd.String("event-store"),
		EventStoreURL:         cmd.String("eventstore-url"),
		Bus:                   cmd.String("bus"),
		KafkaBrokers:          splitList(cmd.String("kafka-brokers")),
		RedisURL:              cmd.String("redis-url"),
		JWTSecret:             cmd.String("jwt-secret"),
		AccessTTL:             cmd.Duration("access-token-ttl"),
		RefreshTTL:            cmd.Duration("refresh-token-ttl"),
		AdminEmail:            cmd.String("admin-email"),
		AdminPassword:         cmd.String("admin-password"),
		LogLevel:              cmd.String("log-level"),
		Env:                   cmd.String("env"),
		API:                   cmd.Bool("api"),
		Projectors:            cmd.Bool("projectors"),
		Workers:               cmd.Bool("workers"),
		Analyzer:              cmd.String("analyzer"),
		LLMBaseURL:            cmd.String("llm-base-url"),
		LLMModel:              cmd.String("llm-model"),
		LLMAPIKey:             cmd.String("llm-api-key"),
		LLMTimeout:            cmd.Duration("llm-timeout"),
		StuckDetectorOff:      !cmd.Bool("stuck-detector"),
		StuckInterval:         cmd.Duration("stuck-interval"),
		StuckIdleAfter:        cmd.Duration("stuck-idle-after"),
		StuckCooldown:         cmd.Duration("stuck-cooldown"),
		PresenceTimeout:       cmd.Duration("presence-timeout"),
		LoginFailuresPerEmail: cmd.Int("login-failures-per-email"),
		LoginFailuresPerAddr:  cmd.Int("login-failures-per-address"),
		LoginWindow:           cmd.Duration("login-window"),
		ShutdownTimeout:       cmd.Duration("shutdown-timeout"),
		HTTPReadTimeout:       cmd.Duration("http-read-timeout"),
		HTTPIdleTimeout:       cmd.Duration("http-idle-timeout"),
		AnalyticsOff:          offSwitch(cmd.String("analytics")),
		MetricsAddr:           metricsAddr(cmd.String("metrics-addr")),
		RateLimitsOff:         offSwitch(cmd.String("rate-limits")),
		RateLogsPerMin:        cmd.Int("rate-limit-logs"),
		RateHelpPerMin:        cmd.Int("rate-limit-help"),
		RateCommandsPerMin:    cmd.Int("rate-limit-commands"),
	}
}

// offSwitch reads an on/off variable: off, false, 0 and no turn it off.
func offSwitch(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "off", "false", "0", "no":
		return true
	}
	return false
}

// metricsAddr maps METRICS_ADDR=off to no listener.
func metricsAddr(v string) string {
	if offSwitch(v) {
		return ""
	}
	return strings.TrimSpace(v)
}

// toolConfig is the configuration of a one-shot command (replay, rebuild):
// the existing, migrated database; no roles, no HTTP, an in-process bus.
func toolConfig(cmd *cli.Command) app.Config {
	cfg := app.Config{
		DatabaseURL: cmd.String("database-url"),
		LogLevel:    cmd.String("log-level"),
		EventStore:  "postgres",
		Bus:         "memory",
		Env:         "development",
		AccessTTL:   time.Minute,
		RefreshTTL:  time.Minute,
		Tool:        true,
	}
	for _, f := range cmd.Flags {
		switch f.Names()[0] {
		case "event-store":
			cfg.EventStore = cmd.String("event-store")
		case "eventstore-url":
			cfg.EventStoreURL = cmd.String("eventstore-url")
		case "redis-url":
			cfg.RedisURL = cmd.String("redis-url")
		case "public-url":
			cfg.PublicURL = strings.TrimRight(cmd.String("public-url"), "/")
		}
	}
	return cfg
}

// polish makes every command's help and errors alike: booleans show their
// default, and a usage error (a missing required flag, a bad value) is one
// short line instead of the whole help followed by the error twice.
func polish(cmd *cli.Command) {
	for _, f := range cmd.Flags {
		if b, ok := f.(*cli.BoolFlag); ok && b.DefaultText == "" {
			b.DefaultText = strconv.FormatBool(b.Value)
		}
	}
	cmd.OnUsageError = func(_ context.Context, c *cli.Command, err error, _ bool) error {
		return usageError{fmt.Errorf("%w (see: lockstep %s --help)", err, strings.TrimSpace(strings.TrimPrefix(c.FullName(), c.Root().Name)))}
	}
	for _, sub := range cmd.Commands {
		polish(sub)
	}
}

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// errorLines renders err for stderr: one "lockstep: …" line per problem (a
// configuration reports all of its problems at once).
func errorLines(err error) string {
	var b strings.Builder
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			b.WriteString("lockstep: " + l + "\n")
		}
	}
	return b.String()
}
