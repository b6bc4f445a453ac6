package web

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/domain"
)

// CodeMethodNotAllowed is the contract's code for a known path asked with a
// method it does not take.
const CodeMethodNotAllowed domain.Code = "METHOD_NOT_ALLOWED"

// NoMethod answers a known path asked with another method: 405 in the
// contract's shape, with the Allow header (gin sets it when the engine's
// HandleMethodNotAllowed is on) repeated in details.
func NoMethod(c *gin.Context) {
	allow := c.Writer.Header().Get("Allow")
	methods := []string{}
	for _, m := range strings.Split(allow, ",") {
		if m = strings.TrimSpace(m); m != "" {
			methods = append(methods, m)
		}
	}
	c.AbortWithStatusJSON(http.StatusMethodNotAllowed, ErrorBody{ErrorDetail{
		Code:    CodeMethodNotAllowed,
		Message: c.Request.Method + " is not allowed here; allowed: " + allow,
		Details: map[string]any{"allow": methods},
	}})
}

type linkBaseKey struct{}

// LinkBaseMiddleware decides the base URL of the links a request is answered
// with (QR join links, qr_code_url, xAPI ids) and puts it in the request's
// context for LinkBase: publicURL when set; otherwise the request's own
// scheme and Host for a request from this machine (loopback), and fallback
// for any other — a Host header from the network never makes a link.
func LinkBaseMiddleware(publicURL, fallback string) gin.HandlerFunc {
	publicURL = strings.TrimRight(publicURL, "/")
	fallback = strings.TrimRight(fallback, "/")
	return func(c *gin.Context) {
		base := publicURL
		if base == "" {
			base = fallback
			if isLoopback(c.Request.RemoteAddr) && c.Request.Host != "" {
				scheme := "http"
				if c.Request.TLS != nil {
					scheme = "https"
				}
				base = scheme + "://" + c.Request.Host
			}
		}
		c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), linkBaseKey{}, base))
	}
}

// LinkBase is the base URL LinkBaseMiddleware chose for r (false when the
// middleware did not run, as in tests that mount handlers alone).
func LinkBase(r *http.Request) (string, bool) {
	b, ok := r.Context().Value(linkBaseKey{}).(string)
	return b, ok && b != ""
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
