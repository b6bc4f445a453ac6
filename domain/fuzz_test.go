package domain

// FuzzDecodeEvent feeds stored event data of any registered type (and of
// none) to DecodeEvent, as the projections, the command handlers and the
// xAPI export read it from the store. Lockstep has one schema version per
// event type and no upcasters yet (schema_version is stored, and DecodeEvent
// decodes every version the same way), so "any schema version" is any JSON
// the type's fields can take, including fields of other versions that are
// absent or extra. Properties: nothing panics; an event that decodes
// re-encodes to data that decodes to the same value; folding it into every
// aggregate's state (fresh, or a lecture with a task) does not panic.

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func FuzzDecodeEvent(f *testing.F) {
	types := EventTypes()
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	// Seeds: every registered event, as the tests build them, encoded.
	seeds := []Event{
		LectureCreated{LectureID: 1, InstructorID: 10, Title: "카카오톡 기초", CreatedAt: at},
		TaskAdded{LectureID: 1, TaskID: 100, Title: "메시지 보내기", OrderIndex: 1, AddedAt: at},
		SubtaskAdded{LectureID: 1, TaskID: 100, SubtaskID: 1000, Title: "앱 열기", OrderIndex: 1, TargetAction: ActionClick, AddedAt: at},
	}
	for _, e := range seeds {
		data, err := json.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.EventType(), data)
	}
	for _, name := range types {
		f.Add(name, []byte(`{}`))
		f.Add(name, []byte(`{"lecture_id":1,"session_id":-1,"user_id":9223372036854775807,"order_index":-2147483649}`))
		f.Add(name, []byte(`{"lecture_id":"1","occurred_at":"not a time","task_id":null}`))
	}
	f.Add("Unknown", []byte(`{}`))
	f.Add("LectureCreated", []byte(`[`))
	// A folded lecture with a task, for events that need one.
	lecture := LectureDecider.Fold(seeds)

	f.Fuzz(func(t *testing.T, name string, data []byte) {
		ev, err := DecodeEvent(name, data)
		if err != nil {
			if ev != nil {
				t.Fatalf("DecodeEvent(%q) returned both %v and %v", name, ev, err)
			}
			return
		}
		if ev.EventType() != name {
			t.Fatalf("DecodeEvent(%q) returned a %s", name, ev.EventType())
		}
		again, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("re-encode %s: %v", name, err)
		}
		ev2, err := DecodeEvent(name, again)
		if err != nil {
			t.Fatalf("re-decode %s %s: %v", name, again, err)
		}
		if !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("%s does not round-trip:\n%#v\n%#v", name, ev, ev2)
		}
		LectureDecider.Evolve(LectureDecider.Initial(), ev)
		LectureDecider.Evolve(lecture, ev)
		SessionDecider.Evolve(SessionDecider.Initial(), ev)
		ParticipantDecider.Evolve(ParticipantDecider.Initial(), ev)
		ProgressDecider.Evolve(ProgressDecider.Initial(), ev)
		HelpDecider.Evolve(HelpDecider.Initial(), ev)
	})
}
