package auth

import (
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/web"
)

// Routes mounts the contract's Auth endpoints on r, with absolute paths:
// POST /api/auth/register, POST /api/auth/login, POST /api/auth/refresh and
// GET /api/auth/me (the last one behind Authenticate).
func (s *Service) Routes(r gin.IRouter) {
	r.POST("/api/auth/register", s.register)
	r.POST("/api/auth/login", s.login)
	r.POST("/api/auth/refresh", s.refresh)
	r.GET("/api/auth/me", s.tokens.Authenticate(), s.me)
}

// AdminRoutes mounts GET /api/admin/users, PATCH /api/admin/users/:user_id and
// DELETE /api/admin/users/:user_id on r, all for ADMIN only (the middleware is
// included).
func (s *Service) AdminRoutes(r gin.IRouter) {
	g := r.Group("/api/admin/users", s.tokens.Authenticate(), Require(domain.RoleAdmin))
	g.GET("", s.listUsers)
	g.PATCH("/:user_id", s.patchUser)
	g.DELETE("/:user_id", s.deleteUser)
}

// deleteUser removes an account: 204, 404 NOT_FOUND, or 409 CONFLICT for the
// last ADMIN.
func (s *Service) deleteUser(c *gin.Context) {
	id, ok := web.IDParam(c, "user_id")
	if !ok {
		return
	}
	if err := s.RemoveUser(c.Request.Context(), id); err != nil {
		web.Error(c, err)
		return
	}
	c.Status(204)
}

type registerRequest struct {
	Email        string       `json:"email" binding:"required,email,max=254"`
	Phone        string       `json:"phone" binding:"omitempty,max=20"`
	Password     string       `json:"password" binding:"required,min=8,max=128"`
	Name         string       `json:"name" binding:"required,max=100"`
	Age          *int         `json:"age" binding:"omitempty,gte=1,lte=150"`
	Role         domain.Role  `json:"role" binding:"omitempty,oneof=STUDENT INSTRUCTOR"`
	DigitalLevel DigitalLevel `json:"digital_level" binding:"omitempty,oneof=BEGINNER INTERMEDIATE ADVANCED"`
}

// phonePattern accepts digits with an optional leading + and separating
// spaces or hyphens ("01012345678", "+82 10-1234-5678").
var phonePattern = regexp.MustCompile(`^\+?[0-9][0-9 -]{5,18}[0-9]$`)

// registered is the contract's register answer.
type registered struct {
	ID           int64         `json:"id"`
	Email        string        `json:"email"`
	Name         string        `json:"name"`
	Role         domain.Role   `json:"role"`
	DigitalLevel *DigitalLevel `json:"digital_level"`
	CreatedAt    time.Time     `json:"created_at"`
}

func (s *Service) register(c *gin.Context) {
	var req registerRequest
	if !web.Bind(c, &req) {
		return
	}
	bad := map[string]string{}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		bad["name"] = "is required"
	}
	if req.Phone != "" && !phonePattern.MatchString(req.Phone) {
		bad["phone"] = "must be a phone number"
	}
	if len(bad) > 0 {
		web.Error(c, domain.Invalid("invalid fields", bad))
		return
	}
	reg := Registration{
		Email: req.Email, Phone: req.Phone, Password: req.Password, Name: name,
		Role: req.Role, DigitalLevel: req.DigitalLevel,
	}
	if req.Age != nil {
		reg.Age = *req.Age
	}
	u, err := s.Register(c.Request.Context(), reg)
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(201, registered{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, DigitalLevel: nullable(u.DigitalLevel), CreatedAt: u.CreatedAt})
}

type loginRequest struct {
	Email    string `json:"email" binding:"required,max=254"`
	Password string `json:"password" binding:"required,max=128"`
}

// userBrief is the user inside the login answer.
type userBrief struct {
	ID    int64       `json:"id"`
	Email string      `json:"email"`
	Name  string      `json:"name"`
	Role  domain.Role `json:"role"`
}

type loginResponse struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	User         userBrief `json:"user"`
}

func (s *Service) login(c *gin.Context) {
	var req loginRequest
	if !web.Bind(c, &req) {
		return
	}
	sess, err := s.Login(c.Request.Context(), req.Email, req.Password, c.ClientIP())
	if err != nil {
		web.Error(c, err)
		return
	}
	u := sess.User
	c.JSON(200, loginResponse{
		AccessToken: sess.AccessToken, RefreshToken: sess.RefreshToken,
		User: userBrief{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role},
	})
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token" binding:"required,max=256"`
}

type refreshResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func (s *Service) refresh(c *gin.Context) {
	var req refreshRequest
	if !web.Bind(c, &req) {
		return
	}
	sess, err := s.Refresh(c.Request.Context(), req.RefreshToken)
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(200, refreshResponse{AccessToken: sess.AccessToken, RefreshToken: sess.RefreshToken})
}

// meResponse is the contract's GET /api/auth/me answer.
type meResponse struct {
	ID           int64         `json:"id"`
	Email        string        `json:"email"`
	Name         string        `json:"name"`
	Role         domain.Role   `json:"role"`
	DigitalLevel *DigitalLevel `json:"digital_level"`
	Age          *int          `json:"age"`
}

func (s *Service) me(c *gin.Context) {
	u, err := s.User(c.Request.Context(), ActorFrom(c).UserID)
	if err != nil {
		if domain.ErrorCode(err) == domain.CodeNotFound {
			err = errBadToken // the token names a user that is gone
		}
		web.Error(c, err)
		return
	}
	c.JSON(200, meResponse{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, DigitalLevel: nullable(u.DigitalLevel), Age: nullable(u.Age)})
}

// userView is a user as the admin endpoints show it.
type userView struct {
	ID           int64         `json:"id"`
	Email        string        `json:"email"`
	Phone        *string       `json:"phone"`
	Name         string        `json:"name"`
	Age          *int          `json:"age"`
	Role         domain.Role   `json:"role"`
	DigitalLevel *DigitalLevel `json:"digital_level"`
	CreatedAt    time.Time     `json:"created_at"`
}

func viewOf(u User) userView {
	return userView{
		ID: u.ID, Email: u.Email, Phone: nullable(u.Phone), Name: u.Name, Age: nullable(u.Age),
		Role: u.Role, DigitalLevel: nullable(u.DigitalLevel), CreatedAt: u.CreatedAt,
	}
}

type userList struct {
	Users      []userView     `json:"users"`
	Pagination web.Pagination `json:"pagination"`
}

func (s *Service) listUsers(c *gin.Context) {
	page, ok := web.PageQuery(c)
	if !ok {
		return
	}
	role := domain.Role(c.Query("role"))
	if role != "" && !role.Valid() {
		web.Error(c, domain.Invalid("invalid filter", map[string]string{"role": "must be one of STUDENT, INSTRUCTOR, ANALYST, ADMIN"}))
		return
	}
	users, total, err := s.Users(c.Request.Context(), role, page.PageSize, page.Offset())
	if err != nil {
		web.Error(c, err)
		return
	}
	out := userList{Users: make([]userView, 0, len(users)), Pagination: page.Of(total)}
	for _, u := range users {
		out.Users = append(out.Users, viewOf(u))
	}
	c.JSON(200, out)
}

type patchUserRequest struct {
	Role domain.Role `json:"role" binding:"required,oneof=STUDENT INSTRUCTOR ANALYST ADMIN"`
}

func (s *Service) patchUser(c *gin.Context) {
	id, ok := web.IDParam(c, "user_id")
	if !ok {
		return
	}
	var req patchUserRequest
	if !web.Bind(c, &req) {
		return
	}
	u, err := s.SetRole(c.Request.Context(), id, req.Role)
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(200, viewOf(u))
}
