package analytics

import (
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockstep/lockstep/domain"
)

// xAPI 1.0.3 export. Each classroom event that means something to a learning
// record store becomes one statement:
//
//	SessionStarted          instructor  initialized  session
//	StepChanged             instructor  launched     subtask
//	SessionPaused/Resumed   instructor  suspended/resumed session
//	SessionEnded            instructor  terminated   session
//	ParticipantJoined       student     attended     session
//	ParticipantDisconnected student     exited       session
//	ParticipantReconnected  student     resumed      session
//	StudentEnrolled         student     registered   lecture
//	SubtaskStarted          student     attempted    subtask
//	SubtaskCompleted        student     completed    subtask (result.completion)
//	HelpRequested           student     asked        help request
//	HelpProvided            instructor or the analyzer  responded  help request (result.response)
//	HelpFeedbackGiven       student     commented    help request (result.score 1..5)
//
// SessionOpened, HelpAnalyzed and HelpEscalated have no statement. Actors are
// accounts (homePage = the server's base URL, name = the user id; no emails,
// no names), the analyzer is the account "analyzer". Object ids are IRIs
// under <base>/xapi/activities/. The statement id is a UUIDv5 of the event
// id, so exporting twice gives the same statements.

// XAPINamespace is the UUIDv5 namespace of statement ids and registrations.
var XAPINamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://lockstep.dev/xapi"))

// ADL verb ids.
const (
	verbBase = "http://adlnet.gov/expapi/verbs/"
	actBase  = "http://adlnet.gov/expapi/activities/"
	// DefinitionLanguage tags activity names (the product's language).
	DefinitionLanguage = "ko-KR"
)

// Statement is an xAPI 1.0.3 statement.
type Statement struct {
	ID        string    `json:"id"`
	Actor     Agent     `json:"actor"`
	Verb      Verb      `json:"verb"`
	Object    Activity  `json:"object"`
	Result    *Result   `json:"result,omitempty"`
	Context   Context   `json:"context"`
	Timestamp string    `json:"timestamp"`
	time      time.Time // for sorting in tests
}

// Agent is an xAPI Agent identified by an account.
type Agent struct {
	ObjectType string  `json:"objectType"`
	Account    Account `json:"account"`
}

// Account is an xAPI account IFI.
type Account struct {
	HomePage string `json:"homePage"`
	Name     string `json:"name"`
}

// Verb is an xAPI verb.
type Verb struct {
	ID      string            `json:"id"`
	Display map[string]string `json:"display"`
}

// Activity is an xAPI Activity.
type Activity struct {
	ObjectType string              `json:"objectType"`
	ID         string              `json:"id"`
	Definition *ActivityDefinition `json:"definition,omitempty"`
}

// ActivityDefinition describes an Activity.
type ActivityDefinition struct {
	Name map[string]string `json:"name,omitempty"`
	Type string            `json:"type,omitempty"`
}

// Result is an xAPI result.
type Result struct {
	Completion *bool  `json:"completion,omitempty"`
	Response   string `json:"response,omitempty"`
	Score      *Score `json:"score,omitempty"`
}

// Score is an xAPI score.
type Score struct {
	Scaled float64 `json:"scaled"`
	Raw    float64 `json:"raw"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Context is an xAPI context.
type Context struct {
	Registration      string             `json:"registration"`
	Instructor        *Agent             `json:"instructor,omitempty"`
	ContextActivities *ContextActivities `json:"contextActivities,omitempty"`
	Platform          string             `json:"platform"`
	Extensions        map[string]any     `json:"extensions,omitempty"`
}

// ContextActivities are the activities around the object.
type ContextActivities struct {
	Parent   []Activity `json:"parent,omitempty"`
	Grouping []Activity `json:"grouping,omitempty"`
}

// XAPI turns one classroom's events into statements.
type XAPI struct {
	cl    *Classroom
	base  string
	tasks map[int64]int64 // subtask → task, as events told it
	helps map[int64]helpRef
}

type helpRef struct{ subtask, task int64 }

// NewXAPI returns the exporter of classroom cl; base is the server's public
// base URL (no trailing slash).
func NewXAPI(cl *Classroom, base string) *XAPI {
	return &XAPI{cl: cl, base: strings.TrimRight(base, "/"), tasks: map[int64]int64{}, helps: map[int64]helpRef{}}
}

// Registration is the classroom's context.registration: a UUIDv5 of its session id.
func Registration(sessionID int64) uuid.UUID {
	return uuid.NewSHA1(XAPINamespace, []byte("session:"+itoa(sessionID)))
}

// StatementID is the statement id of an event: a UUIDv5 of the event id.
func StatementID(eventID uuid.UUID) uuid.UUID { return uuid.NewSHA1(XAPINamespace, eventID[:]) }

func (x *XAPI) agent(userID int64) Agent {
	return Agent{ObjectType: "Agent", Account: Account{HomePage: x.base, Name: itoa(userID)}}
}

func (x *XAPI) activity(kind string, id int64, typ, name string) Activity {
	a := Activity{ObjectType: "Activity", ID: x.base + "/xapi/activities/" + kind + "/" + itoa(id), Definition: &ActivityDefinition{Type: actBase + typ}}
	if name != "" {
		a.Definition.Name = map[string]string{DefinitionLanguage: name}
	}
	return a
}

func (x *XAPI) session() Activity {
	return x.activity("sessions", x.cl.SessionID, "meeting", x.cl.Title)
}
func (x *XAPI) lecture() Activity {
	return x.activity("lectures", x.cl.LectureID, "course", x.cl.LectureTitle)
}
func (x *XAPI) task(id int64) Activity { return x.activity("tasks", id, "module", "") }
func (x *XAPI) subtask(id int64, title string) Activity {
	return x.activity("subtasks", id, "lesson", title)
}
func (x *XAPI) help(id int64) Activity {
	return x.activity("help-requests", id, "question", "")
}

func verb(name string) Verb {
	return Verb{ID: verbBase + name, Display: map[string]string{"en-US": name}}
}

// around is the context activities of an object inside a subtask (or, with
// subtask 0, of the session itself).
func (x *XAPI) around(subtask, task int64, parentSubtask bool) *ContextActivities {
	ca := &ContextActivities{}
	switch {
	case parentSubtask && subtask != 0:
		ca.Parent = []Activity{x.subtask(subtask, "")}
		if task != 0 {
			ca.Grouping = append(ca.Grouping, x.task(task))
		}
	case task != 0:
		ca.Parent = []Activity{x.task(task)}
	default:
		ca.Parent = []Activity{x.lecture()}
		ca.Grouping = []Activity{x.session()}
		return ca
	}
	ca.Grouping = append(ca.Grouping, x.lecture(), x.session())
	return ca
}

// Statement returns the statement of event e; ok is false for events that
// have none.
func (x *XAPI) Statement(e Event) (st Statement, ok bool) {
	payload, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return st, false // not a domain event: no statement
	}
	instructor := x.agent(x.cl.InstructorID)
	st = Statement{
		ID:        StatementID(e.ID).String(),
		Timestamp: e.OccurredAt.UTC().Format(time.RFC3339Nano),
		Context: Context{
			Registration: Registration(x.cl.SessionID).String(),
			Instructor:   &instructor,
			Platform:     "Lockstep",
			Extensions: map[string]any{
				x.base + "/xapi/extensions/event-position": e.Position,
				x.base + "/xapi/extensions/event-type":     e.Type,
			},
		},
		time: e.OccurredAt,
	}
	ctrl := func(v string) {
		st.Actor, st.Verb, st.Object = instructor, verb(v), x.session()
		st.Context.ContextActivities = x.around(0, 0, false)
	}
	switch ev := payload.(type) {
	case domain.SessionStarted:
		x.tasks[ev.CurrentSubtask.ID] = ev.CurrentSubtask.TaskID
		ctrl("initialized")
	case domain.StepChanged:
		x.tasks[ev.CurrentSubtask.ID] = ev.CurrentSubtask.TaskID
		st.Actor, st.Verb, st.Object = instructor, verb("launched"), x.subtask(ev.CurrentSubtask.ID, ev.CurrentSubtask.Title)
		st.Context.ContextActivities = x.around(0, ev.CurrentSubtask.TaskID, false)
	case domain.SessionPaused:
		ctrl("suspended")
	case domain.SessionResumed:
		ctrl("resumed")
	case domain.SessionEnded:
		ctrl("terminated")
	case domain.ParticipantJoined:
		st.Actor, st.Verb, st.Object = x.agent(ev.UserID), verb("attended"), x.session()
		st.Context.ContextActivities = x.around(0, 0, false)
	case domain.ParticipantDisconnected:
		st.Actor, st.Verb, st.Object = x.agent(ev.UserID), verb("exited"), x.session()
		st.Context.ContextActivities = x.around(0, 0, false)
	case domain.ParticipantReconnected:
		st.Actor, st.Verb, st.Object = x.agent(ev.UserID), verb("resumed"), x.session()
		st.Context.ContextActivities = x.around(0, 0, false)
	case domain.StudentEnrolled:
		st.Actor, st.Verb, st.Object = x.agent(ev.UserID), verb("registered"), x.lecture()
		st.Context.ContextActivities = &ContextActivities{Grouping: []Activity{x.session()}}
	case domain.SubtaskStarted:
		x.tasks[ev.SubtaskID] = ev.TaskID
		st.Actor, st.Verb, st.Object = x.agent(ev.UserID), verb("attempted"), x.subtask(ev.SubtaskID, ev.SubtaskTitle)
		st.Context.ContextActivities = x.around(0, ev.TaskID, false)
	case domain.SubtaskCompleted:
		x.tasks[ev.SubtaskID] = ev.TaskID
		done := true
		st.Actor, st.Verb, st.Object = x.agent(ev.UserID), verb("completed"), x.subtask(ev.SubtaskID, ev.SubtaskTitle)
		st.Result = &Result{Completion: &done}
		st.Context.ContextActivities = x.around(0, ev.TaskID, false)
	case domain.HelpRequested:
		x.helps[ev.HelpRequestID] = helpRef{ev.SubtaskID, ev.TaskID}
		st.Actor, st.Verb, st.Object = x.agent(ev.UserID), verb("asked"), x.help(ev.HelpRequestID)
		st.Context.ContextActivities = x.around(ev.SubtaskID, ev.TaskID, true)
	case domain.HelpProvided:
		ref := x.helps[ev.HelpRequestID]
		if ref.subtask == 0 {
			ref = helpRef{ev.SubtaskID, x.tasks[ev.SubtaskID]}
		}
		actor := Agent{ObjectType: "Agent", Account: Account{HomePage: x.base, Name: "analyzer"}}
		if ev.Responder == domain.ResponderInstructor && ev.ResponderID != 0 {
			actor = x.agent(ev.ResponderID)
		}
		st.Actor, st.Verb, st.Object = actor, verb("responded"), x.help(ev.HelpRequestID)
		if ev.HelpContent != "" {
			st.Result = &Result{Response: ev.HelpContent}
		}
		st.Context.ContextActivities = x.around(ref.subtask, ref.task, true)
	case domain.HelpFeedbackGiven:
		ref := x.helps[ev.HelpRequestID]
		lo, hi := min(1, float64(ev.Rating)), max(5, float64(ev.Rating))
		st.Actor, st.Verb, st.Object = x.agent(ev.UserID), verb("commented"), x.help(ev.HelpRequestID)
		st.Result = &Result{Response: ev.FeedbackText, Score: &Score{Raw: float64(ev.Rating), Min: lo, Max: hi, Scaled: (float64(ev.Rating) - lo) / (hi - lo)}}
		st.Context.ContextActivities = x.around(ref.subtask, ref.task, true)
	default:
		return st, false
	}
	if st.Actor.Account.Name == "" || st.Actor.Account.Name == "0" {
		return st, false // no one to attribute it to (never written so)
	}
	return st, true
}
