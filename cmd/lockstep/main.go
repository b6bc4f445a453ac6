// Command lockstep is the Lockstep backend: one binary whose subcommands
// serve the API (with projectors and workers), migrate the database, replay a
// past classroom, rebuild read models and simulate a class.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v3"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/migrations"
	"github.com/lockstep/lockstep/pgdb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := newCLI().Run(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprint(os.Stderr, errorLines(err))
		os.Exit(1)
	}
}

func newCLI() *cli.Command {
	root := &cli.Command{
		Name:  "lockstep",
		Usage: "live step-by-step classrooms: event-sourced backend",
		Commands: []*cli.Command{
			serveCommand(),
			{
				Name:  "migrate",
				Usage: "apply pending database migrations (creating the database if needed) and exit",
				Flags: databaseFlags("PostgreSQL to migrate (created if missing)"),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					log, err := newLogger(os.Stderr, cmd.String("log-level"))
					if err != nil {
						return err
					}
					pool, err := pgdb.Open(ctx, cmd.String("database-url"))
					if err != nil {
						return fmt.Errorf("DATABASE_URL: %w", err)
					}
					defer pool.Close()
					n, err := migrations.Up(ctx, pool, log)
					if err != nil {
						return err
					}
					log.Info("migrations applied", "count", n)
					return nil
				},
			},
			replayCommand(),
			rebuildCommand(),
			simulateCommand(),
		},
	}
	polish(root)
	return root
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "migrate the database, then serve the HTTP API and WebSockets, run projectors and workers",
		Flags: serveFlags(),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg := configFrom(cmd)
			a, log, err := openApp(ctx, cfg)
			if err != nil {
				return err
			}
			if cfg.PublicURL == "" {
				log.Warn("PUBLIC_URL is not set: links (QR codes, qr_code_url) use each request's host for requests from this machine and "+
					"the listen address otherwise; set PUBLIC_URL to the address phones reach for a real classroom", "http_addr", cfg.HTTPAddr)
			}
			defer a.Close()
			return a.Run(ctx)
		},
	}
}

// newLogger makes the process's JSON logger and routes every other logger
// there too: the standard library's log package (and so http.Server's
// default error log) through slog.SetDefault, and the Redis client's.
// openApp validates cfg, makes the JSON logger and builds the app: the start
// of every command that runs one.
func openApp(ctx context.Context, cfg app.Config) (*app.App, *slog.Logger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	log, err := newLogger(os.Stderr, cfg.LogLevel)
	if err != nil {
		return nil, nil, err
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return a, log, nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	l, err := app.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
	slog.SetDefault(log)
	redis.SetLogger(redisLogger{log.With("component", "redis")})
	return log, nil
}

// redisLogger writes go-redis's messages as JSON warnings.
type redisLogger struct{ log *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}
