// Command lockstep is the Lockstep backend: one binary whose subcommands
// serve the API (with projectors and workers), migrate the database, replay a
// past classroom, rebuild read models and simulate a class.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/migrations"
	"github.com/lockstep/lockstep/pgdb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := newCLI().Run(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "lockstep:", err)
		os.Exit(1)
	}
}

func newCLI() *cli.Command {
	return &cli.Command{
		Name:  "lockstep",
		Usage: "live step-by-step classrooms: event-sourced backend",
		Flags: globalFlags(),
		Commands: []*cli.Command{
			replayCommand(),
			rebuildCommand(),
			simulateCommand(),
			{
				Name:  "serve",
				Usage: "migrate the database, then serve the HTTP API and WebSockets, run projectors and workers",
				Flags: serveFlags(),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					cfg := configFrom(cmd)
					if err := cfg.Validate(); err != nil {
						return fmt.Errorf("configuration:\n%w", err)
					}
					log := newLogger(cfg.LogLevel)
					a, err := app.New(ctx, cfg, log)
					if err != nil {
						return err
					}
					defer a.Close()
					return a.Run(ctx)
				},
			},
			{
				Name:  "migrate",
				Usage: "apply pending database migrations and exit",
				Action: func(ctx context.Context, cmd *cli.Command) error {
					log := newLogger(cmd.String("log-level"))
					pool, err := pgdb.Open(ctx, cmd.String("database-url"))
					if err != nil {
						return err
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
		},
	}
}

func newLogger(level string) *slog.Logger {
	l, err := app.ParseLevel(level)
	if err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
