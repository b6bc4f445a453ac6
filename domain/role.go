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
	switch r {
	case RoleStudent, RoleInstructor, RoleAnalyst, RoleAdmin:
		return true
	}
	return false
}

// Actor is who issues a command: the authenticated user and their role.
// Deciders use it for every "who may do what" rule.
type Actor struct {
	UserID int64
	Role   Role
}

// IsAdmin reports whether the actor may do everything.
func (a Actor) IsAdmin() bool { return a.Role == RoleAdmin }
