package main

import (
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
)

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/lockstep?sslmode=disable"

func serveFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "http-addr", Value: ":8080", Usage: "listen address", Sources: cli.EnvVars("HTTP_ADDR")},
		&cli.StringFlag{Name: "public-url", Usage: "base URL clients reach this server at (QR links, xAPI ids); default: taken from each request's Host", Sources: cli.EnvVars("PUBLIC_URL")},
		&cli.StringFlag{Name: "event-store", Value: "postgres", Usage: "postgres or eventstoredb", Sources: cli.EnvVars("EVENT_STORE")},
		&cli.StringFlag{Name: "eventstore-url", Usage: "EventStoreDB connection string (esdb://…)", Sources: cli.EnvVars("EVENTSTORE_URL")},
		&cli.StringFlag{Name: "bus", Value: "postgres", Usage: "postgres, kafka or memory", Sources: cli.EnvVars("BUS")},
		&cli.StringFlag{Name: "kafka-brokers", Usage: "comma-separated Kafka brokers for --bus=kafka", Sources: cli.EnvVars("KAFKA_BROKERS")},
		&cli.StringFlag{Name: "redis-url", Usage: "optional Redis read cache (redis://…)", Sources: cli.EnvVars("REDIS_URL")},
		&cli.StringFlag{Name: "jwt-secret", Usage: "HMAC key for tokens (required unless --dev)", Sources: cli.EnvVars("JWT_SECRET")},
		&cli.DurationFlag{Name: "access-token-ttl", Value: 15 * time.Minute, Sources: cli.EnvVars("ACCESS_TOKEN_TTL")},
		&cli.DurationFlag{Name: "refresh-token-ttl", Value: 720 * time.Hour, Sources: cli.EnvVars("REFRESH_TOKEN_TTL")},
		&cli.StringFlag{Name: "admin-email", Sources: cli.EnvVars("ADMIN_EMAIL")},
		&cli.StringFlag{Name: "admin-password", Sources: cli.EnvVars("ADMIN_PASSWORD")},
		&cli.StringFlag{Name: "env", Value: "development", Usage: "development or production; in development a missing JWT secret is generated per start (with a warning), in production it is required", Sources: cli.EnvVars("LOCKSTEP_ENV")},
		&cli.BoolFlag{Name: "api", Value: true, Usage: "serve the HTTP API and WebSockets", Sources: cli.EnvVars("ROLE_API")},
		&cli.BoolFlag{Name: "projectors", Value: true, Usage: "run the projectors", Sources: cli.EnvVars("ROLE_PROJECTORS")},
		&cli.BoolFlag{Name: "workers", Value: true, Usage: "run the log writer, help analyzer and stuck detector", Sources: cli.EnvVars("ROLE_WORKERS")},
		&cli.StringFlag{Name: "analyzer", Value: "rule", Usage: "help analyzer: rule or llm", Sources: cli.EnvVars("ANALYZER")},
		&cli.StringFlag{Name: "llm-base-url", Usage: "OpenAI-compatible API base for --analyzer=llm", Sources: cli.EnvVars("LLM_BASE_URL")},
		&cli.StringFlag{Name: "llm-model", Sources: cli.EnvVars("LLM_MODEL")},
		&cli.StringFlag{Name: "llm-api-key", Sources: cli.EnvVars("LLM_API_KEY")},
		&cli.DurationFlag{Name: "llm-timeout", Value: 5 * time.Second, Sources: cli.EnvVars("LLM_TIMEOUT")},
		&cli.BoolFlag{Name: "stuck-detector", Value: true, Usage: "raise AUTO help requests for stuck students", Sources: cli.EnvVars("STUCK_DETECTOR")},
		&cli.DurationFlag{Name: "stuck-interval", Value: 5 * time.Second, Sources: cli.EnvVars("STUCK_INTERVAL")},
		&cli.DurationFlag{Name: "stuck-idle-after", Value: 2 * time.Minute, Sources: cli.EnvVars("STUCK_IDLE_AFTER")},
		&cli.DurationFlag{Name: "stuck-cooldown", Value: 2 * time.Minute, Sources: cli.EnvVars("STUCK_COOLDOWN")},
		&cli.DurationFlag{Name: "presence-timeout", Value: 30 * time.Second, Usage: "a student with no socket this long in a live session is DISCONNECTED", Sources: cli.EnvVars("PRESENCE_TIMEOUT")},
		&cli.IntFlag{Name: "login-failures-per-email", Value: 10, Sources: cli.EnvVars("LOGIN_FAILURES_PER_EMAIL")},
		&cli.IntFlag{Name: "login-failures-per-address", Value: 100, Sources: cli.EnvVars("LOGIN_FAILURES_PER_ADDRESS")},
		&cli.DurationFlag{Name: "login-window", Value: 15 * time.Minute, Sources: cli.EnvVars("LOGIN_WINDOW")},
	}
}

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "database-url", Value: defaultDatabaseURL, Usage: "PostgreSQL (created if missing)", Sources: cli.EnvVars("DATABASE_URL")},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", Sources: cli.EnvVars("LOG_LEVEL")},
	}
}

func configFrom(cmd *cli.Command) app.Config {
	var brokers []string
	for _, b := range strings.Split(cmd.String("kafka-brokers"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	return app.Config{
		HTTPAddr:              cmd.String("http-addr"),
		PublicURL:             strings.TrimRight(cmd.String("public-url"), "/"),
		DatabaseURL:           cmd.String("database-url"),
		EventStore:            cmd.String("event-store"),
		EventStoreURL:         cmd.String("eventstore-url"),
		Bus:                   cmd.String("bus"),
		KafkaBrokers:          brokers,
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
	}
}
