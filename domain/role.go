package domain

// Role is what a user is allowed to do.
type Role string

// The four roles of the contract.
const (
	RoleStudent    Role = "STUDENT"
	RoleInstructor Role = "INSTRUCTOR"
	RoleAnalyst    Role = "ANALYST"
	RoleAdmin      Role = "ADMIN"
)

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool {
	return r == RoleStudent || r == RoleInstructor || r == RoleAnalyst || r == RoleAdmin
}

// Actor is who issues a command: the authenticated user and their role.
// Deciders use it for every "who may do what" rule.
type Actor struct {
	UserID int64
	Role   Role
}

// IsAdmin reports whether the actor may do everything.
func (a Actor) IsAdmin() bool { return a.Role == RoleAdmin }

// Manages reports whether a may manage what the instructor ownerID owns — a
// lecture and its plan, its sessions, the help requests raised in them — and
// read what only that instructor reads: an admin always, otherwise only that
// instructor and only while they hold the INSTRUCTOR role. Owning is not
// enough: an instructor demoted to STUDENT or ANALYST is still the owner the
// lecture names but manages nothing. Every owner rule, in the deciders and in
// the read side, goes through this one predicate.
func (a Actor) Manages(ownerID int64) bool {
	return a.IsAdmin() || (a.Role == RoleInstructor && a.UserID != 0 && a.UserID == ownerID)
}
