package pgtest

import "net/url"

// withDatabase returns the URL-form connection string u with its database replaced.
func withDatabase(u, name string) string {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Scheme == "" {
		return u + " dbname=" + name
	}
	parsed.Path = "/" + name
	return parsed.String()
}
