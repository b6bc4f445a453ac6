package domain

import "strconv"

// LectureStream names the stream of lecture id ("lecture-{id}").
func LectureStream(lectureID int64) string { return "lecture-" + itoa(lectureID) }

// SessionStream names the stream of live session id ("session-{id}").
func SessionStream(sessionID int64) string { return "session-" + itoa(sessionID) }

// ParticipantStream names the stream of one user's participation in one
// session ("participant-{sessionId}-{userId}").
func ParticipantStream(sessionID, userID int64) string {
	return "participant-" + itoa(sessionID) + "-" + itoa(userID)
}

// ProgressStream names the stream of one student's progress in one lecture
// ("progress-{lectureId}-{userId}").
func ProgressStream(lectureID, userID int64) string {
	return "progress-" + itoa(lectureID) + "-" + itoa(userID)
}

// HelpStream names the stream of help request id ("help-{id}").
func HelpStream(helpRequestID int64) string { return "help-" + itoa(helpRequestID) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
