package web

import (
	"net/http"
	"strings"
)

// BaseURL is the public base of the links the server hands out (QR codes,
// xAPI ids, join URLs): the link base LinkBaseMiddleware chose for the request
// (PUBLIC_URL, or the loopback rule) when there is one, else publicURL when
// set, else the request's own scheme and host.
func BaseURL(publicURL string, r *http.Request) string {
	if b, ok := LinkBase(r); ok {
		return b
	}
	if publicURL != "" {
		return strings.TrimRight(publicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Deref is the string s points to, or "" for nil.
func Deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
