package commands

import (
	"context"
	"fmt"
	"sync"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

// lectureCache keeps the folded lecture-{id} streams the write side reads on
// every student command (a progress update needs the plan: does the subtask
// exist, which one follows it). A class of a thousand students completing a
// subtask together read and decoded the same lecture stream a thousand
// times; with the cache each command asks the store only whether the stream
// grew since the kept version (an indexed read that returns no row), and
// folds it again when it did. The answer is the same as folding the stream
// every time: the check reads the store, never a read model.
//
// It also keeps which lecture a subtask id belongs to: that never changes
// once the id is allocated.
type lectureCache struct {
	once     sync.Once
	lectures *Snapshots[domain.Lecture]

	mu       sync.Mutex
	subtasks map[int64]int64

	// fresh shares the grew-checks of concurrent commands (coalesce.go).
	freshOnce sync.Once
	fresh     coalesced[int64, loadedLecture]
}

// loadedLecture is one lecture's answer of a shared load.
type loadedLecture struct {
	state domain.Lecture
	err   error
}

// maxCachedLectures bounds the kept plans (a few KB each).
const maxCachedLectures = 4096

// maxCachedSubtasks bounds the subtask → lecture map.
const maxCachedSubtasks = 1 << 16

func (c *lectureCache) plans() *Snapshots[domain.Lecture] {
	c.once.Do(func() { c.lectures = NewSnapshots[domain.Lecture](maxCachedLectures) })
	return c.lectures
}

func (c *lectureCache) subtask(id int64) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.subtasks[id]
	return l, ok
}

func (c *lectureCache) storeSubtask(id, lectureID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subtasks == nil {
		c.subtasks = map[int64]int64{}
	}
	if len(c.subtasks) >= maxCachedSubtasks {
		for k := range c.subtasks {
			delete(c.subtasks, k)
			break
		}
	}
	c.subtasks[id] = lectureID
}

// load returns the lecture folded up to the stream's current version, as a
// read that started after the call found it; concurrent calls share that
// read (es is the same store on every call).
func (c *lectureCache) load(ctx context.Context, es eventstore.Store, lectureID int64) (domain.Lecture, error) {
	c.freshOnce.Do(func() {
		c.fresh.load = func(ctx context.Context, ids []int64) (map[int64]loadedLecture, error) {
			// Different lectures (many rooms at once) load side by side.
			loaded := make([]loadedLecture, len(ids))
			var wg sync.WaitGroup
			for i, id := range ids {
				wg.Go(func() {
					state, err := c.loadNow(ctx, es, id)
					loaded[i] = loadedLecture{state, err}
				})
			}
			wg.Wait()
			out := make(map[int64]loadedLecture, len(ids))
			for i, id := range ids {
				out[id] = loaded[i]
			}
			return out, nil
		}
	})
	l, err := c.fresh.get(ctx, lectureID)
	if err != nil {
		return domain.Lecture{}, err
	}
	return l.state, l.err
}

// loadNow folds lecture lectureID, from its kept plan when the stream has
// not grown since.
func (c *lectureCache) loadNow(ctx context.Context, es eventstore.Store, lectureID int64) (domain.Lecture, error) {
	stream := domain.LectureStream(lectureID)
	if kept, ok := c.plans().get(stream); ok {
		newer, err := es.ReadStream(ctx, stream, kept.version, 1)
		if err != nil {
			return domain.Lecture{}, fmt.Errorf("read %s: %w", stream, err)
		}
		if len(newer) == 0 {
			return kept.state, nil
		}
	}
	state, version, err := Load(ctx, es, stream, domain.LectureDecider)
	if err != nil {
		return state, err
	}
	if version > 0 {
		c.plans().put(stream, state, version)
	}
	return state, nil
}
