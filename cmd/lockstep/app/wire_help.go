package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/lockstep/lockstep/analyzer"
	"github.com/lockstep/lockstep/analyzer/pgactivity"
	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/projections"
	"github.com/lockstep/lockstep/readapi"
	"github.com/lockstep/lockstep/stuck"
)

// helpSweepAfter: a request still ANALYZING this long after it was made lost
// its analysis message (published after the append); the analyzer's sweep
// analyzes it.
const helpSweepAfter = 30 * time.Second

// validateHelp checks the help analyzer's and stuck detector's settings.
func (c Config) validateHelp() []error {
	var errs []error
	switch c.Analyzer {
	case "", "rule":
	case "llm":
		if err := (analyzer.LLMConfig{BaseURL: c.LLMBaseURL, Model: c.LLMModel, Timeout: c.LLMTimeout}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("ANALYZER=llm: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("ANALYZER must be rule or llm, not %q", c.Analyzer))
	}
	for name, d := range map[string]time.Duration{"LLM_TIMEOUT": c.LLMTimeout, "STUCK_INTERVAL": c.StuckInterval, "STUCK_IDLE_AFTER": c.StuckIdleAfter, "STUCK_COOLDOWN": c.StuckCooldown} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", name))
		}
	}
	return errs
}

func (a *App) helpAnalyzer() analyzer.Analyzer {
	if a.cfg.Analyzer == "llm" {
		return analyzer.NewLLM(analyzer.LLMConfig{BaseURL: a.cfg.LLMBaseURL, Model: a.cfg.LLMModel, APIKey: a.cfg.LLMAPIKey, Timeout: a.cfg.LLMTimeout})
	}
	return analyzer.RuleBased{}
}

// wireHelp wires help requests and notifications: the help commands, the
// "help" projector (read models, notifications, help socket messages), the
// queries and sockets, and in the workers role the analyzer (consumer group
// commands.HelpAnalyzerGroup on the analysis topic, plus a sweep for requests
// whose message was lost) and the stuck detector.
func (a *App) wireHelp(ctx context.Context) error {
	a.addProjector(projections.NewHelp(a.announcer))

	activity := pgactivity.Source{Pool: a.pool}
	help := commands.NewHelp(commands.HelpConfig{
		Store: a.store, Pool: a.pool, WaitFor: a.group.WaitFor, Logger: a.log,
		Analyzer: a.helpAnalyzer(), Activity: activity,
		RequestAnalysis: func(ctx context.Context, id int64, payload []byte) error {
			m := message.NewMessage(uuid.NewString(), payload)
			m.Metadata.Set(bus.MetadataPartitionKey, domain.HelpStream(id))
			return a.bus.Publish(ctx, bus.TopicHelpAnalysisRequests, m)
		},
	})
	help.Routes(a.engine, a.authed, a.idem)
	(&readapi.HelpQueries{
		Pool: a.pool, Hub: a.hub, Tokens: a.auth.Tokens(), Producer: projections.HelpProjector,
		InstructorChannel: projections.HelpInstructorChannel, UserChannel: projections.HelpUserChannel, Logger: a.log,
	}).Routes(a.engine, a.authed)

	if !a.cfg.Workers {
		return nil
	}
	sub, err := a.bus.Subscriber(commands.HelpAnalyzerGroup)
	if err != nil {
		return fmt.Errorf("help analyzer: %w", err)
	}
	// Subscribe now (the subscription ends when the bus closes) so that on
	// the memory bus no request made before the workers start is missed.
	msgs, err := sub.Subscribe(context.WithoutCancel(ctx), bus.TopicHelpAnalysisRequests)
	if err != nil {
		return fmt.Errorf("help analyzer: subscribe: %w", err)
	}
	a.workers = append(a.workers, func(ctx context.Context) error {
		if msgs == nil { // the previous subscription ended: subscribe again
			if msgs, err = sub.Subscribe(ctx, bus.TopicHelpAnalysisRequests); err != nil {
				return fmt.Errorf("help analyzer: subscribe: %w", err)
			}
		}
		err := a.runHelpAnalyzer(ctx, help, msgs)
		msgs = nil
		return err
	})
	if !a.cfg.StuckDetectorOff {
		d := stuck.New(stuck.Config{
			Pool: a.pool, Help: help.RequestHelp, Activity: activity, Logger: a.log,
			Interval: a.cfg.StuckInterval, Cooldown: a.cfg.StuckCooldown,
			Thresholds: analyzer.Thresholds{IdleAfter: a.cfg.StuckIdleAfter},
		})
		a.workers = append(a.workers, d.Run)
	}
	return nil
}

// runHelpAnalyzer analyzes each request from the bus (acked once recorded;
// nacked for redelivery on failure) and sweeps for lost ones.
func (a *App) runHelpAnalyzer(ctx context.Context, help *commands.Help, msgs <-chan *message.Message) error {
	sweep := time.NewTicker(helpSweepAfter / 2)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			if err := help.HandleAnalysisRequest(ctx, m.Payload); err != nil {
				if ctx.Err() == nil {
					a.log.Error("help analysis failed; will retry", "error", err)
				}
				m.Nack()
				continue
			}
			m.Ack()
		case <-sweep.C:
			ids, err := help.Stale(ctx, helpSweepAfter, 100)
			if err != nil {
				a.log.Error("help analyzer sweep", "error", err)
				continue
			}
			for _, id := range ids {
				if err := help.Analyze(ctx, id); err != nil && !errors.Is(err, context.Canceled) {
					a.log.Error("help analyzer sweep", "help_request_id", id, "error", err)
				}
			}
		}
	}
}
