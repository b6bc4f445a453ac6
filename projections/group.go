package projections

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Group is the set of projectors of one deployment. Command handlers use it
// to answer only once the read models reflect the command (read-your-writes):
// a client that gets a 201 and then calls a GET sees what it wrote.
type Group struct {
	pool    *pgxpool.Pool
	runners []*Runner
	local   bool
	remote  remoteFrontier
}

// NewGroup groups runners. local says whether they run in this process; when
// they do not (an API-only instance), WaitFor reads their checkpoints from
// the database instead.
func NewGroup(pool *pgxpool.Pool, local bool, runners ...*Runner) *Group {
	return &Group{pool: pool, runners: runners, local: local}
}

// Add adds a runner (during wiring, before requests are served).
func (g *Group) Add(r *Runner) { g.runners = append(g.runners, r) }

// Runners returns the group's runners.
func (g *Group) Runners() []*Runner { return g.runners }

// Runner returns the runner of the named projector.
func (g *Group) Runner(name string) (*Runner, bool) {
	for _, r := range g.runners {
		if r.Name() == name {
			return r, true
		}
	}
	return nil, false
}

// Eventual is implemented by projectors whose read models commands do not
// wait for: aggregates for others (an instructor's dashboard) that may
// trail a moment behind and are pushed over WebSockets when they catch up.
// A student's progress report then never waits on the dashboard's work.
type Eventual interface {
	Eventual() bool
}

func awaited(r *Runner) bool {
	e, ok := r.cfg.Projector.(Eventual)
	return !ok || !e.Eventual()
}

// WaitFor blocks until every running projector that commands wait for has
// applied the event at position (parked and Eventual ones are not waited
// for), or ctx ends.
func (g *Group) WaitFor(ctx context.Context, position uint64) error {
	if position == 0 || len(g.runners) == 0 {
		return nil
	}
	if g.local {
		return g.waitLocal(ctx, position)
	}
	return g.waitRemote(ctx, position)
}
