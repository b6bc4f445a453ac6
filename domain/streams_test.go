package domain

import "testing"

func TestStreamNames(t *testing.T) {
	for got, want := range map[string]string{
		LectureStream(1):          "lecture-1",
		SessionStream(7):          "session-7",
		ParticipantStream(7, 20):  "participant-7-20",
		ProgressStream(1, 20):     "progress-1-20",
		HelpStream(5000):          "help-5000",
		ProgressStream(12, 3):     "progress-12-3",
		ParticipantStream(30, 40): "participant-30-40",
	} {
		if got != want {
			t.Errorf("stream %q, want %q", got, want)
		}
	}
}

func TestSystemActor(t *testing.T) {
	if !System.IsSystem() || System.UserID != 0 || System.IsAdmin() {
		t.Fatalf("System = %+v", System)
	}
	if RoleSystem.Valid() {
		t.Fatal("no account may hold the SYSTEM role")
	}
	if admin.IsSystem() || student.IsSystem() {
		t.Fatal("users are not the system")
	}
}
