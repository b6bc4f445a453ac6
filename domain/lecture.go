package domain

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// TargetAction is what the student does on a subtask's step.
type TargetAction string

// The contract's target actions.
const (
	ActionClick     TargetAction = "CLICK"
	ActionLongClick TargetAction = "LONG_CLICK"
	ActionScroll    TargetAction = "SCROLL"
	ActionSwipe     TargetAction = "SWIPE"
	ActionTextInput TargetAction = "TEXT_INPUT"
	ActionBack      TargetAction = "BACK"
	ActionHome      TargetAction = "HOME"
	ActionOpenApp   TargetAction = "OPEN_APP"
	ActionOther     TargetAction = "OTHER"
)

// Valid reports whether a is one of the contract's target actions.
func (a TargetAction) Valid() bool {
	switch a {
	case ActionClick, ActionLongClick, ActionScroll, ActionSwipe, ActionTextInput,
		ActionBack, ActionHome, ActionOpenApp, ActionOther:
		return true
	}
	return false
}

// Task is one task of a lecture's plan, as the plan queries return it (a copy).
type Task struct {
	ID          int64
	LectureID   int64
	Title       string
	Description string
	OrderIndex  int
}

// Subtask is one step of a lecture's plan, as the plan queries return it (a copy).
type Subtask struct {
	ID                int64
	TaskID            int64
	LectureID         int64
	Title             string
	Description       string
	OrderIndex        int
	TargetAction      TargetAction
	TargetElementHint string
	GuideText         string
	VoiceGuideText    string
}

// Ref returns the reference progress and help commands carry.
func (s Subtask) Ref() SubtaskRef {
	return SubtaskRef{ID: s.ID, TaskID: s.TaskID, LectureID: s.LectureID, Title: s.Title}
}

// Step returns the snapshot of the subtask that session events carry.
func (s Subtask) Step() StepSubtask {
	return StepSubtask{ID: s.ID, TaskID: s.TaskID, Title: s.Title, GuideText: s.GuideText, VoiceGuideText: s.VoiceGuideText}
}

// SubtaskRef identifies a subtask with what progress and help events carry
// about it. The application layer looks it up (read model or lecture state).
type SubtaskRef struct {
	ID        int64
	TaskID    int64
	LectureID int64
	Title     string
}

// Lecture is the state of a lecture-{id} stream: the lecture and its plan.
// The zero value is a lecture that does not exist yet.
type Lecture struct {
	id           int64
	instructorID int64
	title        string
	description  string
	thumbnailURL string
	active       bool
	createdAt    time.Time
	updatedAt    time.Time
	tasks        []Task    // ordered by (OrderIndex, ID)
	subtasks     []Subtask // live subtasks, ordered by (OrderIndex, ID)
	removed      []Subtask // removed subtasks as they were when removed
}

// Exists reports whether the lecture has been created.
func (l Lecture) Exists() bool { return l.id != 0 }

// ID is the lecture's id.
func (l Lecture) ID() int64 { return l.id }

// InstructorID is the owning instructor's user id.
func (l Lecture) InstructorID() int64 { return l.instructorID }

// Title is the lecture's title.
func (l Lecture) Title() string { return l.title }

// Description is the lecture's description.
func (l Lecture) Description() string { return l.description }

// ThumbnailURL is the lecture's thumbnail URL ("" when none).
func (l Lecture) ThumbnailURL() string { return l.thumbnailURL }

// IsActive reports whether the lecture is active (listed, open for sessions).
func (l Lecture) IsActive() bool { return l.active }

// CreatedAt is when the lecture was created.
func (l Lecture) CreatedAt() time.Time { return l.createdAt }

// UpdatedAt is when the lecture or its plan last changed.
func (l Lecture) UpdatedAt() time.Time { return l.updatedAt }

// CanEdit reports whether a may change the lecture and its plan: the owning
// instructor while still an INSTRUCTOR, or an admin (see Actor.Manages).
func (l Lecture) CanEdit(a Actor) bool {
	return a.IsAdmin() || (l.id != 0 && a.Manages(l.instructorID))
}

// Tasks returns the lecture's tasks ordered by (order_index, id).
func (l Lecture) Tasks() []Task { return slices.Clone(l.tasks) }

// Task returns the task with id.
func (l Lecture) Task(id int64) (Task, bool) {
	i := slices.IndexFunc(l.tasks, func(t Task) bool { return t.ID == id })
	if i < 0 {
		return Task{}, false
	}
	return l.tasks[i], true
}

// Subtasks returns the live subtasks of task taskID ordered by (order_index, id).
func (l Lecture) Subtasks(taskID int64) []Subtask {
	var out []Subtask
	for _, s := range l.subtasks {
		if s.TaskID == taskID {
			out = append(out, s)
		}
	}
	return out
}

// Plan returns every live subtask in lecture order: tasks by (order_index,
// id), and within a task its subtasks by (order_index, id).
func (l Lecture) Plan() []Subtask {
	out := make([]Subtask, 0, len(l.subtasks))
	for _, t := range l.tasks {
		out = append(out, l.Subtasks(t.ID)...)
	}
	return out
}

// SubtaskCount is the number of live subtasks in the plan.
func (l Lecture) SubtaskCount() int { return len(l.subtasks) }

// Subtask returns the live subtask with id; a removed one is not found.
func (l Lecture) Subtask(id int64) (Subtask, bool) {
	i := slices.IndexFunc(l.subtasks, func(s Subtask) bool { return s.ID == id })
	if i < 0 {
		return Subtask{}, false
	}
	return l.subtasks[i], true
}

// RemovedSubtask returns a subtask that was removed from the plan, as it was then.
func (l Lecture) RemovedSubtask(id int64) (Subtask, bool) {
	i := slices.IndexFunc(l.removed, func(s Subtask) bool { return s.ID == id })
	if i < 0 {
		return Subtask{}, false
	}
	return l.removed[i], true
}

// TaskOfSubtask returns the task a live subtask belongs to.
func (l Lecture) TaskOfSubtask(subtaskID int64) (Task, bool) {
	s, ok := l.Subtask(subtaskID)
	if !ok {
		return Task{}, false
	}
	return l.Task(s.TaskID)
}

// FirstSubtask returns the first live subtask in lecture order.
func (l Lecture) FirstSubtask() (Subtask, bool) {
	plan := l.Plan()
	if len(plan) == 0 {
		return Subtask{}, false
	}
	return plan[0], true
}

// NextSubtask returns the live subtask that follows subtask afterID in
// lecture order, across tasks. afterID may be a removed subtask: the answer
// is then the first live subtask after the place it had. ok is false when
// nothing follows or afterID was never part of the lecture.
func (l Lecture) NextSubtask(afterID int64) (Subtask, bool) {
	after, ok := l.Subtask(afterID)
	if !ok {
		if after, ok = l.RemovedSubtask(afterID); !ok {
			return Subtask{}, false
		}
	}
	if _, ok := l.Task(after.TaskID); !ok {
		return Subtask{}, false
	}
	key := l.orderKey(after)
	for _, s := range l.Plan() {
		if compareKeys(key, l.orderKey(s)) < 0 {
			return s, true
		}
	}
	return Subtask{}, false
}

type planKey struct {
	taskRank int
	order    int
	id       int64
}

func (l Lecture) orderKey(s Subtask) planKey {
	rank := slices.IndexFunc(l.tasks, func(t Task) bool { return t.ID == s.TaskID })
	return planKey{rank, s.OrderIndex, s.ID}
}

func compareKeys(a, b planKey) int {
	return cmp.Or(cmp.Compare(a.taskRank, b.taskRank), cmp.Compare(a.order, b.order), cmp.Compare(a.id, b.id))
}

// LectureCommand is a command to the lecture aggregate.
type LectureCommand interface{ lectureCommand() }

// CreateLecture creates the lecture; the actor (INSTRUCTOR or ADMIN) owns it.
type CreateLecture struct {
	Actor        Actor
	At           time.Time
	LectureID    int64 // allocated by the application
	Title        string
	Description  string
	ThumbnailURL string
}

// UpdateLecture changes any subset of the lecture's fields (nil = unchanged).
type UpdateLecture struct {
	Actor        Actor
	At           time.Time
	Title        *string
	Description  *string
	ThumbnailURL *string
	IsActive     *bool
}

// DeactivateLecture makes the lecture inactive (DELETE); its history stays.
type DeactivateLecture struct {
	Actor Actor
	At    time.Time
}

// AddTask adds a task to the lecture.
type AddTask struct {
	Actor       Actor
	At          time.Time
	TaskID      int64 // allocated by the application
	Title       string
	Description string
	OrderIndex  int
}

// UpdateTask changes any subset of a task's fields (nil = unchanged).
type UpdateTask struct {
	Actor       Actor
	At          time.Time
	TaskID      int64
	Title       *string
	Description *string
	OrderIndex  *int
}

// AddSubtask adds a subtask to one of the lecture's tasks. An empty
// TargetAction means OTHER.
type AddSubtask struct {
	Actor             Actor
	At                time.Time
	TaskID            int64
	SubtaskID         int64 // allocated by the application
	Title             string
	Description       string
	OrderIndex        int
	TargetAction      TargetAction
	TargetElementHint string
	GuideText         string
	VoiceGuideText    string
}

// UpdateSubtask changes any subset of a subtask's fields (nil = unchanged).
type UpdateSubtask struct {
	Actor             Actor
	At                time.Time
	SubtaskID         int64
	Title             *string
	Description       *string
	OrderIndex        *int
	TargetAction      *TargetAction
	TargetElementHint *string
	GuideText         *string
	VoiceGuideText    *string
}

// RemoveSubtask removes a subtask from the plan (it stays in history).
type RemoveSubtask struct {
	Actor     Actor
	At        time.Time
	SubtaskID int64
}

func (CreateLecture) lectureCommand()     {}
func (UpdateLecture) lectureCommand()     {}
func (DeactivateLecture) lectureCommand() {}
func (AddTask) lectureCommand()           {}
func (UpdateTask) lectureCommand()        {}
func (AddSubtask) lectureCommand()        {}
func (UpdateSubtask) lectureCommand()     {}
func (RemoveSubtask) lectureCommand()     {}

// LectureCreated: a lecture was created (active).
type LectureCreated struct {
	LectureID    int64     `json:"lecture_id"`
	InstructorID int64     `json:"instructor_id"`
	Title        string    `json:"title"`
	Description  string    `json:"description"`
	ThumbnailURL string    `json:"thumbnail_url"`
	CreatedAt    time.Time `json:"created_at"`
}

// LectureUpdated: some of the lecture's fields changed; only the changed ones are set.
type LectureUpdated struct {
	LectureID    int64     `json:"lecture_id"`
	Title        *string   `json:"title,omitempty"`
	Description  *string   `json:"description,omitempty"`
	ThumbnailURL *string   `json:"thumbnail_url,omitempty"`
	IsActive     *bool     `json:"is_active,omitempty"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// LectureDeactivated: the lecture was made inactive (DELETE).
type LectureDeactivated struct {
	LectureID     int64     `json:"lecture_id"`
	DeactivatedAt time.Time `json:"deactivated_at"`
}

// TaskAdded: a task was added to the lecture.
type TaskAdded struct {
	LectureID   int64     `json:"lecture_id"`
	TaskID      int64     `json:"task_id"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	OrderIndex  int       `json:"order_index"`
	AddedAt     time.Time `json:"added_at"`
}

// TaskUpdated: a task changed; it carries the task's full new fields.
type TaskUpdated struct {
	LectureID   int64     `json:"lecture_id"`
	TaskID      int64     `json:"task_id"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	OrderIndex  int       `json:"order_index"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// SubtaskAdded: a subtask was added to a task.
type SubtaskAdded struct {
	LectureID         int64        `json:"lecture_id"`
	TaskID            int64        `json:"task_id"`
	SubtaskID         int64        `json:"subtask_id"`
	Title             string       `json:"title"`
	Description       string       `json:"description"`
	OrderIndex        int          `json:"order_index"`
	TargetAction      TargetAction `json:"target_action"`
	TargetElementHint string       `json:"target_element_hint"`
	GuideText         string       `json:"guide_text"`
	VoiceGuideText    string       `json:"voice_guide_text"`
	AddedAt           time.Time    `json:"added_at"`
}

// SubtaskUpdated: a subtask changed; it carries the subtask's full new fields.
type SubtaskUpdated struct {
	LectureID         int64        `json:"lecture_id"`
	TaskID            int64        `json:"task_id"`
	SubtaskID         int64        `json:"subtask_id"`
	Title             string       `json:"title"`
	Description       string       `json:"description"`
	OrderIndex        int          `json:"order_index"`
	TargetAction      TargetAction `json:"target_action"`
	TargetElementHint string       `json:"target_element_hint"`
	GuideText         string       `json:"guide_text"`
	VoiceGuideText    string       `json:"voice_guide_text"`
	UpdatedAt         time.Time    `json:"updated_at"`
}

// SubtaskRemoved: a subtask left the plan (its history stays).
type SubtaskRemoved struct {
	LectureID int64     `json:"lecture_id"`
	TaskID    int64     `json:"task_id"`
	SubtaskID int64     `json:"subtask_id"`
	RemovedAt time.Time `json:"removed_at"`
}

// EventType implements Event.
func (LectureCreated) EventType() string { return "LectureCreated" }

// EventType implements Event.
func (LectureUpdated) EventType() string { return "LectureUpdated" }

// EventType implements Event.
func (LectureDeactivated) EventType() string { return "LectureDeactivated" }

// EventType implements Event.
func (TaskAdded) EventType() string { return "TaskAdded" }

// EventType implements Event.
func (TaskUpdated) EventType() string { return "TaskUpdated" }

// EventType implements Event.
func (SubtaskAdded) EventType() string { return "SubtaskAdded" }

// EventType implements Event.
func (SubtaskUpdated) EventType() string { return "SubtaskUpdated" }

// EventType implements Event.
func (SubtaskRemoved) EventType() string { return "SubtaskRemoved" }

func init() {
	RegisterEvent[LectureCreated]()
	RegisterEvent[LectureUpdated]()
	RegisterEvent[LectureDeactivated]()
	RegisterEvent[TaskAdded]()
	RegisterEvent[TaskUpdated]()
	RegisterEvent[SubtaskAdded]()
	RegisterEvent[SubtaskUpdated]()
	RegisterEvent[SubtaskRemoved]()
}

// LectureDecider is the lecture aggregate (stream lecture-{id}).
//
// Refusals, checked in this order: NOT_FOUND (lecture, task or subtask
// unknown or removed), FORBIDDEN (not the owner or an admin; creating needs
// INSTRUCTOR or ADMIN), INVALID_REQUEST (fields), CONFLICT (an id already used).
// An update that changes nothing, and deactivating an inactive lecture,
// decide no events.
var LectureDecider = Decider[Lecture, LectureCommand]{
	Initial: func() Lecture { return Lecture{} },
	Decide:  decideLecture,
	Evolve:  evolveLecture,
}

func decideLecture(l Lecture, c LectureCommand) ([]Event, error) {
	if cc, ok := c.(CreateLecture); ok {
		return l.create(cc)
	}
	if !l.Exists() {
		return nil, NotFound("lecture")
	}
	switch c := c.(type) {
	case UpdateLecture:
		return l.update(c)
	case DeactivateLecture:
		if !l.CanEdit(c.Actor) {
			return nil, errNotOwner
		}
		if !l.active {
			return nil, nil
		}
		return []Event{LectureDeactivated{LectureID: l.id, DeactivatedAt: c.At}}, nil
	case AddTask:
		return l.addTask(c)
	case UpdateTask:
		return l.updateTask(c)
	case AddSubtask:
		return l.addSubtask(c)
	case UpdateSubtask:
		return l.updateSubtask(c)
	case RemoveSubtask:
		s, ok := l.Subtask(c.SubtaskID)
		if !ok {
			return nil, NotFound("subtask")
		}
		if !l.CanEdit(c.Actor) {
			return nil, errNotOwner
		}
		return []Event{SubtaskRemoved{LectureID: l.id, TaskID: s.TaskID, SubtaskID: s.ID, RemovedAt: c.At}}, nil
	}
	return nil, errInternal("unknown lecture command %T", c)
}

var errNotOwner = Forbidden("only the lecture's instructor may change it")

// edit checks an edit of a task or subtask (what) that exists when found:
// NOT_FOUND when it does not, FORBIDDEN when a may not edit the lecture;
// else it returns the fields to check the edit's values into.
func (l Lecture) edit(a Actor, found bool, what string) (fields, error) {
	if !found {
		return nil, NotFound(what)
	}
	if !l.CanEdit(a) {
		return nil, errNotOwner
	}
	return fields{}, nil
}

func (l Lecture) create(c CreateLecture) ([]Event, error) {
	if c.LectureID <= 0 {
		return nil, errInternal("CreateLecture without a lecture id")
	}
	if c.Actor.Role != RoleInstructor && !c.Actor.IsAdmin() {
		return nil, Forbidden("only instructors create lectures")
	}
	f := fields{}
	f.requiredText("title", c.Title, MaxTitleLen)
	f.optionalText("description", c.Description, MaxDescriptionLen)
	f.httpURL("thumbnail_url", c.ThumbnailURL)
	if err := f.err(); err != nil {
		return nil, err
	}
	if l.Exists() {
		return nil, Errorf(CodeConflict, "lecture %d already exists", c.LectureID)
	}
	return []Event{LectureCreated{
		LectureID: c.LectureID, InstructorID: c.Actor.UserID,
		Title: strings.TrimSpace(c.Title), Description: c.Description, ThumbnailURL: c.ThumbnailURL,
		CreatedAt: c.At,
	}}, nil
}

func (l Lecture) update(c UpdateLecture) ([]Event, error) {
	if !l.CanEdit(c.Actor) {
		return nil, errNotOwner
	}
	f := fields{}
	if c.Title != nil {
		f.requiredText("title", *c.Title, MaxTitleLen)
	}
	if c.Description != nil {
		f.optionalText("description", *c.Description, MaxDescriptionLen)
	}
	if c.ThumbnailURL != nil {
		f.httpURL("thumbnail_url", *c.ThumbnailURL)
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	ev := LectureUpdated{LectureID: l.id, UpdatedAt: c.At}
	changed := false
	if c.Title != nil && strings.TrimSpace(*c.Title) != l.title {
		ev.Title, changed = ptr(strings.TrimSpace(*c.Title)), true
	}
	if c.Description != nil && *c.Description != l.description {
		ev.Description, changed = ptr(*c.Description), true
	}
	if c.ThumbnailURL != nil && *c.ThumbnailURL != l.thumbnailURL {
		ev.ThumbnailURL, changed = ptr(*c.ThumbnailURL), true
	}
	if c.IsActive != nil && *c.IsActive != l.active {
		ev.IsActive, changed = ptr(*c.IsActive), true
	}
	if !changed {
		return nil, nil
	}
	return []Event{ev}, nil
}

func (l Lecture) addTask(c AddTask) ([]Event, error) {
	if c.TaskID <= 0 {
		return nil, errInternal("AddTask without a task id")
	}
	if !l.CanEdit(c.Actor) {
		return nil, errNotOwner
	}
	f := fields{}
	f.requiredText("title", c.Title, MaxTitleLen)
	f.optionalText("description", c.Description, MaxDescriptionLen)
	f.orderIndex("order_index", c.OrderIndex)
	if err := f.err(); err != nil {
		return nil, err
	}
	if _, dup := l.Task(c.TaskID); dup {
		return nil, Errorf(CodeConflict, "task %d already exists", c.TaskID)
	}
	return []Event{TaskAdded{
		LectureID: l.id, TaskID: c.TaskID, Title: strings.TrimSpace(c.Title),
		Description: c.Description, OrderIndex: c.OrderIndex, AddedAt: c.At,
	}}, nil
}

func (l Lecture) updateTask(c UpdateTask) ([]Event, error) {
	t, ok := l.Task(c.TaskID)
	f, err := l.edit(c.Actor, ok, "task")
	if err != nil {
		return nil, err
	}
	f.planUpdate(c.Title, c.Description, c.OrderIndex)
	if err := f.err(); err != nil {
		return nil, err
	}
	n := t
	setIf(&n.Title, trimPtr(c.Title))
	setIf(&n.Description, c.Description)
	setIf(&n.OrderIndex, c.OrderIndex)
	if n == t {
		return nil, nil
	}
	return []Event{TaskUpdated{
		LectureID: l.id, TaskID: n.ID, Title: n.Title, Description: n.Description,
		OrderIndex: n.OrderIndex, UpdatedAt: c.At,
	}}, nil
}

func (l Lecture) addSubtask(c AddSubtask) ([]Event, error) {
	if c.SubtaskID <= 0 {
		return nil, errInternal("AddSubtask without a subtask id")
	}
	_, ok := l.Task(c.TaskID)
	f, err := l.edit(c.Actor, ok, "task")
	if err != nil {
		return nil, err
	}
	action := c.TargetAction
	if action == "" {
		action = ActionOther
	}
	f.requiredText("title", c.Title, MaxTitleLen)
	f.optionalText("description", c.Description, MaxDescriptionLen)
	f.orderIndex("order_index", c.OrderIndex)
	f.targetAction("target_action", action)
	f.optionalText("target_element_hint", c.TargetElementHint, MaxElementHintLen)
	f.optionalText("guide_text", c.GuideText, MaxGuideTextLen)
	f.optionalText("voice_guide_text", c.VoiceGuideText, MaxGuideTextLen)
	if err := f.err(); err != nil {
		return nil, err
	}
	_, live := l.Subtask(c.SubtaskID)
	_, gone := l.RemovedSubtask(c.SubtaskID)
	if live || gone {
		return nil, Errorf(CodeConflict, "subtask %d already exists", c.SubtaskID)
	}
	return []Event{SubtaskAdded{
		LectureID: l.id, TaskID: c.TaskID, SubtaskID: c.SubtaskID,
		Title: strings.TrimSpace(c.Title), Description: c.Description, OrderIndex: c.OrderIndex,
		TargetAction: action, TargetElementHint: c.TargetElementHint,
		GuideText: c.GuideText, VoiceGuideText: c.VoiceGuideText, AddedAt: c.At,
	}}, nil
}

func (l Lecture) updateSubtask(c UpdateSubtask) ([]Event, error) {
	s, ok := l.Subtask(c.SubtaskID)
	f, err := l.edit(c.Actor, ok, "subtask")
	if err != nil {
		return nil, err
	}
	f.planUpdate(c.Title, c.Description, c.OrderIndex)
	if c.TargetAction != nil {
		f.targetAction("target_action", *c.TargetAction)
	}
	if c.TargetElementHint != nil {
		f.optionalText("target_element_hint", *c.TargetElementHint, MaxElementHintLen)
	}
	if c.GuideText != nil {
		f.optionalText("guide_text", *c.GuideText, MaxGuideTextLen)
	}
	if c.VoiceGuideText != nil {
		f.optionalText("voice_guide_text", *c.VoiceGuideText, MaxGuideTextLen)
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	n := s
	setIf(&n.Title, trimPtr(c.Title))
	setIf(&n.Description, c.Description)
	setIf(&n.OrderIndex, c.OrderIndex)
	setIf(&n.TargetAction, c.TargetAction)
	setIf(&n.TargetElementHint, c.TargetElementHint)
	setIf(&n.GuideText, c.GuideText)
	setIf(&n.VoiceGuideText, c.VoiceGuideText)
	if n == s {
		return nil, nil
	}
	return []Event{SubtaskUpdated{
		LectureID: l.id, TaskID: n.TaskID, SubtaskID: n.ID, Title: n.Title, Description: n.Description,
		OrderIndex: n.OrderIndex, TargetAction: n.TargetAction, TargetElementHint: n.TargetElementHint,
		GuideText: n.GuideText, VoiceGuideText: n.VoiceGuideText, UpdatedAt: c.At,
	}}, nil
}

func (f fields) targetAction(name string, a TargetAction) {
	if !a.Valid() {
		f[name] = "must be one of CLICK, LONG_CLICK, SCROLL, SWIPE, TEXT_INPUT, BACK, HOME, OPEN_APP, OTHER"
	}
}

func evolveLecture(l Lecture, ev Event) Lecture {
	switch e := ev.(type) {
	case LectureCreated:
		l.id, l.instructorID = e.LectureID, e.InstructorID
		l.title, l.description, l.thumbnailURL = e.Title, e.Description, e.ThumbnailURL
		l.active = true
		l.createdAt, l.updatedAt = e.CreatedAt, e.CreatedAt
	case LectureUpdated:
		setIf(&l.title, e.Title)
		setIf(&l.description, e.Description)
		setIf(&l.thumbnailURL, e.ThumbnailURL)
		setIf(&l.active, e.IsActive)
		l.updatedAt = e.UpdatedAt
	case LectureDeactivated:
		l.active = false
		l.updatedAt = e.DeactivatedAt
	case TaskAdded:
		l.tasks = withTask(l.tasks, Task{ID: e.TaskID, LectureID: e.LectureID, Title: e.Title, Description: e.Description, OrderIndex: e.OrderIndex})
		l.updatedAt = e.AddedAt
	case TaskUpdated:
		l.tasks = withTask(l.tasks, Task{ID: e.TaskID, LectureID: e.LectureID, Title: e.Title, Description: e.Description, OrderIndex: e.OrderIndex})
		l.updatedAt = e.UpdatedAt
	case SubtaskAdded:
		l.subtasks = withSubtask(l.subtasks, Subtask{
			ID: e.SubtaskID, TaskID: e.TaskID, LectureID: e.LectureID, Title: e.Title, Description: e.Description,
			OrderIndex: e.OrderIndex, TargetAction: e.TargetAction, TargetElementHint: e.TargetElementHint,
			GuideText: e.GuideText, VoiceGuideText: e.VoiceGuideText,
		})
		l.updatedAt = e.AddedAt
	case SubtaskUpdated:
		l.subtasks = withSubtask(l.subtasks, Subtask{
			ID: e.SubtaskID, TaskID: e.TaskID, LectureID: e.LectureID, Title: e.Title, Description: e.Description,
			OrderIndex: e.OrderIndex, TargetAction: e.TargetAction, TargetElementHint: e.TargetElementHint,
			GuideText: e.GuideText, VoiceGuideText: e.VoiceGuideText,
		})
		l.updatedAt = e.UpdatedAt
	case SubtaskRemoved:
		if s, ok := l.Subtask(e.SubtaskID); ok {
			l.removed = append(slices.Clip(l.removed), s)
			l.subtasks = slices.DeleteFunc(slices.Clone(l.subtasks), func(x Subtask) bool { return x.ID == e.SubtaskID })
		}
		l.updatedAt = e.RemovedAt
	}
	return l
}

// withTask returns a new slice with t inserted or replaced, kept in plan order.
func withTask(ts []Task, t Task) []Task {
	out := slices.DeleteFunc(slices.Clone(ts), func(x Task) bool { return x.ID == t.ID })
	out = append(out, t)
	slices.SortFunc(out, func(a, b Task) int {
		return cmp.Or(cmp.Compare(a.OrderIndex, b.OrderIndex), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// withSubtask returns a new slice with s inserted or replaced, kept in order.
func withSubtask(ss []Subtask, s Subtask) []Subtask {
	out := slices.DeleteFunc(slices.Clone(ss), func(x Subtask) bool { return x.ID == s.ID })
	out = append(out, s)
	slices.SortFunc(out, func(a, b Subtask) int {
		return cmp.Or(cmp.Compare(a.OrderIndex, b.OrderIndex), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func ptr[T any](v T) *T { return &v }

// setIf sets *dst to *v when v is not nil.
func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func trimPtr(s *string) *string {
	if s == nil {
		return nil
	}
	return ptr(strings.TrimSpace(*s))
}

// planUpdate checks the title, description and order index an update of a
// task or subtask sets (nil: left as it is).
func (f fields) planUpdate(title, description *string, order *int) {
	if title != nil {
		f.requiredText("title", *title, MaxTitleLen)
	}
	if description != nil {
		f.optionalText("description", *description, MaxDescriptionLen)
	}
	if order != nil {
		f.orderIndex("order_index", *order)
	}
}
