package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/domain"
)

// DigitalLevel is how at ease a user is with smartphones. Empty means unknown.
type DigitalLevel string

// The digital levels register accepts; it defaults to BEGINNER.
const (
	LevelBeginner     DigitalLevel = "BEGINNER"
	LevelIntermediate DigitalLevel = "INTERMEDIATE"
	LevelAdvanced     DigitalLevel = "ADVANCED"
)

// User is a stored user, without the password hash. Zero Phone, Age and
// DigitalLevel mean "not given".
type User struct {
	ID           int64
	Email        string
	Phone        string
	Name         string
	Age          int
	Role         domain.Role
	DigitalLevel DigitalLevel
	CreatedAt    time.Time
}

// Actor is the user as a domain.Actor.
func (u User) Actor() domain.Actor { return domain.Actor{UserID: u.ID, Role: u.Role} }

// LoginLimits configure the login rate limit. Only failed logins count; once
// PerEmail failures for one email (known or not) or PerAddress failures from
// one client address lie within Window, the next attempt is refused with
// RATE_LIMITED — a correct password too — until enough of them are older
// than Window.
type LoginLimits struct {
	PerEmail   int
	PerAddress int
	Window     time.Duration
}

// DefaultLoginLimits are the contract's: 10 per email, 100 per address, 15 minutes.
var DefaultLoginLimits = LoginLimits{PerEmail: 10, PerAddress: 100, Window: 15 * time.Minute}

// Option configures a Service.
type Option func(*Service)

// WithLoginLimits sets the login rate limit; zero fields keep their defaults.
func WithLoginLimits(l LoginLimits) Option {
	return func(s *Service) {
		if l.PerEmail > 0 {
			s.limits.PerEmail = l.PerEmail
		}
		if l.PerAddress > 0 {
			s.limits.PerAddress = l.PerAddress
		}
		if l.Window > 0 {
			s.limits.Window = l.Window
		}
	}
}

// Service owns the identity tables: registration, login, refresh tokens,
// user lookups and the ADMIN bootstrap. Its HTTP endpoints are mounted by
// Routes and AdminRoutes.
type Service struct {
	pool   *pgxpool.Pool
	tokens *Tokens
	log    *slog.Logger
	now    func() time.Time
	limits LoginLimits
}

// NewService builds the service. pool and tokens are required (it panics
// without them); a nil log discards, a nil now is time.Now.
func NewService(pool *pgxpool.Pool, tokens *Tokens, log *slog.Logger, now func() time.Time, opts ...Option) *Service {
	if pool == nil {
		panic("auth.NewService: nil pool")
	}
	if tokens == nil {
		panic("auth.NewService: nil tokens")
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if now == nil {
		now = time.Now
	}
	s := &Service{pool: pool, tokens: tokens, log: log, now: now, limits: DefaultLoginLimits}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Tokens returns the token issuer/verifier the service signs with.
func (s *Service) Tokens() *Tokens { return s.tokens }

// Registration is what a new user gives. Role must be STUDENT or INSTRUCTOR
// (empty means STUDENT); the caller has validated the fields' formats.
type Registration struct {
	Email        string
	Phone        string
	Password     string
	Name         string
	Age          int
	Role         domain.Role
	DigitalLevel DigitalLevel
}

const userColumns = `id, email, coalesce(phone, ''), name, coalesce(age, 0), role, coalesce(digital_level, ''), created_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	var role, level string
	err := row.Scan(&u.ID, &u.Email, &u.Phone, &u.Name, &u.Age, &role, &level, &u.CreatedAt)
	u.Role, u.DigitalLevel = domain.Role(role), DigitalLevel(level)
	u.CreatedAt = u.CreatedAt.UTC()
	return u, err
}

func nullable[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

var errEmailTaken = &domain.Error{Code: domain.CodeConflict, Message: "email already registered", Details: map[string]any{"email": "is already registered"}}

// Register creates a user. A duplicate email (in any letter case) is CONFLICT;
// a role other than STUDENT or INSTRUCTOR is INVALID_REQUEST.
func (s *Service) Register(ctx context.Context, r Registration) (User, error) {
	if r.Role == "" {
		r.Role = domain.RoleStudent
	}
	if r.Role != domain.RoleStudent && r.Role != domain.RoleInstructor {
		return User{}, domain.Invalid("invalid role", map[string]string{"role": "must be one of STUDENT, INSTRUCTOR"})
	}
	if r.DigitalLevel == "" {
		r.DigitalLevel = LevelBeginner
	}
	hash, err := HashPassword(r.Password)
	if err != nil {
		return User{}, err
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `
		INSERT INTO users (email, phone, password_hash, name, age, role, digital_level, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		RETURNING `+userColumns,
		r.Email, nullable(r.Phone), hash, r.Name, nullable(r.Age), string(r.Role), nullable(string(r.DigitalLevel)), s.now().UTC()))
	if isUniqueViolation(err) {
		return User{}, errEmailTaken
	}
	if err != nil {
		return User{}, fmt.Errorf("insert user: %w", err)
	}
	s.log.InfoContext(ctx, "user registered", "user_id", u.ID, "role", string(u.Role))
	return u, nil
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// User returns the user with id, or a NOT_FOUND *domain.Error.
func (s *Service) User(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, domain.NotFound("user")
	}
	if err != nil {
		return User{}, fmt.Errorf("load user %d: %w", id, err)
	}
	return u, nil
}

// Session is what a successful login or refresh hands out.
type Session struct {
	AccessToken  string
	RefreshToken string
	User         User
}

var (
	errBadCredentials = &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid email or password"}
	errRateLimited    = &domain.Error{Code: domain.CodeRateLimited, Message: "too many failed logins; try again later"}
	errBadRefresh     = &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid refresh token"}
	errRefreshExpired = &domain.Error{Code: domain.CodeTokenExpired, Message: "refresh token expired"}
)

// Login checks email and password and opens a session. address is the
// client's address, for the per-address rate limit. Failures are UNAUTHORIZED
// with one message whether the email is unknown or the password wrong;
// RATE_LIMITED once the limits are reached (see LoginLimits).
//
// The attempt runs under a transaction-scoped advisory lock on the email, so
// the per-email limit holds exactly across API instances; the per-address
// limit may be overshot by the number of attempts running at the same moment.
func (s *Service) Login(ctx context.Context, email, password, address string) (Session, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	now := s.now().UTC()
	var (
		u      User
		failed bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "lockstep.login:"+key); err != nil {
			return fmt.Errorf("lock login: %w", err)
		}
		var byEmail, byAddress int
		err := tx.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE email = $1), count(*) FILTER (WHERE address = $2)
			FROM login_failures
			WHERE failed_at > $3 AND (email = $1 OR address = $2)`,
			key, address, now.Add(-s.limits.Window)).Scan(&byEmail, &byAddress)
		if err != nil {
			return fmt.Errorf("count login failures: %w", err)
		}
		if byEmail >= s.limits.PerEmail || byAddress >= s.limits.PerAddress {
			return errRateLimited
		}
		var hash string
		row := tx.QueryRow(ctx, `SELECT `+userColumns+`, password_hash FROM users WHERE lower(email) = lower($1)`, strings.TrimSpace(email))
		var role, level string
		err = row.Scan(&u.ID, &u.Email, &u.Phone, &u.Name, &u.Age, &role, &level, &u.CreatedAt, &hash)
		u.Role, u.DigitalLevel, u.CreatedAt = domain.Role(role), DigitalLevel(level), u.CreatedAt.UTC()
		found := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("load user: %w", err)
		}
		if !found {
			hash = dummyHash()
		}
		ok, err := CheckPassword(password, hash)
		if err != nil {
			return err
		}
		if ok && found {
			return nil
		}
		failed = true
		if _, err := tx.Exec(ctx, `INSERT INTO login_failures (email, address, failed_at) VALUES ($1, $2, $3)`, key, address, now); err != nil {
			return fmt.Errorf("record login failure: %w", err)
		}
		// Forget failures nobody will count again (a bounded batch per failure).
		_, err = tx.Exec(ctx, `DELETE FROM login_failures WHERE id IN (
			SELECT id FROM login_failures WHERE failed_at <= $1 ORDER BY failed_at LIMIT 100)`, now.Add(-s.limits.Window))
		if err != nil {
			return fmt.Errorf("prune login failures: %w", err)
		}
		return nil
	})
	if errors.Is(err, errRateLimited) {
		s.log.WarnContext(ctx, "login rate limited", "address", address)
		return Session{}, err
	}
	if err != nil {
		return Session{}, err
	}
	if failed {
		s.log.InfoContext(ctx, "login failed", "address", address)
		return Session{}, errBadCredentials
	}
	return s.openSession(ctx, u, uuid.New())
}

// openSession issues an access token and a refresh token of family.
func (s *Service) openSession(ctx context.Context, u User, family uuid.UUID) (Session, error) {
	refresh, err := s.insertRefresh(ctx, s.pool, u.ID, family)
	if err != nil {
		return Session{}, err
	}
	access, err := s.tokens.Issue(u.Actor())
	if err != nil {
		return Session{}, err
	}
	return Session{AccessToken: access, RefreshToken: refresh, User: u}, nil
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// insertRefresh stores a new refresh token's hash and returns the token.
func (s *Service) insertRefresh(ctx context.Context, db execer, userID int64, family uuid.UUID) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("random refresh token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now().UTC()
	_, err := db.Exec(ctx, `
		INSERT INTO refresh_tokens (user_id, token_hash, family_id, issued_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)`,
		userID, hashToken(token), family, now, now.Add(s.tokens.RefreshTTL()))
	if err != nil {
		return "", fmt.Errorf("store refresh token: %w", err)
	}
	return token, nil
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Refresh rotates a refresh token: the presented one is marked used and a new
// one of the same family is returned with a new access token carrying the
// user's current role. An unknown, used or revoked token is UNAUTHORIZED; a
// used one presented again also revokes its whole family, since either its
// owner or a thief holds a copy. An expired one is TOKEN_EXPIRED.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Session, error) {
	if refreshToken == "" {
		return Session{}, errBadRefresh
	}
	now := s.now().UTC()
	var (
		sess    Session
		reused  bool
		userID  int64
		family  uuid.UUID
		revoked int64
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			id              int64
			expires         time.Time
			usedAt, revokAt *time.Time
		)
		err := tx.QueryRow(ctx, `
			SELECT id, user_id, family_id, expires_at, used_at, revoked_at
			FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`, hashToken(refreshToken)).
			Scan(&id, &userID, &family, &expires, &usedAt, &revokAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return errBadRefresh
		}
		if err != nil {
			return fmt.Errorf("load refresh token: %w", err)
		}
		if usedAt != nil {
			tag, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL`, family, now)
			if err != nil {
				return fmt.Errorf("revoke refresh family: %w", err)
			}
			reused, revoked = true, tag.RowsAffected()
			return nil
		}
		if revokAt != nil {
			return errBadRefresh
		}
		if !now.Before(expires) {
			return errRefreshExpired
		}
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, userID))
		if err != nil {
			return fmt.Errorf("load user %d: %w", userID, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $2 WHERE id = $1`, id, now); err != nil {
			return fmt.Errorf("mark refresh token used: %w", err)
		}
		next, err := s.insertRefresh(ctx, tx, u.ID, family)
		if err != nil {
			return err
		}
		access, err := s.tokens.Issue(u.Actor())
		if err != nil {
			return err
		}
		sess = Session{AccessToken: access, RefreshToken: next, User: u}
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	if reused {
		s.log.WarnContext(ctx, "refresh token reused; family revoked", "user_id", userID, "family_id", family.String(), "revoked", revoked)
		return Session{}, errBadRefresh
	}
	return sess, nil
}

// Users lists users by id, a page at a time, with the total count. A
// non-empty role keeps only users with that role.
func (s *Service) Users(ctx context.Context, role domain.Role, limit, offset int) ([]User, int64, error) {
	var total int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE $1 = '' OR role = $1`, string(role)).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count users: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE $1 = '' OR role = $1 ORDER BY id LIMIT $2 OFFSET $3`, string(role), limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	return users, total, nil
}

// errLastAdmin refuses to leave the system without an ADMIN.
var errLastAdmin = &domain.Error{
	Code: domain.CodeConflict, Message: "the last ADMIN cannot be demoted",
	Details: map[string]any{"role": "another user must be ADMIN first"},
}

// roleChangeLock is the advisory lock every role change holds for its
// transaction.
const roleChangeLock = "lockstep.users.role"

// SetRole changes a user's role (any of the four). Unknown id is NOT_FOUND;
// demoting the only ADMIN is CONFLICT and changes nothing. Role changes are
// serialized by a transaction-scoped advisory lock, so two admins demoting
// each other at the same moment cannot leave none: the second sees the first's
// change and is refused.
//
// Access tokens carry the role: those already issued keep the old one until
// they expire (at most the access TTL) for ordinary requests; the next login
// or refresh carries the new one. A change is announced on AccountChannel in
// the same transaction: the user's open sockets close with 4403 on every
// instance, and a new socket refuses a token carrying the old role.
func (s *Service) SetRole(ctx context.Context, id int64, role domain.Role) (User, error) {
	if !role.Valid() {
		return User{}, domain.Invalid("invalid role", map[string]string{"role": "must be one of STUDENT, INSTRUCTOR, ANALYST, ADMIN"})
	}
	var (
		u    User
		from domain.Role
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if from, err = lockRole(ctx, tx, id); err != nil {
			return err
		}
		if from == domain.RoleAdmin && role != domain.RoleAdmin {
			if err := otherAdmin(ctx, tx, id, errLastAdmin); err != nil {
				return err
			}
		}
		u, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET role = $2 WHERE id = $1 RETURNING `+userColumns, id, string(role)))
		if err != nil {
			return fmt.Errorf("set role of user %d: %w", id, err)
		}
		if from == role {
			return nil
		}
		return notifyAccount(ctx, tx, AccountChange{UserID: id, Role: role})
	})
	if errors.Is(err, errLastAdmin) {
		s.log.WarnContext(ctx, "refused to demote the last admin", "user_id", id, "role", string(role))
	}
	if err != nil {
		return User{}, err
	}
	s.log.InfoContext(ctx, "user role changed", "user_id", id, "from", string(from), "role", string(role))
	return u, nil
}

// EnsureAdmin makes sure an ADMIN account with email and password exists: it
// creates it, or promotes the existing account with that email (in any letter
// case) and resets its password to password when it differs. Calling it again
// changes nothing, and several instances may call it at once.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) error {
	email = strings.TrimSpace(email)
	if !strings.Contains(email, "@") {
		return fmt.Errorf("ensure admin: %q is not an email address", email)
	}
	if n := len([]rune(password)); n < MinPasswordLen || n > MaxPasswordLen {
		return fmt.Errorf("ensure admin: password must have %d to %d characters", MinPasswordLen, MaxPasswordLen)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO users (email, password_hash, name, role, created_at)
		VALUES ($1, $2, 'Administrator', 'ADMIN', $3)
		ON CONFLICT ((lower(email))) DO NOTHING`, email, hash, s.now().UTC())
	if err != nil {
		return fmt.Errorf("ensure admin: insert: %w", err)
	}
	if tag.RowsAffected() == 1 {
		s.log.InfoContext(ctx, "admin account created")
		return nil
	}
	var (
		id      int64
		role    string
		current string
	)
	err = s.pool.QueryRow(ctx, `SELECT id, role, password_hash FROM users WHERE lower(email) = lower($1)`, email).Scan(&id, &role, &current)
	if err != nil {
		return fmt.Errorf("ensure admin: load: %w", err)
	}
	same, err := CheckPassword(password, current)
	if err != nil {
		same = false // an unreadable hash is replaced
	}
	if same && role == string(domain.RoleAdmin) {
		return nil
	}
	if same {
		hash = current
	}
	if _, err := s.pool.Exec(ctx, `UPDATE users SET role = 'ADMIN', password_hash = $2 WHERE id = $1`, id, hash); err != nil {
		return fmt.Errorf("ensure admin: update: %w", err)
	}
	s.log.InfoContext(ctx, "admin account updated", "user_id", id, "promoted", role != string(domain.RoleAdmin), "password_reset", !same)
	return nil
}

// PruneRefreshTokens deletes refresh tokens that expired more than a day
// before now (used or not: an expired token is refused either way) and
// returns how many.
func (s *Service) PruneRefreshTokens(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM refresh_tokens WHERE expires_at < $1`, now.Add(-24*time.Hour))
	if err != nil {
		return 0, fmt.Errorf("prune refresh tokens: %w", err)
	}
	return tag.RowsAffected(), nil
}
