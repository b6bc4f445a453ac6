package domain

// RoleSystem is the role of the server acting on its own (the help analyzer,
// the stuck detector, the disconnect timer). It is not one of the contract's
// four roles: Role.Valid reports false for it, so no account can hold it.
const RoleSystem Role = "SYSTEM"

// System is the actor of commands the server issues by itself; its UserID is 0,
// as in eventstore.Metadata.UserID.
var System = Actor{Role: RoleSystem}

// IsSystem reports whether the actor is the server itself.
func (a Actor) IsSystem() bool { return a.Role == RoleSystem }
