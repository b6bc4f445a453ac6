// Package web holds what every HTTP handler of Lockstep shares: the contract's
// error shape and the one map from error code to status, JSON binding with
// field-level validation errors, pagination, and the common gin middleware.
package web

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/binding"
	"github.com/go-playground/validator/v10"
	"github.com/google/uuid"

	"github.com/lockstep/lockstep/domain"
)

// statusByCode is the one place that turns an error code into an HTTP status.
var statusByCode = map[domain.Code]int{
	domain.CodeInvalidRequest: http.StatusBadRequest,
	domain.CodeUnauthorized:   http.StatusUnauthorized,
	domain.CodeTokenExpired:   http.StatusUnauthorized,
	domain.CodeForbidden:      http.StatusForbidden,
	domain.CodeNotFound:       http.StatusNotFound,
	domain.CodeConflict:       http.StatusConflict,
	domain.CodeInvalidState:   http.StatusConflict,
	domain.CodeTooLarge:       http.StatusRequestEntityTooLarge,
	domain.CodeRateLimited:    http.StatusTooManyRequests,
	domain.CodeUnavailable:    http.StatusServiceUnavailable,
	domain.CodeInternal:       http.StatusInternalServerError,
}

// Status returns the HTTP status for an error code.
func Status(code domain.Code) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the contract's error shape.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    domain.Code    `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// Body renders err in the contract's shape. Errors that are not *domain.Error
// become INTERNAL with a generic message: their text never reaches a client.
func Body(err error) (int, ErrorBody) {
	var de *domain.Error
	if !errors.As(err, &de) {
		return http.StatusInternalServerError, ErrorBody{ErrorDetail{Code: domain.CodeInternal, Message: "internal error", Details: map[string]any{}}}
	}
	details := de.Details
	if details == nil {
		details = map[string]any{}
	}
	msg := de.Message
	if msg == "" {
		msg = strings.ToLower(strings.ReplaceAll(string(de.Code), "_", " "))
	}
	return Status(de.Code), ErrorBody{ErrorDetail{Code: de.Code, Message: msg, Details: details}}
}

// Error aborts the request with err in the contract's shape. Internal errors
// are attached to the context so that the request logger logs them.
func Error(c *gin.Context, err error) {
	status, body := Body(err)
	if status >= 500 {
		_ = c.Error(err)
	}
	c.AbortWithStatusJSON(status, body)
}

func init() {
	if v, ok := binding.Validator.Engine().(*validator.Validate); ok {
		v.RegisterTagNameFunc(jsonName)
	}
}

func jsonName(f reflect.StructField) string {
	name := strings.SplitN(f.Tag.Get("json"), ",", 2)[0]
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

// Bind decodes the JSON body into dst and validates it with its `binding` tags.
// On failure it answers 400 (or 413) in the contract's shape, naming the
// fields, and returns false. An empty body decodes as {}.
func Bind(c *gin.Context, dst any) bool {
	err := decode(c.Request.Body, dst)
	if err == nil {
		err = binding.Validator.ValidateStruct(dst)
	}
	if err != nil {
		Error(c, BindError(err))
		return false
	}
	return true
}

func decode(r io.Reader, dst any) error {
	if r == nil {
		return nil
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		data = []byte("{}")
	}
	return json.Unmarshal(data, dst)
}

// BindError turns a decoding or validation error into a *domain.Error.
func BindError(err error) error {
	var maxErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var verrs validator.ValidationErrors
	switch {
	case errors.As(err, &maxErr):
		return &domain.Error{Code: domain.CodeTooLarge, Message: "request body too large", Details: map[string]any{"limit_bytes": maxErr.Limit}}
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return domain.Invalid("malformed JSON", map[string]string{"body": "not valid JSON"})
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return domain.Invalid("invalid field", map[string]string{field: "must be " + typeName(typeErr.Type)})
	case errors.As(err, &verrs):
		fields := make(map[string]string, len(verrs))
		for _, fe := range verrs {
			fields[fieldPath(fe)] = describe(fe)
		}
		return domain.Invalid("invalid fields", fields)
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return de
	}
	return domain.Invalid("invalid request body", map[string]string{"body": "could not be read"})
}

func fieldPath(fe validator.FieldError) string {
	ns := fe.Namespace()
	if i := strings.IndexByte(ns, '.'); i >= 0 {
		return ns[i+1:]
	}
	return fe.Field()
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of type " + t.String()
}

func describe(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "email":
		return "must be an email address"
	case "min":
		if fe.Kind() == reflect.String || fe.Kind() == reflect.Slice {
			return "must have at least " + fe.Param() + " characters"
		}
		return "must be at least " + fe.Param()
	case "max":
		if fe.Kind() == reflect.String || fe.Kind() == reflect.Slice {
			return "must have at most " + fe.Param() + " characters"
		}
		return "must be at most " + fe.Param()
	case "gte":
		return "must be at least " + fe.Param()
	case "lte":
		return "must be at most " + fe.Param()
	case "gt":
		return "must be greater than " + fe.Param()
	case "oneof":
		return "must be one of " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "url", "http_url":
		return "must be a URL"
	}
	return "is invalid (" + fe.Tag() + ")"
}

// IDParam parses a positive integer path parameter; on failure it answers
// 404 (an id that cannot exist names no resource) and returns false.
func IDParam(c *gin.Context, name string) (int64, bool) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		Error(c, domain.NotFound(strings.TrimSuffix(name, "_id")))
		return 0, false
	}
	return id, true
}

// Page is a validated page request.
type Page struct {
	Page     int
	PageSize int
}

// Offset is the number of rows before this page.
func (p Page) Offset() int { return (p.Page - 1) * p.PageSize }

// Pagination is the contract's pagination object.
type Pagination struct {
	Page       int   `json:"page"`
	PageSize   int   `json:"page_size"`
	TotalCount int64 `json:"total_count"`
	TotalPages int64 `json:"total_pages"`
}

// Of builds the pagination object for a total count.
func (p Page) Of(total int64) Pagination {
	pages := (total + int64(p.PageSize) - 1) / int64(p.PageSize)
	return Pagination{Page: p.Page, PageSize: p.PageSize, TotalCount: total, TotalPages: pages}
}

// PageQuery reads page (default 1) and page_size (default 20, max 100). On bad
// values it answers 400 naming them and returns false.
func PageQuery(c *gin.Context) (Page, bool) {
	p := Page{Page: 1, PageSize: 20}
	bad := map[string]string{}
	if s := c.Query("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			bad["page"] = "must be a positive integer"
		}
		p.Page = n
	}
	if s := c.Query("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			bad["page_size"] = "must be an integer from 1 to 100"
		}
		p.PageSize = n
	}
	if len(bad) > 0 {
		Error(c, domain.Invalid("invalid pagination", bad))
		return Page{}, false
	}
	return p, true
}

// BodyLimit caps request bodies at limit bytes; reading past it fails with a
// *http.MaxBytesError, which Bind answers with 413.
func BodyLimit(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > limit {
			Error(c, &domain.Error{Code: domain.CodeTooLarge, Message: "request body too large", Details: map[string]any{"limit_bytes": limit}})
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		c.Next()
	}
}

// Recovery turns a panic into a 500 in the contract's shape and logs it.
func Recovery(log *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, rec any) {
		log.Error("panic in handler", "route", c.FullPath(), "panic", rec)
		Error(c, &domain.Error{Code: domain.CodeInternal, Message: "internal error"})
	})
}

// Logger is the access log: one line per request at info level (LOG_LEVEL=warn
// hides it) with method, route, path, status, duration and request id;
// internal errors attached with c.Error make it an error line. Query strings
// are left out (WebSocket tokens travel there). A request without
// X-Request-ID gets one (on the request, for commands' correlation ids, and
// on the response).
func Logger(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		rid := c.GetHeader("X-Request-ID")
		if rid == "" {
			rid = uuid.NewString()
			c.Request.Header.Set("X-Request-ID", rid)
			c.Header("X-Request-ID", rid)
		}
		c.Next()
		status := c.Writer.Status()
		if len(rid) > 128 {
			rid = rid[:128]
		}
		attrs := []any{
			"method", c.Request.Method,
			"route", c.FullPath(),
			"path", c.Request.URL.Path,
			"status", status,
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
			"request_id", rid,
		}
		if len(c.Errors) > 0 {
			attrs = append(attrs, "error", c.Errors.String())
			log.Error("request failed", attrs...)
			return
		}
		log.Info("request", attrs...)
	}
}

// NoRoute answers unknown paths with 404 in the contract's shape.
func NoRoute(c *gin.Context) {
	Error(c, domain.NotFound("route"))
}
