package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/projections"
)

// rebuildCommand rebuilds read models from event zero, online: into shadow
// tables swapped in at the end, so a running API keeps answering.
func rebuildCommand() *cli.Command {
	return &cli.Command{
		Name:  "rebuild",
		Usage: "rebuild read models from event zero while the API keeps answering",
		Flags: append(serveFlags(), &cli.StringFlag{Name: "projection", Usage: "rebuild only this projector (default: all)"}),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg := configFrom(cmd)
			cfg.API, cfg.Projectors, cfg.Workers = false, false, false
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("configuration:\n%w", err)
			}
			a, err := app.New(ctx, cfg, newLogger(cmd.String("log-level")))
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

// progressBar prints events done / total, rate and ETA on one line.
type progressBar struct {
	name  string
	start time.Time
	last  time.Time
	done  int64
	total int64
}

func newProgressBar(name string) *progressBar {
	return &progressBar{name: name, start: time.Now()}
}

func (b *progressBar) update(done, total int64) {
	b.done, b.total = done, total
	now := time.Now()
	if now.Sub(b.last) < 200*time.Millisecond && done < total {
		return
	}
	b.last = now
	elapsed := now.Sub(b.start).Seconds()
	rate := float64(done) / max(elapsed, 1e-9)
	eta := "?"
	if rate > 0 && total >= done {
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	fmt.Fprintf(os.Stderr, "\r%-12s %s %5.1f%%  %d/%d events  %.0f events/s  ETA %s   ", b.name, bar(pct, 30), pct, done, total, rate, eta)
}

func (b *progressBar) finish(d time.Duration) {
	rate := float64(b.done) / max(d.Seconds(), 1e-9)
	fmt.Fprintf(os.Stderr, "\r%-12s %s 100.0%%  %d events in %s (%.0f events/s)            \n", b.name, bar(100, 30), b.done, d.Round(time.Millisecond), rate)
}

func bar(pct float64, width int) string {
	n := int(pct / 100 * float64(width))
	out := make([]byte, width)
	for i := range out {
		if i < n {
			out[i] = '#'
		} else {
			out[i] = '.'
		}
	}
	return "[" + string(out) + "]"
}

var _ projections.Progress = (*progressBar)(nil).update
