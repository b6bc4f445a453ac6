// Package activitylog ingests students' activity logs and stores them.
//
// The API (Handler) validates each log, gives it a log id from a block of
// the activity_log_ids sequence, and publishes it to bus.TopicActivityLogs
// before it answers 201, so a 201 means the log is durable in the bus. The
// log writer (Writer, consumer group WriterGroup) stores what the bus
// delivers in the activity_logs table with COPY and acks after the commit.
// Delivery is at least once; storage is idempotent by log id, so a
// redelivered message never stores a row twice.
//
// A bus message carries many logs (a whole batch, split by size and user):
// one publish and one COPY per request instead of one per log. Other
// consumers of the topic decode messages with DecodeMessage.
package activitylog

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	fastjson "github.com/goccy/go-json"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/lockstep/lockstep/bus"
)

// Log is one activity log as the bus carries it and the table stores it.
type Log struct {
	LogID     int64  `json:"log_id"`
	UserID    int64  `json:"user_id"`
	SessionID *int64 `json:"session_id,omitempty"`
	SubtaskID *int64 `json:"subtask_id,omitempty"`
	EventType string `json:"event_type"`
	// EventData and ScreenInfo are JSON objects, or nil when the client sent none.
	EventData  json.RawMessage `json:"event_data,omitempty"`
	ScreenInfo json.RawMessage `json:"screen_info,omitempty"`
	// OccurredAt is the client's timestamp (the server's time when it sent none).
	OccurredAt time.Time `json:"timestamp"`
	// ReceivedAt is when the API accepted the log.
	ReceivedAt time.Time `json:"received_at"`
}

// messagePayload is the JSON body of a bus message.
type messagePayload struct {
	Logs []Log `json:"logs"`
}

// maxMessageBytes bounds the uncompressed JSON of one bus message, and
// maxCompressedBytes its payload, below Kafka's default 1 MB message limit: a
// chunk that compresses worse than that is split in two. A whole batch of
// typical logs (JSON compresses about tenfold) travels as one message, so the
// writer pays the bus's per-message cost once per batch.
const (
	maxMessageBytes    = 4 << 20
	maxCompressedBytes = 900 << 10
)

// Metadata of activity-log messages. The payload is gzipped JSON
// ({"logs": [Log, …]}): a tenth of the bytes through the bus, and the
// PostgreSQL bus then stores it without compressing it again.
const (
	MetadataContentType     = "content_type"
	MetadataContentEncoding = "content_encoding"
	contentType             = "application/vnd.lockstep.activity-logs.v1+json"
	encodingGzip            = "gzip"
)

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

func compress(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(data)/4 + 64)
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// NewMessages packs logs into bus messages: logs of one user stay together
// and in order (partition key "user-{id}"), and each message's payload stays
// under about 900 KiB compressed.
func NewMessages(logs []Log) ([]*message.Message, error) {
	var msgs []*message.Message
	var flush func(user int64, chunk []Log) error
	flush = func(user int64, chunk []Log) error {
		data, err := fastjson.Marshal(messagePayload{Logs: chunk})
		if err != nil {
			return fmt.Errorf("encode activity logs: %w", err)
		}
		if data, err = compress(data); err != nil {
			return fmt.Errorf("compress activity logs: %w", err)
		}
		if len(data) > maxCompressedBytes && len(chunk) > 1 {
			half := len(chunk) / 2
			if err := flush(user, chunk[:half]); err != nil {
				return err
			}
			return flush(user, chunk[half:])
		}
		m := message.NewMessage(watermill.NewUUID(), data)
		m.Metadata.Set(bus.MetadataPartitionKey, "user-"+strconv.FormatInt(user, 10))
		m.Metadata.Set(MetadataContentType, contentType)
		m.Metadata.Set(MetadataContentEncoding, encodingGzip)
		msgs = append(msgs, m)
		return nil
	}
	start, size := 0, 0
	for i := range logs {
		n := approxSize(&logs[i])
		if i > start && (logs[i].UserID != logs[start].UserID || size+n > maxMessageBytes) {
			if err := flush(logs[start].UserID, logs[start:i]); err != nil {
				return nil, err
			}
			start, size = i, 0
		}
		size += n
	}
	if start < len(logs) {
		if err := flush(logs[start].UserID, logs[start:]); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// approxSize is an upper estimate of a log's encoded size.
func approxSize(l *Log) int {
	return 256 + len(l.EventType) + len(l.EventData) + len(l.ScreenInfo)
}

// DecodeMessage returns the logs a bus message of TopicActivityLogs carries.
func DecodeMessage(msg *message.Message) ([]Log, error) {
	data := []byte(msg.Payload)
	if msg.Metadata.Get(MetadataContentEncoding) == encodingGzip {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("decode activity-log message %s: %w", msg.UUID, err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("decode activity-log message %s: %w", msg.UUID, err)
		}
	}
	var p messagePayload
	if err := fastjson.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decode activity-log message %s: %w", msg.UUID, err)
	}
	return p.Logs, nil
}
