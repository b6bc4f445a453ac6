package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"sync"
)

// Event is a domain event: a fact, named in the past tense. Its JSON encoding
// (snake_case fields) is what the event store keeps as the event's data, and
// EventType is the stored type name (e.g. "StepChanged").
type Event interface {
	EventType() string
}

// Decider is the shape of every aggregate: Decide turns a command into events
// given the current state (or refuses it with an *Error), Evolve folds one
// event into the state. Both are pure.
type Decider[S any, C any] struct {
	Initial func() S
	Decide  func(state S, cmd C) ([]Event, error)
	Evolve  func(state S, ev Event) S
}

// Fold replays events onto the decider's initial state.
func (d Decider[S, C]) Fold(events []Event) S {
	s := d.Initial()
	for _, e := range events {
		s = d.Evolve(s, e)
	}
	return s
}

var (
	registryMu sync.RWMutex
	registry   = map[string]reflect.Type{}
)

// RegisterEvent makes event type T decodable by DecodeEvent. T is a struct
// type whose EventType has a value receiver. Each aggregate registers its
// events in an init function; a duplicate name panics.
func RegisterEvent[T Event]() {
	var zero T
	name := zero.EventType()
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("domain: event type registered twice: " + name)
	}
	registry[name] = reflect.TypeFor[T]()
}

// DecodeEvent decodes stored event data of the given type into its value type.
func DecodeEvent(eventType string, data []byte) (Event, error) {
	registryMu.RLock()
	t, ok := registry[eventType]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", eventType)
	}
	ptr := reflect.New(t)
	if err := json.Unmarshal(data, ptr.Interface()); err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return ptr.Elem().Interface().(Event), nil
}

// EventTypes lists the registered event type names, sorted.
func EventTypes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
