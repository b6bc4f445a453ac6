package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v3"
	"golang.org/x/term"

	"github.com/lockstep/lockstep/simulator"
)

// simulateCommand is `lockstep simulate`: a synthetic class against a running server.
func simulateCommand() *cli.Command {
	return &cli.Command{
		Name:  "simulate",
		Usage: "run a synthetic class (an instructor and N students over WebSockets) against a running server and measure the fan-out latency",
		Description: "Registers an instructor and --students students (new accounts every run), creates a lecture of --steps steps,\n" +
			"opens a session that the students join by its code, connects every student socket, then the instructor goes\n" +
			"through every step while the students report progress, send activity logs and ask for help with human-like\n" +
			"delays. Prints one line per step and, at the end, the fan-out latency (the instructor's HTTP call → each\n" +
			"student's message), whether every student got every step exactly once, in order (exit status 1 if not),\n" +
			"what happened to sockets the server closed, the instructor's login and what to look at next.\n\n" +
			"Example, after `make run`:  lockstep simulate --students 30",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "students", Aliases: []string{"n"}, Required: true, Usage: fmt.Sprintf("class size (1..%d)", simulator.MaxStudents)},
			&cli.StringFlag{Name: "server", Value: "http://localhost:8080", Usage: "base URL of the running server", Sources: cli.EnvVars("LOCKSTEP_SERVER")},
			&cli.IntFlag{Name: "steps", Value: 5, Usage: fmt.Sprintf("subtasks the instructor goes through (1..%d)", simulator.MaxSteps)},
			&cli.FloatFlag{Name: "help-rate", Value: 0.1, Usage: "chance that a student asks for help at a step"},
			&cli.FloatFlag{Name: "log-rate", Value: 0.3, Usage: "chance that a student sends a batch of activity logs at a step"},
			&cli.FloatFlag{Name: "speed", Value: 1, Usage: "divides every human delay (2 = twice as fast; 0 = no delays: a load test)"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "bound on the whole run"},
			&cli.DurationFlag{Name: "step-timeout", Value: 30 * time.Second, Usage: "how long every student has to receive a step"},
			&cli.IntFlag{Name: "concurrency", Value: 32, Usage: "concurrent requests while students join"},
			&cli.Int64Flag{Name: "seed", Usage: "seed of the students' behaviour (0: random)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg := simulator.Config{
				Server:      cmd.String("server"),
				Students:    cmd.Int("students"),
				Steps:       cmd.Int("steps"),
				HelpRate:    cmd.Float("help-rate"),
				LogRate:     cmd.Float("log-rate"),
				Speed:       cmd.Float("speed"),
				Timeout:     cmd.Duration("timeout"),
				StepTimeout: cmd.Duration("step-timeout"),
				Concurrency: cmd.Int("concurrency"),
				Seed:        cmd.Int64("seed"),
				Out:         os.Stdout,
				// A progress bar redrawn with \r only on a terminal; plain
				// lines when the output goes to a file or a pipe.
				Terminal: term.IsTerminal(int(os.Stdout.Fd())),
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("simulate:\n%w", err)
			}
			r, err := simulator.Run(ctx, cfg)
			if r != nil {
				r.Print(os.Stdout)
			}
			if err != nil {
				return fmt.Errorf("simulate: %w", err)
			}
			if !r.OK() {
				return fmt.Errorf("simulate: %s", r.Failure())
			}
			return nil
		},
	}
}
