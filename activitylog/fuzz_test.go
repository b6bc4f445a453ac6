package activitylog

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/pgtest"
)

// FuzzLogDecode runs the ingest endpoints' decoder and validation (the path
// of both /api/logs/activity and each entry of /api/logs/batch) over
// arbitrary bodies: it must never panic, and whatever it accepts must be
// storable — through the bus codec and the writer's COPY into activity_logs
// (text and jsonb columns) without an error. The seed corpus, issue 16's
// poisoned inputs among it, is in testdata/fuzz/FuzzLogDecode.
//
//	go test -run '^$' -fuzz FuzzLogDecode -fuzztime 2m ./activitylog/
func FuzzLogDecode(f *testing.F) {
	for _, s := range []string{
		`{"event_type":"CLICK","event_data":{"x":150,"y":300,"text":"확인"},"screen_info":{"package_name":"com.kakao.talk"}}`,
		`{"event_type":"CLICK","event_data":{"text":"\ud83d\ude00"}}`,
		`{"event_type":"CLICK","event_data":{"text":"\\ud800"}}`,
		`{"event_type":"CLICK","event_data":{"n":-0.0e-400,"m":1.7976931348623157e308,"big":123456789012345678901234567890}}`,
	} {
		f.Add([]byte(s))
	}
	check := acceptedIsStorable(f)
	f.Fuzz(func(t *testing.T, body []byte) { check(t, body) })
}

// FuzzLogEventData is FuzzLogDecode with the fuzzer's bytes as event_data of
// an otherwise valid log, so that most inputs reach PostgreSQL's jsonb:
//
//	go test -run '^$' -fuzz FuzzLogEventData -fuzztime 2m ./activitylog/
func FuzzLogEventData(f *testing.F) {
	for _, s := range []string{
		`{"text":"\ud800"}`, `{"\udfff":1}`, `{"n":1e400000}`, `{"n":1e-400}`, `{"t":"\u0000"}`,
		`{"e":"\ud83d\ude00","k":[1,2.5,-0,true,null,{"x":"확인"}]}`, `{"t":"\\ud800"}`, "{\"t\":\"\xff\"}",
		`{"n":123456789012345678901234567890123456789012345678901234567890123}`, `{"n":0.000000000000000000000000000000000000000000000000000000000001e-340}`,
	} {
		f.Add([]byte(s))
	}
	check := acceptedIsStorable(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, append(append([]byte(`{"event_type":"CLICK","event_data":`), data...), '}'))
	})
}

// acceptedIsStorable returns a check over one request body: decode and
// validate it as the endpoints do and, when it is accepted, store it.
func acceptedIsStorable(f *testing.F) func(*testing.T, []byte) {
	db := pgtest.New(f)
	store := NewPGStore(db.Pool)
	actor := domain.Actor{UserID: 7, Role: domain.RoleStudent}
	var ids atomic.Int64
	return func(t *testing.T, body []byte) {
		now := time.Now().UTC()
		var in logInput
		var p problems
		decodeEntry(body, "", &in, &p)
		if len(p.invalid) > 0 {
			return
		}
		l := validate(&in, actor, now, "", &p)
		if p.err() != nil {
			return
		}
		// Session and subtask are checked against the read models (resolve);
		// here only what the row holds matters.
		l.LogID, l.SessionID, l.SubtaskID = ids.Add(1), nil, nil
		msgs, err := NewMessages([]Log{l})
		if err != nil {
			t.Fatalf("accepted %q, but the bus codec refuses it: %v", body, err)
		}
		logs, err := DecodeMessage(msgs[0])
		if err != nil || len(logs) != 1 {
			t.Fatalf("accepted %q, but it does not decode from the bus: %v", body, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := store.Write(ctx, logs); err != nil {
			t.Fatalf("accepted %q, but PostgreSQL refuses it: %v", body, err)
		}
	}
}
