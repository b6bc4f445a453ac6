package domain

import "testing"

var (
	joined       = ParticipantJoined{ParticipantID: 100, SessionID: 7, LectureID: 1, UserID: 20, Status: ParticipantStatusWaiting, SessionStatus: SessionStatusWaiting, JoinedAt: at(-5)}
	disconnected = ParticipantDisconnected{ParticipantID: 100, SessionID: 7, LectureID: 1, UserID: 20, LastActiveAt: at(9), DisconnectedAt: at(10)}
	reconnected  = ParticipantReconnected{ParticipantID: 100, SessionID: 7, LectureID: 1, UserID: 20, ReconnectedAt: at(12)}
)

func TestParticipantDecider(t *testing.T) {
	join := func(a Actor, status SessionStatus) JoinSession {
		return JoinSession{Actor: a, At: at(-5), ParticipantID: 100, SessionID: 7, LectureID: 1, SessionStatus: status}
	}
	lateJoin := func(status SessionStatus) ParticipantJoined {
		return ParticipantJoined{ParticipantID: 100, SessionID: 7, LectureID: 1, UserID: 20, Status: ParticipantStatusActive, SessionStatus: status, JoinedAt: at(-5)}
	}
	adminJoin := join(admin, SessionStatusWaiting)
	adminJoin.UserID = 20
	otherJoin := join(student2, SessionStatusWaiting)
	otherJoin.UserID = 20
	noID := join(student, SessionStatusWaiting)
	noID.ParticipantID = 0

	decided := runSpecs(t, ParticipantDecider, []spec[ParticipantCommand]{
		// JoinSession
		{name: "join_waiting_session_waits", when: join(student, SessionStatusWaiting), then: given(joined)},
		{name: "join_running_session_is_active_at_once", when: join(student, SessionStatusInProgress), then: given(lateJoin(SessionStatusInProgress))},
		{name: "join_paused_session_is_active_at_once", when: join(student, SessionStatusPaused), then: given(lateJoin(SessionStatusPaused))},
		{name: "join_by_admin_for_a_student", when: adminJoin, then: given(joined)},
		{name: "first_join_in_review_mode_is_invalid_state", when: join(student, SessionStatusReviewMode), err: ErrInvalidState},
		{name: "join_again_decides_nothing", given: given(joined), when: join(student, SessionStatusInProgress)},
		{name: "join_again_in_review_mode_decides_nothing", given: given(joined, disconnected), when: join(student, SessionStatusReviewMode)},
		{name: "join_for_another_student_is_forbidden", when: otherJoin, err: ErrForbidden},
		{name: "join_as_instructor_is_forbidden", when: join(instructor, SessionStatusWaiting), err: ErrForbidden},
		{name: "join_without_allocated_id_is_internal", when: noID, err: errInternalMarker},
		{name: "join_without_session_status_is_internal", when: join(student, ""), err: errInternalMarker},

		// DisconnectParticipant
		{name: "disconnect_participant", given: given(joined),
			when: DisconnectParticipant{Actor: System, At: at(10), SessionStatus: SessionStatusInProgress, LastSeenAt: at(9)},
			then: given(disconnected)},
		{name: "disconnect_participant_of_paused_session", given: given(joined, disconnected, reconnected),
			when: DisconnectParticipant{Actor: System, At: at(20), SessionStatus: SessionStatusPaused, LastSeenAt: at(19)},
			then: given(ParticipantDisconnected{ParticipantID: 100, SessionID: 7, LectureID: 1, UserID: 20, LastActiveAt: at(19), DisconnectedAt: at(20)})},
		{name: "disconnect_twice_decides_nothing", given: given(joined, disconnected),
			when: DisconnectParticipant{Actor: System, At: at(11), SessionStatus: SessionStatusInProgress}},
		{name: "disconnect_while_waiting_is_invalid_state", given: given(joined),
			when: DisconnectParticipant{Actor: System, At: at(10), SessionStatus: SessionStatusWaiting}, err: ErrInvalidState},
		{name: "disconnect_in_review_mode_is_invalid_state", given: given(joined),
			when: DisconnectParticipant{Actor: System, At: at(10), SessionStatus: SessionStatusReviewMode}, err: ErrInvalidState},
		{name: "disconnect_unknown_participant_is_not_found",
			when: DisconnectParticipant{Actor: System, At: at(10), SessionStatus: SessionStatusInProgress}, err: ErrNotFound},
		{name: "disconnect_by_another_student_is_forbidden", given: given(joined),
			when: DisconnectParticipant{Actor: student2, At: at(10), SessionStatus: SessionStatusInProgress}, err: ErrForbidden},

		// ReconnectParticipant
		{name: "reconnect_participant", given: given(joined, disconnected),
			when: ReconnectParticipant{Actor: student, At: at(12)}, then: given(reconnected)},
		{name: "reconnect_by_the_server", given: given(joined, disconnected),
			when: ReconnectParticipant{Actor: System, At: at(12)}, then: given(reconnected)},
		{name: "reconnect_connected_participant_decides_nothing", given: given(joined, disconnected, reconnected),
			when: ReconnectParticipant{Actor: student, At: at(13)}},
		{name: "reconnect_unknown_participant_is_not_found",
			when: ReconnectParticipant{Actor: student, At: at(12)}, err: ErrNotFound},
		{name: "reconnect_by_the_instructor_is_forbidden", given: given(joined, disconnected),
			when: ReconnectParticipant{Actor: instructor, At: at(12)}, err: ErrForbidden},
	})
	requireCovered(t, decided, "ParticipantJoined", "ParticipantDisconnected", "ParticipantReconnected")
}

func TestParticipantStatus(t *testing.T) {
	cases := []struct {
		name         string
		disconnected bool
		session      SessionStatus
		want         ParticipantStatus
	}{
		{"connected_waiting", false, SessionStatusWaiting, ParticipantStatusWaiting},
		{"connected_in_progress", false, SessionStatusInProgress, ParticipantStatusActive},
		{"connected_paused", false, SessionStatusPaused, ParticipantStatusActive},
		{"connected_review_mode", false, SessionStatusReviewMode, ParticipantStatusActive},
		{"disconnected_in_progress", true, SessionStatusInProgress, ParticipantStatusDisconnected},
		{"disconnected_review_mode", true, SessionStatusReviewMode, ParticipantStatusDisconnected},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := DisplayStatus(c.disconnected, c.session); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}

	p := ParticipantDecider.Fold(given(joined))
	if !p.Joined() || p.ID() != 100 || p.SessionID() != 7 || p.LectureID() != 1 || p.UserID() != 20 ||
		!p.JoinedAt().Equal(at(-5)) || p.StatusAtJoin() != ParticipantStatusWaiting || p.Disconnected() {
		t.Fatalf("joined %+v", p)
	}
	if p.Status(SessionStatusWaiting) != ParticipantStatusWaiting || p.Status(SessionStatusInProgress) != ParticipantStatusActive {
		t.Fatal("status of a connected participant")
	}
	d := ParticipantDecider.Evolve(p, disconnected)
	if !d.Disconnected() || d.Status(SessionStatusInProgress) != ParticipantStatusDisconnected ||
		!d.DisconnectedAt().Equal(at(10)) || !d.LastSeenAt().Equal(at(9)) {
		t.Fatalf("disconnected %+v", d)
	}
	r := ParticipantDecider.Evolve(d, reconnected)
	if r.Disconnected() || r.Status(SessionStatusPaused) != ParticipantStatusActive {
		t.Fatalf("reconnected %+v", r)
	}
}
