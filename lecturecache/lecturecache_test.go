package lecturecache_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/lecturecache"
	"github.com/lockstep/lockstep/readapi"
)

const redisURL = "redis://127.0.0.1:6379/0"

// newCache connects with a random key prefix and deletes the keys it made.
func newCache(t *testing.T) (*lecturecache.Cache, string) {
	t.Helper()
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "lockstep_test_" + hex.EncodeToString(b[:]) + ":"
	c, err := lecturecache.New(ctx, lecturecache.Config{URL: redisURL, Prefix: prefix})
	if err != nil {
		t.Skipf("Redis is not reachable at %s (%v): the cache is optional and its tests need a real Redis", redisURL, err)
	}
	t.Cleanup(func() { deleteKeys(t, prefix); _ = c.Close() })
	return c, prefix
}

func deleteKeys(t *testing.T, prefix string) {
	opts, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err == nil && len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
}

func TestCache_read_through_and_invalidate(t *testing.T) {
	c, _ := newCache(t)
	ctx := context.Background()
	key := readapi.LectureCacheKey(7)

	_, gen, ok := c.Get(ctx, key)
	if ok {
		t.Fatal("hit on an empty cache")
	}
	c.Set(ctx, key, gen, []byte(`{"v":1}`))
	doc, _, ok := c.Get(ctx, key)
	if !ok || string(doc) != `{"v":1}` {
		t.Fatalf("after Set: %q %v", doc, ok)
	}
	c.Invalidate(ctx, []int64{7}, nil)
	if _, _, ok := c.Get(ctx, key); ok {
		t.Fatal("hit after Invalidate")
	}
	// Task documents are invalidated by their own ids.
	tkey := readapi.TaskCacheKey(3)
	_, gen, _ = c.Get(ctx, tkey)
	c.Set(ctx, tkey, gen, []byte(`{}`))
	c.Invalidate(ctx, nil, []int64{3})
	if _, _, ok := c.Get(ctx, tkey); ok {
		t.Fatal("task hit after Invalidate")
	}
}

// A reader that loaded the old document before an invalidation must not
// store it after the invalidation.
func TestCache_stale_set_after_invalidate_is_dropped(t *testing.T) {
	c, _ := newCache(t)
	ctx := context.Background()
	key := readapi.LectureCacheKey(8)
	_, gen, _ := c.Get(ctx, key)                 // reader: miss, then reads the database (old)
	c.Invalidate(ctx, []int64{8}, nil)           // projector commits a change
	c.Set(ctx, key, gen, []byte(`{"old":true}`)) // reader stores what it read
	if doc, _, ok := c.Get(ctx, key); ok {
		t.Fatalf("stale document cached: %s", doc)
	}
	_, gen, _ = c.Get(ctx, key)
	c.Set(ctx, key, gen, []byte(`{"new":true}`))
	if doc, _, ok := c.Get(ctx, key); !ok || string(doc) != `{"new":true}` {
		t.Fatalf("fresh document not cached: %q %v", doc, ok)
	}
}

// While the projector holds a key (its change is applied but not yet
// committed), nothing is cached for it, whatever generation a reader saw.
func TestCache_hold_blocks_sets_until_invalidate(t *testing.T) {
	c, _ := newCache(t)
	ctx := context.Background()
	key := readapi.TaskCacheKey(9)
	_, before, _ := c.Get(ctx, key)
	c.Hold(ctx, nil, []int64{9})
	_, during, _ := c.Get(ctx, key)
	c.Set(ctx, key, before, []byte(`{"old":1}`))
	c.Set(ctx, key, during, []byte(`{"old":2}`))
	if doc, _, ok := c.Get(ctx, key); ok {
		t.Fatalf("cached while held: %s", doc)
	}
	c.Invalidate(ctx, nil, []int64{9})
	c.Set(ctx, key, during, []byte(`{"old":3}`))
	if doc, _, ok := c.Get(ctx, key); ok {
		t.Fatalf("a generation from before Invalidate was accepted: %s", doc)
	}
	_, gen, _ := c.Get(ctx, key)
	c.Set(ctx, key, gen, []byte(`{"new":true}`))
	if doc, _, ok := c.Get(ctx, key); !ok || string(doc) != `{"new":true}` {
		t.Fatalf("fresh document not cached: %q %v", doc, ok)
	}
}

// Through the whole app: documents are served from Redis and every content
// change is visible at once.
func TestCache_app(t *testing.T) {
	newCache(t) // skips without Redis
	s := apptest.Start(t, apptest.WithConfig(func(c *app.Config) { c.RedisURL = redisURL }))
	t.Cleanup(func() { deleteKeys(t, s.DB.Name+":") })
	owner := s.NewUser(t, "INSTRUCTOR", "박강사")
	student := s.NewUser(t, "STUDENT", "김학생")
	r := s.Post(t, "/api/lectures", owner.Token, map[string]any{"title": "처음"})
	lecture := int64(r.JSON(t)["id"].(float64))
	r = s.Post(t, fmt.Sprintf("/api/lectures/%d/tasks", lecture), owner.Token, map[string]any{"title": "과제"})
	task := int64(r.JSON(t)["id"].(float64))

	get := func(path, field string) any {
		t.Helper()
		r := s.Get(t, path, student.Token)
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, r.Status, r.Body)
		}
		return r.JSON(t)[field]
	}
	lpath, tpath := fmt.Sprintf("/api/lectures/%d", lecture), fmt.Sprintf("/api/tasks/%d", task)
	get(lpath, "title")
	get(tpath, "title")
	opts, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	for _, k := range []string{readapi.LectureCacheKey(lecture), readapi.TaskCacheKey(task)} {
		if n, err := rdb.Exists(ctx, s.DB.Name+":"+k).Result(); err != nil || n != 1 {
			t.Fatalf("%s not cached (exists=%d, %v)", k, n, err)
		}
	}

	s.Put(t, lpath, owner.Token, map[string]any{"title": "바뀜"})
	if got := get(lpath, "title"); got != "바뀜" {
		t.Errorf("lecture title after PUT = %v (stale cache)", got)
	}
	r = s.Post(t, fmt.Sprintf("/api/tasks/%d/subtasks", task), owner.Token, map[string]any{"title": "단계"})
	if subs, _ := get(tpath, "subtasks").([]any); len(subs) != 1 {
		t.Errorf("task subtasks after POST = %v (stale cache)", subs)
	}
	s.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", lecture), student.Token, nil)
	if n := get(lpath, "enrolled_count"); n != float64(1) {
		t.Errorf("enrolled_count after enroll = %v (stale cache)", n)
	}
}
