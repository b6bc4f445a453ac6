package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/lockstep/lockstep/analytics"
	"github.com/lockstep/lockstep/projections"
)

// replayCommand prints a past classroom to stdout, one JSON object per line:
// its events (ndjson), its xAPI statements (xapi), or the messages its live
// sockets showed (messages). With --speed > 0 the lines come with the
// original gaps divided by speed.
func replayCommand() *cli.Command {
	return &cli.Command{
		Name:  "replay",
		Usage: "print a past classroom to stdout: events, xAPI statements or live messages, optionally timed",
		Flags: append(databaseFlags("PostgreSQL holding the events (must exist and be migrated: replay creates nothing)"),
			&cli.StringFlag{Name: "event-store", Value: "postgres", Usage: "the event store to read, opened as the server opens it (replay needs one with filtered reads: analytics.Supported)", Sources: cli.EnvVars("EVENT_STORE")},
			&cli.StringFlag{Name: "public-url", Usage: "the server's base URL, for --format xapi (statement and activity ids are IRIs under it)", Sources: cli.EnvVars("PUBLIC_URL")},
			&cli.Int64Flag{Name: "session", Usage: "the session to replay", Required: true},
			&cli.Float64Flag{Name: "speed", Usage: "re-emit with the original gaps divided by this (0 = as fast as possible)"},
			&cli.StringFlag{Name: "format", Value: "ndjson", Usage: "ndjson (events), xapi (statements; needs --public-url) or messages (live socket messages)"},
		),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			format, speed, session := cmd.String("format"), cmd.Float64("speed"), cmd.Int64("session")
			if format != "ndjson" && format != "xapi" && format != "messages" {
				return fmt.Errorf("--format must be ndjson, xapi or messages, not %q", format)
			}
			if speed < 0 {
				return errors.New("--speed must be >= 0")
			}
			cfg := toolConfig(cmd)
			if format == "xapi" && cfg.PublicURL == "" {
				return errors.New("--format xapi needs --public-url (the server's base URL: statement ids and activity ids are IRIs under it)")
			}
			a, _, err := openApp(ctx, cfg)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := analytics.Supported(a.Store()); err != nil {
				return fmt.Errorf("replay cannot read EVENT_STORE=%s (analytics are off too): %w", cfg.EventStore, err)
			}
			return replay(ctx, a.AnalyticsReader(), bufio.NewWriterSize(os.Stdout, 64<<10), session, format, speed, cfg.PublicURL)
		},
	}
}

type flusher interface {
	Write(p []byte) (int, error)
	Flush() error
}

func replay(ctx context.Context, r *analytics.Reader, out flusher, session int64, format string, speed float64, base string) error {
	defer out.Flush()
	cl, err := r.LoadClassroom(ctx, session)
	if err != nil {
		return fmt.Errorf("session %d: %w", session, err)
	}
	line := func(v []byte) error {
		if _, err := out.Write(append(v, '\n')); err != nil {
			return err
		}
		if speed > 0 {
			return out.Flush()
		}
		return nil
	}
	if format == "messages" {
		p := &analytics.Player{
			Reader: r, SessionID: session, Speed: speed,
			Channels: []string{projections.SessionStudentsChannel(session), projections.SessionInstructorChannel(session)},
			Send:     func(_ context.Context, frame []byte) error { return line(frame) },
		}
		return p.Run(ctx)
	}
	pace := newPacer(speed)
	x := analytics.NewXAPI(cl, base)
	return r.ClassroomEvents(ctx, cl, 0, 0, 1000, func(e analytics.Event) (bool, error) {
		var v any = e
		if format == "xapi" {
			st, ok := x.Statement(e)
			if !ok {
				return true, nil
			}
			v = st
		}
		b, err := json.Marshal(v)
		if err != nil {
			return false, err
		}
		if err := pace.wait(ctx, e.OccurredAt); err != nil {
			return false, err
		}
		return true, line(b)
	})
}

// pacer spaces lines by their original times divided by speed (0: no pacing).
type pacer struct {
	speed  float64
	t0, w0 time.Time
}

func newPacer(speed float64) *pacer { return &pacer{speed: speed} }

func (p *pacer) wait(ctx context.Context, at time.Time) error {
	if p.speed <= 0 {
		return nil
	}
	if p.t0.IsZero() {
		p.t0, p.w0 = at, time.Now()
		return nil
	}
	d := time.Until(p.w0.Add(time.Duration(float64(at.Sub(p.t0)) / p.speed)))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
