package activitylog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/web"
)

// DeadLettersPath lists what the log writer set aside (ADMIN only).
const DeadLettersPath = "/api/admin/logs/dead-letters"

// DeadLetter is a log row PostgreSQL refused, or a bus message that could not
// be decoded, set aside by the writer so that it never blocks the logs after
// it (table activity_log_dead_letters).
type DeadLetter struct {
	// Key identifies what was set aside ("log:{id}" or "message:{uuid}"):
	// setting the same thing aside again counts an attempt.
	Key       string
	LogID     *int64
	UserID    *int64
	Topic     string
	MessageID string
	Partition *int32 // Kafka only
	Offset    *int64 // Kafka only
	Payload   []byte // the log as JSON, or the message's raw payload
	Error     string
	At        time.Time
}

// DeadLetterStore keeps what the writer sets aside.
type DeadLetterStore interface {
	SetAside(ctx context.Context, letters []DeadLetter) error
}

// Permanent reports whether a failed write can never succeed as it is: a
// PostgreSQL data exception (SQLSTATE class 22, e.g. 22P02 invalid jsonb or
// 22021 invalid UTF-8), an integrity violation (23) or a program limit (54).
// Anything else — a lost connection, a database shutting down or refusing
// connections, a timeout — is transient and retried, never set aside.
func Permanent(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

// letterForLog is the dead letter of one log that came in msg.
func letterForLog(l Log, msg *message.Message, cause error, at time.Time) DeadLetter {
	payload, err := json.Marshal(l)
	if err != nil {
		// The log's JSON fields are not even JSON: keep their bytes (base64).
		payload, err = json.Marshal(struct {
			Log
			EventData  []byte `json:"event_data,omitempty"`
			ScreenInfo []byte `json:"screen_info,omitempty"`
		}{Log: l, EventData: l.EventData, ScreenInfo: l.ScreenInfo})
	}
	if err != nil || len(payload) == 0 { // e.g. a timestamp JSON cannot write
		payload = fmt.Appendf(nil, "%+v", l)
	}
	d := letterForMessage(msg, cause, at)
	d.Key = "log:" + strconv.FormatInt(l.LogID, 10)
	d.LogID, d.UserID = &l.LogID, &l.UserID
	d.Payload = payload
	return d
}

// letterForMessage is the dead letter of a whole message.
func letterForMessage(msg *message.Message, cause error, at time.Time) DeadLetter {
	d := DeadLetter{Key: "message:" + msg.UUID, Topic: bus.TopicActivityLogs, MessageID: msg.UUID,
		Payload: []byte(msg.Payload), Error: cause.Error(), At: at}
	if ctx := msg.Context(); ctx != nil {
		if p, ok := kafka.MessagePartitionFromCtx(ctx); ok {
			d.Partition = &p
		}
		if o, ok := kafka.MessagePartitionOffsetFromCtx(ctx); ok {
			d.Offset = &o
		}
	}
	return d
}

// storableText makes s fit a text column (an error message may quote the
// bad bytes it met).
func storableText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// PGDeadLetters keeps dead letters in activity_log_dead_letters.
type PGDeadLetters struct {
	pool *pgxpool.Pool
}

// NewPGDeadLetters returns the dead-letter table over pool.
func NewPGDeadLetters(pool *pgxpool.Pool) *PGDeadLetters {
	if pool == nil {
		panic("activitylog: NewPGDeadLetters needs a pool")
	}
	return &PGDeadLetters{pool: pool}
}

// SetAside implements DeadLetterStore: one row per key, a repeat counts an
// attempt and keeps the latest error.
func (d *PGDeadLetters) SetAside(ctx context.Context, letters []DeadLetter) error {
	b := &pgx.Batch{}
	for _, l := range letters {
		b.Queue(`INSERT INTO activity_log_dead_letters
			(source_key, log_id, user_id, topic, message_id, partition, "offset", payload, error, first_seen, last_seen)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
			ON CONFLICT (source_key) DO UPDATE SET attempts = activity_log_dead_letters.attempts + 1,
				error = EXCLUDED.error, last_seen = EXCLUDED.last_seen`,
			storableText(l.Key), l.LogID, l.UserID, storableText(l.Topic), storableText(l.MessageID),
			l.Partition, l.Offset, l.Payload, storableText(l.Error), l.At)
	}
	if err := d.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("set aside %d activity-log dead letters: %w", len(letters), err)
	}
	return nil
}

// Count is the number of dead letters.
func (d *PGDeadLetters) Count(ctx context.Context) (int64, error) {
	var n int64
	err := d.pool.QueryRow(ctx, `SELECT count(*) FROM activity_log_dead_letters`).Scan(&n)
	return n, err
}

// deadLetterView is a dead letter as the admin endpoint shows it.
type deadLetterView struct {
	ID        int64     `json:"id"`
	LogID     *int64    `json:"log_id"`
	UserID    *int64    `json:"user_id"`
	Topic     string    `json:"topic"`
	MessageID string    `json:"message_id"`
	Partition *int32    `json:"partition"`
	Offset    *int64    `json:"offset"`
	Payload   *string   `json:"payload"`        // the payload as text, null when it is not UTF-8
	Base64    []byte    `json:"payload_base64"` // the payload's exact bytes
	Error     string    `json:"error"`
	Attempts  int       `json:"attempts"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Routes mounts GET DeadLettersPath (ADMIN only): the dead letters, newest
// first, paged as every list (`dead_letters` plus `pagination`).
func (d *PGDeadLetters) Routes(r gin.IRouter, authed gin.HandlerFunc, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	r.GET(DeadLettersPath, authed, auth.Require(domain.RoleAdmin), func(c *gin.Context) {
		page, ok := web.PageQuery(c)
		if !ok {
			return
		}
		ctx := c.Request.Context()
		total, err := d.Count(ctx)
		if err != nil {
			log.Error("count activity-log dead letters", "error", err)
			web.Error(c, &domain.Error{Code: domain.CodeUnavailable, Message: "dead letters could not be read; retry later"})
			return
		}
		out := []deadLetterView{}
		if int64(page.Page-1) < (total+int64(page.PageSize)-1)/int64(page.PageSize) {
			out, err = d.list(ctx, page)
			if err != nil {
				log.Error("list activity-log dead letters", "error", err)
				web.Error(c, &domain.Error{Code: domain.CodeUnavailable, Message: "dead letters could not be read; retry later"})
				return
			}
		}
		c.JSON(http.StatusOK, gin.H{"dead_letters": out, "pagination": page.Of(total)})
	})
}

func (d *PGDeadLetters) list(ctx context.Context, page web.Page) ([]deadLetterView, error) {
	rows, err := d.pool.Query(ctx, `SELECT id, log_id, user_id, topic, message_id, partition, "offset", payload, error, attempts, first_seen, last_seen
		FROM activity_log_dead_letters ORDER BY id DESC LIMIT $1 OFFSET $2`, page.PageSize, page.Offset())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (deadLetterView, error) {
		var v deadLetterView
		err := r.Scan(&v.ID, &v.LogID, &v.UserID, &v.Topic, &v.MessageID, &v.Partition, &v.Offset, &v.Base64,
			&v.Error, &v.Attempts, &v.FirstSeen, &v.LastSeen)
		if utf8.Valid(v.Base64) {
			s := string(v.Base64)
			v.Payload = &s
		}
		v.FirstSeen, v.LastSeen = v.FirstSeen.UTC(), v.LastSeen.UTC()
		return v, err
	})
}

// Collector is the gauge lockstep_activity_log_dead_letters: the rows of the
// dead-letter table, counted when scraped (nothing is reported when the
// database does not answer within two seconds).
func (d *PGDeadLetters) Collector() prometheus.Collector { return deadLetterCollector{d} }

var deadLettersDesc = prometheus.NewDesc("lockstep_activity_log_dead_letters",
	"Activity logs (or undecodable bus messages) the log writer could not store and set aside in activity_log_dead_letters.", nil, nil)

type deadLetterCollector struct{ d *PGDeadLetters }

func (c deadLetterCollector) Describe(ch chan<- *prometheus.Desc) { ch <- deadLettersDesc }

func (c deadLetterCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := c.d.Count(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.GaugeValue, float64(n))
}
