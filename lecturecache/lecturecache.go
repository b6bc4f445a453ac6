// Package lecturecache is the optional Redis read-through cache of lecture
// and task documents (REDIS_URL). The read API looks documents up here
// first; the lectures projector invalidates every document a committed batch
// changed.
//
// A reader that loads a document from PostgreSQL while the projector commits
// a change could store the old version after the invalidation. To rule that
// out, every key has a generation: Get hands the reader the generation it
// saw before reading the database, and Set stores the document only if the
// generation is still the same and not "held". The projector holds a key
// while it applies a change (before its commit: the document is dropped and
// none is stored), and Invalidate gives it a fresh generation after the
// commit. So once the projector has applied an event, no reader sees or
// stores a document older than it.
package lecturecache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/lockstep/lockstep/readapi"
)

// Config configures a Cache.
type Config struct {
	URL string
	// Prefix is prepended to every key (default "").
	Prefix string
	// TTL bounds how long a document stays cached (default 10 minutes).
	TTL    time.Duration
	Logger *slog.Logger
}

// Cache is a Redis cache of lecture and task documents.
type Cache struct {
	rdb    *redis.Client
	prefix string
	ttl    time.Duration
	log    *slog.Logger
}

// New connects to Redis and checks that it answers.
func New(ctx context.Context, cfg Config) (*Cache, error) {
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cache{rdb: redis.NewClient(opts), prefix: cfg.Prefix, ttl: cfg.TTL, log: cfg.Logger}
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		_ = c.rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", opts.Addr, err)
	}
	return c, nil
}

// Close closes the connection.
func (c *Cache) Close() error { return c.rdb.Close() }

// Ping checks that Redis answers.
func (c *Cache) Ping(ctx context.Context) error { return c.rdb.Ping(ctx).Err() }

func (c *Cache) genKey(key string) string { return c.prefix + "gen:" + key }

// Get returns the cached document of key, or on a miss the key's current
// generation, to hand back to Set. Errors count as misses (and are logged).
func (c *Cache) Get(ctx context.Context, key string) ([]byte, string, bool) {
	vals, err := c.rdb.MGet(ctx, c.prefix+key, c.genKey(key)).Result()
	if err != nil {
		c.log.Warn("lecture cache get", "key", key, "error", err)
		return nil, "", false
	}
	gen, _ := vals[1].(string)
	if doc, ok := vals[0].(string); ok {
		return []byte(doc), gen, true
	}
	return nil, gen, false
}

// setIfGeneration stores ARGV[1] under KEYS[1] for ARGV[3] ms if KEYS[2]
// (the generation) still equals ARGV[2] ("" = absent) and is not held.
var setIfGeneration = redis.NewScript(`
local gen = redis.call('GET', KEYS[2]) or ''
if gen == ARGV[2] and string.sub(gen, 1, 5) ~= 'held:' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0`)

// Set stores doc under key if key was not invalidated since the Get that
// returned generation.
func (c *Cache) Set(ctx context.Context, key, generation string, doc []byte) {
	err := setIfGeneration.Run(ctx, c.rdb, []string{c.prefix + key, c.genKey(key)}, doc, generation, c.ttl.Milliseconds()).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		c.log.Warn("lecture cache set", "key", key, "error", err)
	}
}

// Hold drops the documents of the lectures and tasks and stores none of them
// until Invalidate (projections.DocumentInvalidator).
func (c *Cache) Hold(ctx context.Context, lectureIDs, taskIDs []int64) {
	c.newGeneration(ctx, "held:", lectureIDs, taskIDs)
}

// Invalidate drops the documents of the lectures and tasks and gives them a
// new generation, so that no reader stores what it read before
// (projections.DocumentInvalidator).
func (c *Cache) Invalidate(ctx context.Context, lectureIDs, taskIDs []int64) {
	c.newGeneration(ctx, "", lectureIDs, taskIDs)
}

func (c *Cache) newGeneration(ctx context.Context, mark string, lectureIDs, taskIDs []int64) {
	gen := mark + uuid.NewString()
	keys := make([]string, 0, len(lectureIDs)+len(taskIDs))
	for _, id := range lectureIDs {
		keys = append(keys, readapi.LectureCacheKey(id))
	}
	for _, id := range taskIDs {
		keys = append(keys, readapi.TaskCacheKey(id))
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, c.genKey(k), gen, 24*time.Hour)
			p.Del(ctx, c.prefix+k)
		}
		return nil
	})
	if err != nil {
		c.log.Error("lecture cache invalidate: cached documents may be stale until their TTL", "keys", keys, "error", err)
	}
}
