package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
)

// productionConfig is a valid production configuration.
func productionConfig() app.Config {
	return app.Config{
		HTTPAddr: ":8080", PublicURL: "https://class.example.org",
		DatabaseURL: "postgres://x@127.0.0.1/lockstep", EventStore: "postgres", Bus: "postgres",
		JWTSecret: strings.Repeat("k", 32), AccessTTL: time.Minute, RefreshTTL: time.Hour,
		LogLevel: "info", Env: "production", MetricsAddr: "127.0.0.1:9090",
	}
}

// TestProductionGuards: each unsafe production setting is refused with an
// error naming the variable and the fix; the same setting in development
// starts.
func TestProductionGuards(t *testing.T) {
	if err := productionConfig().Validate(); err != nil {
		t.Fatalf("a sound production config is refused: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*app.Config)
		wants []string
	}{
		{"memory bus", func(c *app.Config) { c.Bus = "memory" }, []string{"BUS=memory", "BUS=postgres"}},
		{"no secret", func(c *app.Config) { c.JWTSecret = "" }, []string{"JWT_SECRET is required", "32 bytes"}},
		{"short secret", func(c *app.Config) { c.JWTSecret = strings.Repeat("k", 31) }, []string{"JWT_SECRET", "at least 32 bytes", "it has 31"}},
		{"eventstoredb with analytics", func(c *app.Config) { c.EventStore, c.EventStoreURL = "eventstoredb", "esdb://127.0.0.1:2113?tls=false" },
			[]string{"EVENT_STORE=eventstoredb", "xAPI", "replay", "ANALYTICS=off"}},
		{"metrics address", func(c *app.Config) { c.MetricsAddr = "9090" }, []string{"METRICS_ADDR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := productionConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the refusal does not say %q: %v", w, err)
				}
			}
		})
	}
	// ANALYTICS=off makes EventStoreDB acceptable in production.
	cfg := productionConfig()
	cfg.EventStore, cfg.EventStoreURL, cfg.AnalyticsOff = "eventstoredb", "esdb://127.0.0.1:2113?tls=false", true
	if err := cfg.Validate(); err != nil {
		t.Errorf("eventstoredb with ANALYTICS=off refused: %v", err)
	}
	// Development keeps its conveniences.
	cfg = productionConfig()
	cfg.Env, cfg.PublicURL, cfg.Bus, cfg.JWTSecret = "development", "", "memory", ""
	cfg.EventStore, cfg.EventStoreURL = "eventstoredb", "esdb://127.0.0.1:2113?tls=false"
	if err := cfg.Validate(); err != nil {
		t.Errorf("development refuses: %v", err)
	}
}
