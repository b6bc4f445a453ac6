package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v3"

	"github.com/lockstep/lockstep/projections"
)

// rebuildCommand rebuilds read models from event zero, online: into shadow
// tables swapped in at the end, so a running API keeps answering.
func rebuildCommand() *cli.Command {
	return &cli.Command{
		Name:  "rebuild",
		Usage: "rebuild read models from event zero while the API keeps answering",
		Flags: append(append(databaseFlags("PostgreSQL of the read models (must exist and be migrated: rebuild creates nothing)"), eventStoreFlags()...),
			&cli.StringFlag{Name: "redis-url", Usage: "the servers' Redis read cache, kept consistent while rebuilding (REDIS_URL of serve)", Sources: cli.EnvVars("REDIS_URL")},
			&cli.StringFlag{Name: "projection", Usage: "rebuild only this projector (default: all)"},
		),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg := toolConfig(cmd)
			a, _, err := openApp(ctx, cfg)
			if err != nil {
				return err
			}
			defer a.Close()
			names := a.ProjectionNames()
			if p := cmd.String("projection"); p != "" {
				names = []string{p}
			}
			for _, name := range names {
				bar := newProgressBar(name)
				start := time.Now()
				if err := a.Rebuild(ctx, name, bar.update); err != nil {
					return err
				}
				bar.finish(time.Since(start))
			}
			return nil
		},
	}
}

// progressBar shows events done / total, rate and ETA for one projector.
type progressBar struct {
	bar  *progressbar.ProgressBar
	done int64
}

func newProgressBar(name string) *progressBar {
	return &progressBar{bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(fmt.Sprintf("%-10s", name)),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
	)}
}

func (b *progressBar) update(done, total int64) {
	if total > 0 {
		b.bar.ChangeMax64(total)
	}
	b.done = done
	_ = b.bar.Set64(done)
}

func (b *progressBar) finish(d time.Duration) {
	_ = b.bar.Finish()
	rate := float64(b.done) / max(d.Seconds(), 1e-9)
	fmt.Fprintf(os.Stderr, "\n%d events in %s (%.0f events/s)\n", b.done, d.Round(time.Millisecond), rate)
}

var _ projections.Progress = (*progressBar)(nil).update
