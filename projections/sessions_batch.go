package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/outbox"
)

// HandleBatch implements BatchHandler. A class completing a subtask together
// is a long run of SubtaskStarted/SubtaskCompleted events; event by event
// each costs three statements (the completion, the student's name, the
// instructor's student_progress message), which held every student's
// read-your-writes wait behind this projector in a 1,000-student burst.
// A run costs three statements whatever its length: one insert of its
// completions, one read of its students' names, one outbox insert of its
// messages. Every other event goes through Handle, in order. The result is
// Handle's, record by record (sessions_batch_test.go compares the tables):
// progress handlers write only session_completions and the outbox, which no
// progress handler reads, so a run's writes commute.
func (p *Sessions) HandleBatch(ctx context.Context, tx pgx.Tx, records []Record) error {
	return applyRuns(ctx, tx, records, progressRunEnd, p.progressRun, p.Handle)
}

// progressRunEnd is the end of the run of progress events from i.
func progressRunEnd(records []Record, i int) int {
	for i < len(records) && sessionProgress(records[i]) {
		i++
	}
	return i
}

func sessionProgress(r Record) bool {
	switch r.Payload.(type) {
	case domain.SubtaskStarted, domain.SubtaskCompleted:
		return true
	}
	return false
}

// progressRun applies a run of progress events with set-based statements.
func (p *Sessions) progressRun(ctx context.Context, tx pgx.Tx, run []Record) error {
	type pending struct {
		r       Record
		session int64
		user    int64
		data    progressData
	}
	var (
		lectures, users, subtasks []int64
		completedAt               []time.Time
		out                       []pending
		named                     = map[int64]string{}
	)
	for _, r := range run {
		var sessionID, lectureID int64
		var d progressData
		switch e := r.Payload.(type) {
		case domain.SubtaskStarted:
			at := e.StartedAt.UTC()
			sessionID, lectureID = e.SessionID, e.LectureID
			d = progressData{UserID: e.UserID, SubtaskID: e.SubtaskID, SubtaskTitle: e.SubtaskTitle,
				Status: string(domain.ProgressStatusInProgress), StartedAt: &at}
		case domain.SubtaskCompleted:
			lectures, users, subtasks = append(lectures, e.LectureID), append(users, e.UserID), append(subtasks, e.SubtaskID)
			completedAt = append(completedAt, e.CompletedAt)
			at := e.CompletedAt.UTC()
			sessionID, lectureID = e.SessionID, e.LectureID
			d = progressData{UserID: e.UserID, SubtaskID: e.SubtaskID, SubtaskTitle: e.SubtaskTitle,
				Status: string(domain.ProgressStatusCompleted), CompletedAt: &at}
		}
		id, err := progressSession(ctx, tx, r, sessionID, lectureID, d.UserID)
		if err != nil {
			return err
		}
		if id != 0 {
			out = append(out, pending{r: r, session: id, user: d.UserID, data: d})
			named[d.UserID] = ""
		}
	}
	if len(lectures) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO session_completions (lecture_id, user_id, subtask_id, completed_at)
			SELECT l, u, s, c FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[]) WITH ORDINALITY AS x(l, u, s, c, i)
			ORDER BY i ON CONFLICT DO NOTHING`, lectures, users, subtasks, completedAt); err != nil {
			return err
		}
	}
	if len(out) == 0 {
		return nil
	}
	if err := userNames(ctx, tx, named); err != nil {
		return err
	}
	msgs := make([]outbox.Message, len(out))
	for i, o := range out {
		o.data.Name = named[o.user]
		payload, err := json.Marshal(message{Type: "student_progress", Data: o.data})
		if err != nil {
			return fmt.Errorf("encode student_progress: %w", err)
		}
		msgs[i] = outbox.Message{Channel: SessionInstructorChannel(o.session), Position: o.r.Position, Payload: payload}
	}
	return outbox.Record(ctx, tx, SessionsProjector, msgs...)
}

// userNames fills names (keyed by user id) from the users table, in one
// read; a user who is not there keeps "" (as userName answers).
func userNames(ctx context.Context, tx pgx.Tx, names map[int64]string) error {
	ids := make([]int64, 0, len(names))
	for id := range names {
		ids = append(ids, id)
	}
	rows, err := tx.Query(ctx, `SELECT id, name FROM users WHERE id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return err
		}
		names[id] = name
	}
	return rows.Err()
}
