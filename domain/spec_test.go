package domain

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"testing"
	"time"
)

// t0 is the fixed instant every test command happens around.
var t0 = time.Date(2025, 10, 28, 10, 0, 0, 0, time.UTC)

// at is t0 plus m minutes.
func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

// Actors used across the tests.
var (
	instructor = Actor{UserID: 10, Role: RoleInstructor}
	otherInstr = Actor{UserID: 11, Role: RoleInstructor}
	admin      = Actor{UserID: 1, Role: RoleAdmin}
	analyst    = Actor{UserID: 2, Role: RoleAnalyst}
	student    = Actor{UserID: 20, Role: RoleStudent}
	student2   = Actor{UserID: 21, Role: RoleStudent}
)

// spec is one given/when/then case: given events, when a command, then
// either exactly these events (none when then is nil), or an error matching
// err (an *Error sentinel such as ErrForbidden, or errInternalMarker) that
// names exactly fields when fields is set.
type spec[C any] struct {
	name   string
	given  []Event
	when   C
	then   []Event
	err    error
	fields []string
}

// errInternalMarker in spec.err expects a plain (INTERNAL) error: the
// application built the command wrongly.
var errInternalMarker = errors.New("internal")

var snakeCase = regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)

// runSpecs runs every case against d and returns the event types the cases
// decided, so the caller can check that every event of the aggregate is covered.
func runSpecs[S, C any](t *testing.T, d Decider[S, C], specs []spec[C]) map[string]bool {
	t.Helper()
	decided := map[string]bool{}
	names := map[string]bool{}
	for _, sp := range specs {
		if !snakeCase.MatchString(sp.name) || names[sp.name] {
			t.Errorf("case name %q is not unique snake_case", sp.name)
		}
		names[sp.name] = true
		for _, e := range sp.then {
			decided[e.EventType()] = true
		}
		t.Run(sp.name, func(t *testing.T) {
			state := d.Fold(sp.given)
			got, err := d.Decide(state, sp.when)
			if sp.err != nil {
				checkRefusal(t, err, sp.err, sp.fields)
				if len(got) != 0 {
					t.Fatalf("a refused command decided events: %#v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected refusal: %v", err)
			}
			if len(got) != len(sp.then) || (len(got) > 0 && !reflect.DeepEqual(got, sp.then)) {
				t.Fatalf("events:\n got %#v\nwant %#v", got, sp.then)
			}
			for _, e := range got {
				roundTrip(t, e)
			}
			// The decided events must fold onto the state without trouble.
			d.Fold(append(slices.Clone(sp.given), got...))
		})
	}
	return decided
}

func checkRefusal(t *testing.T, err, want error, fields []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want refusal %v, got none", want)
	}
	if want == errInternalMarker {
		if ErrorCode(err) != CodeInternal {
			t.Fatalf("want an internal error, got %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("want %v, got %v", want, err)
	}
	if fields == nil {
		return
	}
	var de *Error
	errors.As(err, &de)
	var got []string
	for k := range de.Details {
		got = append(got, k)
	}
	sort.Strings(got)
	w := slices.Clone(fields)
	sort.Strings(w)
	if !slices.Equal(got, w) {
		t.Fatalf("invalid fields: got %v, want %v (%v)", got, w, de.Details)
	}
}

// roundTrip checks that an event survives the event store: JSON encoding,
// then DecodeEvent by its registered type name.
func roundTrip(t *testing.T, e Event) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("marshal %T: %v", e, err)
	}
	back, err := DecodeEvent(e.EventType(), data)
	if err != nil {
		t.Fatalf("decode %s: %v", e.EventType(), err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Fatalf("%s does not survive JSON:\n got %#v\nwant %#v\n%s", e.EventType(), back, e, data)
	}
}

// requireCovered fails unless every listed event type was decided by some case.
func requireCovered(t *testing.T, decided map[string]bool, types ...string) {
	t.Helper()
	for _, typ := range types {
		if !decided[typ] {
			t.Errorf("no case decides %s", typ)
		}
		if !slices.Contains(EventTypes(), typ) {
			t.Errorf("%s is not registered", typ)
		}
	}
}

func strp(s string) *string { return &s }

func runes(n int) string {
	b := make([]rune, n)
	for i := range b {
		b[i] = '가'
	}
	return string(b)
}
