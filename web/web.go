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
	"github.com/lockstep/lockstep/pgdb"
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

// RetryAfterSeconds is the Retry-After of a 503 UNAVAILABLE answer.
const RetryAfterSeconds = "1"

// Body renders err in the contract's shape. A transient database error (a
// connection terminated or refused, a serialization failure: pgdb.Transient)
// is 503 UNAVAILABLE, which a client retries. Other errors that are not
// *domain.Error become INTERNAL with a generic message: their text never
// reaches a client.
func Body(err error) (int, ErrorBody) {
	var de *domain.Error
	if !errors.As(err, &de) {
		if pgdb.Transient(err) {
			return http.StatusServiceUnavailable, ErrorBody{ErrorDetail{Code: domain.CodeUnavailable,
				Message: "the service is briefly unavailable; retry in a moment", Details: map[string]any{}}}
		}
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
	if status == http.StatusServiceUnavailable && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", RetryAfterSeconds)
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
	if err := Storable(data); err != nil {
		return err
	}
	return json.Unmarshal(data, dst)
}

// Storable refuses a JSON request body holding a value PostgreSQL cannot
// store (a NUL, invalid UTF-8, a lone surrogate, a number jsonb refuses, deep
// nesting), naming where it lies ("title", "context_data.text"). It runs
// before decoding, which would silently turn a lone surrogate or invalid
// UTF-8 into U+FFFD. A body that is not JSON at all is left to the decoder.
func Storable(data []byte) error {
	path, why := domain.JSONFieldProblem(data)
	if why == "" || why == domain.NotJSON {
		return nil
	}
	if path == "" {
		path = "body"
	}
	return domain.Invalid("invalid field", map[string]string{path: why})
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
	id, ok := ParseID(c.Param(name))
	if !ok {
		Error(c, domain.NotFound(strings.TrimSuffix(name, "_id")))
		return 0, false
	}
	return id, true
}

// ParseID parses an identifier: a positive int64 in decimal.
func ParseID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// Pagination limits: page_size is at most MaxPageSize (the contract) and page
// at most MaxPage, so that the offset (page-1)*page_size stays far from
// overflowing (and from a scan nobody needs).
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
	MaxPage         = 1_000_000
)

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

// ParsePage reads page (default 1, at most MaxPage) and page_size (default
// DefaultPageSize, at most MaxPageSize) from query values; bad names each
// invalid one.
func ParsePage(page, pageSize string) (p Page, bad map[string]string) {
	p = Page{Page: 1, PageSize: DefaultPageSize}
	bad = map[string]string{}
	if page != "" {
		n, err := strconv.Atoi(page)
		if err != nil || n < 1 || n > MaxPage {
			bad["page"] = "must be an integer from 1 to " + strconv.Itoa(MaxPage)
		}
		p.Page = n
	}
	if pageSize != "" {
		n, err := strconv.Atoi(pageSize)
		if err != nil || n < 1 || n > MaxPageSize {
			bad["page_size"] = "must be an integer from 1 to " + strconv.Itoa(MaxPageSize)
		}
		p.PageSize = n
	}
	return p, bad
}

// PageQuery reads page and page_size (see ParsePage). On bad values it
// answers 400 naming them and returns false.
func PageQuery(c *gin.Context) (Page, bool) {
	p, bad := ParsePage(c.Query("page"), c.Query("page_size"))
	if len(bad) > 0 {
		Error(c, domain.Invalid("invalid pagination", bad))
		return Page{}, false
	}
	return p, true
}

// MaxRequestIDLen bounds a client's X-Request-ID: it becomes the correlation
// id in the metadata of every event the request appends.
const MaxRequestIDLen = 128

const requestIDKey = "lockstep.request_id"

// RequestID is the request's correlation id: the X-Request-ID header when it
// is 1 to MaxRequestIDLen characters of [A-Za-z0-9._:-], else a new UUID
// (so a header of any size or content never reaches stored metadata). It is
// worked out once per request and kept in the context.
func RequestID(c *gin.Context) string {
	if v, ok := c.Get(requestIDKey); ok {
		if id, ok := v.(string); ok {
			return id
		}
	}
	id := c.GetHeader("X-Request-ID")
	if !ValidRequestID(id) {
		id = uuid.NewString()
	}
	c.Set(requestIDKey, id)
	return id
}

// ValidRequestID reports whether a client's request id may be kept as is.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
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
