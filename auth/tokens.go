// Package auth is Lockstep's identity: users (a plain table, never events),
// argon2id password hashes, HS256 access tokens, rotating opaque refresh
// tokens, the login rate limit, the gin middleware every protected route uses
// (Authenticate, Require, ActorFrom) and the endpoints of the contract's Auth
// section and of `/api/admin/users`.
//
// Choices the contract leaves open: register takes `digital_level` as BEGINNER,
// INTERMEDIATE or ADVANCED (BEGINNER when absent), an optional `age` from 1 to
// 150, an optional `phone` of digits (a leading + and spaces or hyphens
// allowed), a `name` of at most 100 characters and a password of 8 to 128
// characters. Emails are unique in any letter case and kept as typed.
// Access tokens are stateless and carry the role: a role change reaches the
// next token (login or refresh), at most the access TTL later.
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/web"
)

// Token lifetimes used when Config leaves them zero (the contract's defaults).
const (
	DefaultAccessTTL  = 15 * time.Minute
	DefaultRefreshTTL = 720 * time.Hour
	// MinSecretLen is the shortest accepted HMAC key: 256 bits, as long as
	// the HS256 hash.
	MinSecretLen = 32
)

const (
	issuer          = "lockstep"
	tokenTypeAccess = "access"
	actorKey        = "lockstep.auth.actor"
)

// Config configures Tokens.
type Config struct {
	// Secret is the HS256 key, at least MinSecretLen bytes.
	Secret []byte
	// AccessTTL is the access token lifetime (default 15m).
	AccessTTL time.Duration
	// RefreshTTL is the refresh token lifetime (default 720h).
	RefreshTTL time.Duration
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.AccessTTL == 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = DefaultRefreshTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Secret) < MinSecretLen {
		errs = append(errs, fmt.Errorf("auth: secret must be at least %d bytes, got %d", MinSecretLen, len(c.Secret)))
	}
	if c.AccessTTL < 0 {
		errs = append(errs, errors.New("auth: access token TTL must be positive"))
	}
	if c.RefreshTTL < 0 {
		errs = append(errs, errors.New("auth: refresh token TTL must be positive"))
	}
	return errors.Join(errs...)
}

// Tokens issues and verifies access tokens and holds the token lifetimes.
// It is safe for concurrent use.
type Tokens struct {
	secret     []byte
	accessTTL  time.Duration
	refreshTTL time.Duration
	now        func() time.Time
	parser     *jwt.Parser
	revoked    revocations
}

// NewTokens builds Tokens from cfg (zero fields take their defaults).
func NewTokens(cfg Config) (*Tokens, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tokens{
		secret:     append([]byte(nil), cfg.Secret...),
		accessTTL:  cfg.AccessTTL,
		refreshTTL: cfg.RefreshTTL,
		now:        cfg.Now,
	}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return t.now() }),
	)
	return t, nil
}

// AccessTTL is the lifetime of an access token.
func (t *Tokens) AccessTTL() time.Duration { return t.accessTTL }

// RefreshTTL is the lifetime of a refresh token.
func (t *Tokens) RefreshTTL() time.Duration { return t.refreshTTL }

// claims are an access token's claims. TokenType is always "access": no
// other kind of token is ever signed with this key, and Verify refuses any
// token that does not say it is one.
type claims struct {
	Role      domain.Role `json:"role"`
	TokenType string      `json:"token_type"`
	jwt.RegisteredClaims
}

// Issue signs an access token for actor, valid for AccessTTL from now.
// Besides login and refresh, tests of other packages use it to act as a user.
func (t *Tokens) Issue(actor domain.Actor) (string, error) {
	if actor.UserID <= 0 || !actor.Role.Valid() {
		return "", fmt.Errorf("auth: issue token for invalid actor %+v", actor)
	}
	now := t.now()
	c := claims{
		Role:      actor.Role,
		TokenType: tokenTypeAccess,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   strconv.FormatInt(actor.UserID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.accessTTL)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign access token: %w", err)
	}
	return s, nil
}

var (
	errTokenExpired = &domain.Error{Code: domain.CodeTokenExpired, Message: "token expired"}
	errBadToken     = &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid or missing token"}
)

// Verify checks an access token (signature with HS256 only, issuer, expiry,
// token type) and returns who it belongs to. It does not touch gin, so
// WebSocket code can call it. The error is a *domain.Error: TOKEN_EXPIRED for
// a genuine but expired token, UNAUTHORIZED for anything else.
func (t *Tokens) Verify(token string) (domain.Actor, error) {
	if token == "" {
		return domain.Actor{}, errBadToken
	}
	var c claims
	if _, err := t.parser.ParseWithClaims(token, &c, t.key); err != nil {
		// The signature is verified before the claims, so an expired token
		// here is one this server signed.
		if errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return domain.Actor{}, errTokenExpired
		}
		return domain.Actor{}, errBadToken
	}
	if c.TokenType != tokenTypeAccess || !c.Role.Valid() {
		return domain.Actor{}, errBadToken
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || id <= 0 || t.revoked.revoked(id, t.now()) {
		return domain.Actor{}, errBadToken
	}
	return domain.Actor{UserID: id, Role: c.Role}, nil
}

func (t *Tokens) key(tok *jwt.Token) (any, error) {
	if _, ok := tok.Method.(*jwt.SigningMethodHMAC); !ok {
		return nil, fmt.Errorf("unexpected signing method %v", tok.Header["alg"])
	}
	return t.secret, nil
}

// Authenticate is the middleware of every protected route. It reads the
// access token with RequestToken: from `Authorization: Bearer …`, or — only on
// a WebSocket upgrade of a socket path, because browsers cannot set headers
// there — from the `token` query parameter, so that tokens never need to
// appear in ordinary URLs. On success the actor is available through
// ActorFrom; otherwise the request is aborted with 401 TOKEN_EXPIRED or
// UNAUTHORIZED.
func (t *Tokens) Authenticate() gin.HandlerFunc {
	return func(c *gin.Context) {
		token, ok := RequestToken(c.Request)
		if !ok {
			web.Error(c, errBadToken)
			return
		}
		actor, err := t.Verify(token)
		if err != nil {
			web.Error(c, err)
			return
		}
		c.Set(actorKey, actor)
		c.Next()
	}
}

// RequestToken extracts the access token of r: the Authorization header's
// bearer token when that header is present (a malformed one is a failure even
// when a query token is present), else the `token` query parameter when
// QueryTokenAllowed(r). Both the middleware and the sockets read tokens
// through it.
func RequestToken(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, found := strings.Cut(h, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") {
			return "", false
		}
		tok = strings.TrimSpace(tok)
		return tok, tok != ""
	}
	if QueryTokenAllowed(r) {
		if tok := r.URL.Query().Get("token"); tok != "" {
			return tok, true
		}
	}
	return "", false
}

// QueryTokenAllowed reports whether r may carry its access token as
// `?token=`: only a GET that asks for a WebSocket upgrade of a socket path
// (`/ws` or below). Any other request — another method, another path, with
// Upgrade headers or without — must send the Authorization header; a query
// token there authenticates nothing.
func QueryTokenAllowed(r *http.Request) bool {
	p := r.URL.Path
	return r.Method == http.MethodGet && (p == "/ws" || strings.HasPrefix(p, "/ws/")) && IsWebSocketUpgrade(r)
}

// IsWebSocketUpgrade reports whether r asks to be upgraded to a WebSocket
// (`Connection: upgrade` and `Upgrade: websocket`, case-insensitively).
func IsWebSocketUpgrade(r *http.Request) bool {
	if !headerHasToken(r.Header, "Connection", "upgrade") {
		return false
	}
	return headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// ActorFrom returns the user Authenticate let through: their id and role.
// Outside an authenticated route it returns the zero Actor (UserID 0).
func ActorFrom(c *gin.Context) domain.Actor {
	a, _ := LookupActor(c)
	return a
}

// LookupActor is ActorFrom that also says whether a request was authenticated.
func LookupActor(c *gin.Context) (domain.Actor, bool) {
	v, ok := c.Get(actorKey)
	if !ok {
		return domain.Actor{}, false
	}
	a, ok := v.(domain.Actor)
	return a, ok
}

// Require lets through callers with one of roles, and ADMIN always (an admin
// may do everything, per the contract); anyone else gets 403 FORBIDDEN. It
// must run after Authenticate; an unauthenticated request gets 401.
func Require(roles ...domain.Role) gin.HandlerFunc {
	allowed := make(map[domain.Role]bool, len(roles)+1)
	for _, r := range roles {
		allowed[r] = true
	}
	allowed[domain.RoleAdmin] = true
	return func(c *gin.Context) {
		a, ok := LookupActor(c)
		if !ok {
			web.Error(c, errBadToken)
			return
		}
		if !allowed[a.Role] {
			web.Error(c, domain.Forbidden("your role may not do this"))
			return
		}
		c.Next()
	}
}
