package domain

import "testing"

// The instructor of the test lectures (user 10), demoted by an admin: the
// lecture and the session still name user 10 as their owner.
var (
	demotedToStudent = Actor{UserID: 10, Role: RoleStudent}
	demotedToAnalyst = Actor{UserID: 10, Role: RoleAnalyst}
)

func TestManagesNeedsTheInstructorRoleAndOwnership(t *testing.T) {
	cases := []struct {
		name  string
		actor Actor
		owner int64
		want  bool
	}{
		{"owner_instructor", instructor, 10, true},
		{"admin_owns_nothing_and_manages_everything", admin, 10, true},
		{"admin_of_an_unowned_thing", admin, 0, true},
		{"another_instructor", otherInstr, 10, false},
		{"owner_demoted_to_student", demotedToStudent, 10, false},
		{"owner_demoted_to_analyst", demotedToAnalyst, 10, false},
		{"system", System, 0, false},
		{"instructor_of_an_unowned_thing", Actor{Role: RoleInstructor}, 0, false},
		{"unknown_role", Actor{UserID: 10, Role: "TEACHER"}, 10, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.actor.Manages(c.owner); got != c.want {
				t.Fatalf("%+v.Manages(%d) = %v, want %v", c.actor, c.owner, got, c.want)
			}
		})
	}
}

// A demoted owner is refused every managing command, exactly as a stranger
// is; the same commands by the owner while an INSTRUCTOR are accepted in
// TestLectureDecider, TestSessionDecider and TestHelpDecider.
func TestDemotedOwnerManagesNothing(t *testing.T) {
	created := given(lectureCreated)
	withTask := given(lectureCreated, task100Added)
	withSub := given(lectureCreated, task100Added, sub1000Added)
	five := 5
	for _, who := range []struct {
		name  string
		actor Actor
	}{{"student", demotedToStudent}, {"analyst", demotedToAnalyst}} {
		a := who.actor
		t.Run(who.name, func(t *testing.T) {
			runSpecs(t, LectureDecider, []spec[LectureCommand]{
				{name: "update_own_lecture", given: created,
					when: UpdateLecture{Actor: a, At: at(5), Title: strp("x")}, err: ErrForbidden},
				{name: "deactivate_own_lecture", given: created,
					when: DeactivateLecture{Actor: a, At: at(5)}, err: ErrForbidden},
				{name: "add_task_to_own_lecture", given: created,
					when: AddTask{Actor: a, At: at(5), TaskID: 100, Title: "t", OrderIndex: 1}, err: ErrForbidden},
				{name: "update_task_of_own_lecture", given: withTask,
					when: UpdateTask{Actor: a, At: at(5), TaskID: 100, OrderIndex: &five}, err: ErrForbidden},
				{name: "add_subtask_to_own_lecture", given: withTask,
					when: AddSubtask{Actor: a, At: at(5), TaskID: 100, SubtaskID: 1000, Title: "t", OrderIndex: 1}, err: ErrForbidden},
				{name: "update_subtask_of_own_lecture", given: withSub,
					when: UpdateSubtask{Actor: a, At: at(5), SubtaskID: 1000, Title: strp("x")}, err: ErrForbidden},
				{name: "remove_subtask_of_own_lecture", given: withSub,
					when: RemoveSubtask{Actor: a, At: at(5), SubtaskID: 1000}, err: ErrForbidden},
				{name: "create_a_lecture",
					when: CreateLecture{Actor: a, At: at(5), LectureID: 2, Title: "t"}, err: ErrForbidden},
			})
			runSpecs(t, SessionDecider, []spec[SessionCommand]{
				{name: "open_session_of_own_lecture",
					when: OpenSession{Actor: a, At: at(-10), SessionID: 7, Code: "ABC234", Lecture: plan}, err: ErrForbidden},
				{name: "start_own_session", given: given(opened),
					when: StartSession{Actor: a, At: at(0), Plan: plan}, err: ErrForbidden},
				{name: "next_step_of_own_session", given: given(opened, sessStarted),
					when: ChangeStep{Actor: a, At: at(5), Plan: plan}, err: ErrForbidden},
				{name: "pause_own_session", given: given(opened, sessStarted),
					when: PauseSession{Actor: a, At: at(10)}, err: ErrForbidden},
				{name: "resume_own_session", given: given(opened, sessStarted, paused),
					when: ResumeSession{Actor: a, At: at(15)}, err: ErrForbidden},
				{name: "end_own_session", given: given(opened, sessStarted),
					when: EndSession{Actor: a, At: at(60)}, err: ErrForbidden},
			})
			runSpecs(t, HelpDecider, []spec[HelpCommand]{
				{name: "answer_help_in_own_lecture", given: given(helpRequested, lowAnalysis, helpEscalated),
					when: RespondToHelp{Actor: a, At: at(3), Answer: HelpAnswer{HelpResponseID: 3001, HelpContent: "x"}}, err: ErrForbidden},
			})
		})
	}
	l, s := LectureDecider.Fold(created), SessionDecider.Fold(given(opened))
	if l.CanEdit(demotedToStudent) || s.CanControl(demotedToStudent) || !l.CanEdit(instructor) || !s.CanControl(instructor) {
		t.Fatal("CanEdit/CanControl disagree with Manages")
	}
}
