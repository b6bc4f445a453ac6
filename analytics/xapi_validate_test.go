package analytics_test

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// An xAPI 1.0.3 statement validator, written against the specification's
// Data part (xAPI-Data.md, section 2.4 and 4) because no Go validator module
// is within reach. It checks the statement's wire form (decoded JSON), the
// way a conformant LRS would before accepting it: allowed and required
// properties, no nulls, UUID forms, IRI/IRL forms, the Agent's single
// inverse functional identifier, language maps, result and context rules,
// and ISO 8601 timestamps with a time zone.

var (
	uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	// RFC 5646 language tag (langtag production, simplified: language,
	// optional script, region, variants; or a private use tag).
	langRe = regexp.MustCompile(`(?i)^(?:(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})(?:-[a-z]{4})?(?:-(?:[a-z]{2}|[0-9]{3}))?(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*(?:-x(?:-[a-z0-9]{1,8})+)?|x(?:-[a-z0-9]{1,8})+)$`)
	// ISO 8601 combined date and time with a zone (the forms RFC 3339 allows).
	tsRe       = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
	durationRe = regexp.MustCompile(`^P(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?(T(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$`)
	sha1Re     = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

type xapiValidator struct {
	errs []string
}

func (v *xapiValidator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, path+": "+fmt.Sprintf(format, args...))
}

// validateStatement returns every rule the statement breaks.
func validateStatement(st map[string]any) []string {
	v := &xapiValidator{}
	v.noNulls("statement", st)
	v.only("statement", st, "id", "actor", "verb", "object", "result", "context", "timestamp", "stored", "authority", "version", "attachments")
	v.require("statement", st, "actor", "verb", "object")
	if id, ok := st["id"]; ok {
		v.uuid("statement.id", id)
	}
	if a, ok := st["actor"]; ok {
		v.actor("statement.actor", a)
	}
	if vb, ok := st["verb"]; ok {
		v.verb("statement.verb", vb)
	}
	objIsAgent := false
	if o, ok := st["object"]; ok {
		objIsAgent = v.object("statement.object", o)
	}
	if r, ok := st["result"]; ok {
		v.result("statement.result", r)
	}
	if c, ok := st["context"]; ok {
		v.context("statement.context", c, objIsAgent)
	}
	if ts, ok := st["timestamp"]; ok {
		v.timestamp("statement.timestamp", ts)
	}
	if ver, ok := st["version"]; ok {
		if s, ok := ver.(string); !ok || !strings.HasPrefix(s, "1.0") {
			v.fail("statement.version", "must be a 1.0.x version string, got %v", ver)
		}
	}
	return v.errs
}

func (v *xapiValidator) noNulls(path string, x any) {
	switch t := x.(type) {
	case nil:
		v.fail(path, "null value")
	case map[string]any:
		for k, e := range t {
			if strings.HasSuffix(path, ".extensions") {
				continue // extension values may be anything JSON
			}
			v.noNulls(path+"."+k, e)
		}
	case []any:
		for i, e := range t {
			v.noNulls(fmt.Sprintf("%s[%d]", path, i), e)
		}
	}
}

func (v *xapiValidator) obj(path string, x any) (map[string]any, bool) {
	m, ok := x.(map[string]any)
	if !ok {
		v.fail(path, "must be an object, got %T", x)
	}
	return m, ok
}

// member is m[key], when m has it and it is an object, checked to hold
// only the allowed properties.
func (v *xapiValidator) member(path string, m map[string]any, key string, allowed ...string) (map[string]any, bool) {
	x, ok := m[key]
	if !ok {
		return nil, false
	}
	o, ok := v.obj(path+"."+key, x)
	if ok {
		v.only(path+"."+key, o, allowed...)
	}
	return o, ok
}

func (v *xapiValidator) only(path string, m map[string]any, allowed ...string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		found := false
		for _, a := range allowed {
			if k == a {
				found = true
			}
		}
		if !found {
			v.fail(path, "property %q is not allowed here", k)
		}
	}
}

func (v *xapiValidator) require(path string, m map[string]any, keys ...string) {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			v.fail(path, "%q is required", k)
		}
	}
}

func (v *xapiValidator) str(path string, x any) (string, bool) {
	s, ok := x.(string)
	if !ok {
		v.fail(path, "must be a string, got %T", x)
	}
	return s, ok
}

func (v *xapiValidator) uuid(path string, x any) {
	if s, ok := v.str(path, x); ok && !uuidRe.MatchString(s) {
		v.fail(path, "%q is not a canonical RFC 4122 UUID", s)
	}
}

// iri: an absolute IRI (scheme ":" hierarchical part), no spaces.
func (v *xapiValidator) iri(path string, x any) {
	v.url(path, x, "an absolute IRI", func(s string, u *url.URL) bool {
		return u.Scheme != "" && !strings.ContainsAny(s, " \t\n<>\"{}|\\^`") && (u.Opaque != "" || u.Host != "" || u.Path != "")
	})
}

// irl: an IRI that resolves (http or https with a host).
func (v *xapiValidator) irl(path string, x any) {
	v.url(path, x, "a resolvable IRL", func(_ string, u *url.URL) bool {
		return (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
	})
}

// url: a string that parses as a URL and passes valid (what names it).
func (v *xapiValidator) url(path string, x any, what string, valid func(s string, u *url.URL) bool) {
	s, ok := v.str(path, x)
	if !ok {
		return
	}
	if u, err := url.Parse(s); err != nil || !valid(s, u) {
		v.fail(path, "%q is not "+what, s)
	}
}

func (v *xapiValidator) langMap(path string, x any) {
	m, ok := v.obj(path, x)
	if !ok {
		return
	}
	if len(m) == 0 {
		v.fail(path, "empty language map")
	}
	for k, e := range m {
		if !langRe.MatchString(k) {
			v.fail(path, "%q is not an RFC 5646 language tag", k)
		}
		v.str(path+"."+k, e)
	}
}

func (v *xapiValidator) extensions(path string, x any) {
	m, ok := v.obj(path, x)
	if !ok {
		return
	}
	for k := range m {
		v.iri(path+" key", k)
	}
}

func (v *xapiValidator) timestamp(path string, x any) {
	s, ok := v.str(path, x)
	if !ok {
		return
	}
	if !tsRe.MatchString(s) {
		v.fail(path, "%q is not an ISO 8601 date-time with a time zone", s)
		return
	}
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		v.fail(path, "%q is not a valid date-time: %v", s, err)
	}
}

// agent checks an Agent (or, when group, a Group).
func (v *xapiValidator) actor(path string, x any) {
	m, ok := v.obj(path, x)
	if !ok {
		return
	}
	if ot, ok := m["objectType"]; ok && ot == "Group" {
		v.group(path, m)
		return
	}
	v.agent(path, m)
}

func (v *xapiValidator) agent(path string, m map[string]any) {
	v.only(path, m, "objectType", "name", "mbox", "mbox_sha1sum", "openid", "account")
	if ot, ok := m["objectType"]; ok && ot != "Agent" {
		v.fail(path+".objectType", "must be Agent, got %v", ot)
	}
	if n, ok := m["name"]; ok {
		v.str(path+".name", n)
	}
	ifis := 0
	for _, k := range []string{"mbox", "mbox_sha1sum", "openid", "account"} {
		if _, ok := m[k]; ok {
			ifis++
		}
	}
	if ifis != 1 {
		v.fail(path, "an Agent must have exactly one inverse functional identifier, has %d", ifis)
	}
	if mb, ok := m["mbox"]; ok {
		if s, ok := v.str(path+".mbox", mb); ok && !strings.HasPrefix(s, "mailto:") {
			v.fail(path+".mbox", "must be a mailto IRI")
		}
	}
	if h, ok := m["mbox_sha1sum"]; ok {
		if s, ok := v.str(path+".mbox_sha1sum", h); ok && !sha1Re.MatchString(s) {
			v.fail(path+".mbox_sha1sum", "must be a hex SHA-1")
		}
	}
	if o, ok := m["openid"]; ok {
		v.iri(path+".openid", o)
	}
	if acc, ok := v.member(path, m, "account", "homePage", "name"); ok {
		v.require(path+".account", acc, "homePage", "name")
		if hp, ok := acc["homePage"]; ok {
			v.irl(path+".account.homePage", hp)
		}
		if n, ok := acc["name"]; ok {
			if s, ok := v.str(path+".account.name", n); ok && s == "" {
				v.fail(path+".account.name", "must not be empty")
			}
		}
	}
}

func (v *xapiValidator) group(path string, m map[string]any) {
	v.only(path, m, "objectType", "name", "member", "mbox", "mbox_sha1sum", "openid", "account")
	members, hasMembers := m["member"].([]any)
	ifis := 0
	for _, k := range []string{"mbox", "mbox_sha1sum", "openid", "account"} {
		if _, ok := m[k]; ok {
			ifis++
		}
	}
	if ifis > 1 || (ifis == 0 && !hasMembers) {
		v.fail(path, "a Group has at most one IFI, and an anonymous Group needs members")
	}
	for i, e := range members {
		if mm, ok := v.obj(fmt.Sprintf("%s.member[%d]", path, i), e); ok {
			v.agent(fmt.Sprintf("%s.member[%d]", path, i), mm)
		}
	}
}

func (v *xapiValidator) verb(path string, x any) {
	m, ok := v.obj(path, x)
	if !ok {
		return
	}
	v.only(path, m, "id", "display")
	v.require(path, m, "id")
	if id, ok := m["id"]; ok {
		v.iri(path+".id", id)
	}
	if d, ok := m["display"]; ok {
		v.langMap(path+".display", d)
	}
}

// object checks the statement's object; it reports whether it is an Agent or Group.
func (v *xapiValidator) object(path string, x any) bool {
	m, ok := v.obj(path, x)
	if !ok {
		return false
	}
	switch ot := m["objectType"]; ot {
	case nil, "Activity":
		v.activity(path, m)
	case "Agent":
		v.agent(path, m)
		return true
	case "Group":
		v.group(path, m)
		return true
	case "StatementRef":
		v.only(path, m, "objectType", "id")
		v.require(path, m, "id")
		v.uuid(path+".id", m["id"])
	default:
		v.fail(path+".objectType", "unsupported objectType %v", ot)
	}
	return false
}

func (v *xapiValidator) activity(path string, m map[string]any) {
	v.only(path, m, "objectType", "id", "definition")
	v.require(path, m, "id")
	if id, ok := m["id"]; ok {
		v.iri(path+".id", id)
	}
	d, ok := m["definition"]
	if !ok {
		return
	}
	def, ok := v.obj(path+".definition", d)
	if !ok {
		return
	}
	v.only(path+".definition", def, "name", "description", "type", "moreInfo", "extensions",
		"interactionType", "correctResponsesPattern", "choices", "scale", "source", "target", "steps")
	for _, k := range []string{"name", "description"} {
		if lm, ok := def[k]; ok {
			v.langMap(path+".definition."+k, lm)
		}
	}
	if t, ok := def["type"]; ok {
		v.iri(path+".definition.type", t)
	}
	if mi, ok := def["moreInfo"]; ok {
		v.irl(path+".definition.moreInfo", mi)
	}
	if e, ok := def["extensions"]; ok {
		v.extensions(path+".definition.extensions", e)
	}
}

func (v *xapiValidator) result(path string, x any) {
	m, ok := v.obj(path, x)
	if !ok {
		return
	}
	v.only(path, m, "score", "success", "completion", "response", "duration", "extensions")
	for _, k := range []string{"success", "completion"} {
		if b, ok := m[k]; ok {
			if _, ok := b.(bool); !ok {
				v.fail(path+"."+k, "must be a boolean")
			}
		}
	}
	if r, ok := m["response"]; ok {
		v.str(path+".response", r)
	}
	if d, ok := m["duration"]; ok {
		if s, ok := v.str(path+".duration", d); ok && (!durationRe.MatchString(s) || s == "P" || strings.HasSuffix(s, "T")) {
			v.fail(path+".duration", "%q is not an ISO 8601 duration", s)
		}
	}
	if e, ok := m["extensions"]; ok {
		v.extensions(path+".extensions", e)
	}
	if sc, ok := v.member(path, m, "score", "scaled", "raw", "min", "max"); ok {
		num := func(k string) (float64, bool) {
			x, ok := sc[k]
			if !ok {
				return 0, false
			}
			f, isNum := x.(float64)
			if !isNum {
				v.fail(path+".score."+k, "must be a number")
			}
			return f, isNum
		}
		if f, ok := num("scaled"); ok && (f < -1 || f > 1) {
			v.fail(path+".score.scaled", "must be between -1 and 1, got %v", f)
		}
		lo, hasMin := num("min")
		hi, hasMax := num("max")
		if hasMin && hasMax && lo >= hi {
			v.fail(path+".score", "min must be below max")
		}
		if raw, ok := num("raw"); ok && ((hasMin && raw < lo) || (hasMax && raw > hi)) {
			v.fail(path+".score.Raw", "must be between min and max")
		}
	}
}

func (v *xapiValidator) context(path string, x any, objIsAgent bool) {
	m, ok := v.obj(path, x)
	if !ok {
		return
	}
	v.only(path, m, "registration", "instructor", "team", "contextActivities", "revision", "platform", "language", "statement", "extensions")
	if r, ok := m["registration"]; ok {
		v.uuid(path+".registration", r)
	}
	if i, ok := m["instructor"]; ok {
		v.actor(path+".instructor", i)
	}
	if t, ok := m["team"]; ok {
		if tm, ok := v.obj(path+".team", t); ok {
			if tm["objectType"] != "Group" {
				v.fail(path+".team", "must be a Group")
			}
			v.group(path+".team", tm)
		}
	}
	for _, k := range []string{"revision", "platform"} {
		if s, ok := m[k]; ok {
			v.str(path+"."+k, s)
			if objIsAgent {
				v.fail(path+"."+k, "must not be used when the object is an Agent or Group")
			}
		}
	}
	if l, ok := m["language"]; ok {
		if s, ok := v.str(path+".language", l); ok && !langRe.MatchString(s) {
			v.fail(path+".language", "%q is not an RFC 5646 tag", s)
		}
	}
	if sr, ok := v.member(path, m, "statement", "objectType", "id"); ok {
		if sr["objectType"] != "StatementRef" {
			v.fail(path+".statement.objectType", "must be StatementRef")
		}
		v.uuid(path+".statement.id", sr["id"])
	}
	if e, ok := m["extensions"]; ok {
		v.extensions(path+".extensions", e)
	}
	if cm, ok := v.member(path, m, "contextActivities", "parent", "grouping", "category", "other"); ok {
		for k, e := range cm {
			list, isList := e.([]any)
			if !isList {
				list = []any{e}
			}
			for i, a := range list {
				p := fmt.Sprintf("%s.contextActivities.%s[%d]", path, k, i)
				if am, ok := v.obj(p, a); ok {
					if ot, ok := am["objectType"]; ok && ot != "Activity" {
						v.fail(p, "must be an Activity")
					}
					v.activity(p, am)
				}
			}
		}
	}
}

// TestXAPIValidatorRejectsBadStatements proves the validator can fail: each
// statement breaks one rule.
func TestXAPIValidatorRejectsBadStatements(t *testing.T) {
	t.Parallel()
	good := func() map[string]any {
		return map[string]any{
			"id":        "6f1b1d5a-3c1e-5d9a-9b1e-0a1b2c3d4e5f",
			"actor":     map[string]any{"objectType": "Agent", "account": map[string]any{"homePage": "http://lockstep.test", "name": "12"}},
			"verb":      map[string]any{"id": "http://adlnet.gov/expapi/verbs/completed", "display": map[string]any{"en-US": "completed"}},
			"object":    map[string]any{"objectType": "Activity", "id": "http://lockstep.test/xapi/activities/subtasks/3"},
			"context":   map[string]any{"registration": "0f8fad5b-d9cb-469f-a165-70867728950e", "platform": "Lockstep"},
			"timestamp": "2025-10-28T10:00:00.123Z",
		}
	}
	if errs := validateStatement(good()); len(errs) != 0 {
		t.Fatalf("the good statement fails: %v", errs)
	}
	cases := []struct {
		name   string
		break_ func(m map[string]any)
	}{
		{"missing_verb", func(m map[string]any) { delete(m, "verb") }},
		{"unknown_property", func(m map[string]any) { m["extra"] = 1 }},
		{"id_not_uuid", func(m map[string]any) { m["id"] = "42" }},
		{"id_uppercase", func(m map[string]any) { m["id"] = "6F1B1D5A-3C1E-5D9A-9B1E-0A1B2C3D4E5F" }},
		{"two_ifis", func(m map[string]any) { m["actor"].(map[string]any)["mbox"] = "mailto:a@b.c" }},
		{"no_ifi", func(m map[string]any) { delete(m["actor"].(map[string]any), "account") }},
		{"account_without_name", func(m map[string]any) { delete(m["actor"].(map[string]any)["account"].(map[string]any), "name") }},
		{"homepage_not_irl", func(m map[string]any) {
			m["actor"].(map[string]any)["account"].(map[string]any)["homePage"] = "lockstep"
		}},
		{"verb_id_relative", func(m map[string]any) { m["verb"].(map[string]any)["id"] = "completed" }},
		{"display_bad_language", func(m map[string]any) { m["verb"].(map[string]any)["display"] = map[string]any{"english!": "x"} }},
		{"object_id_relative", func(m map[string]any) { m["object"].(map[string]any)["id"] = "/subtasks/3" }},
		{"registration_not_uuid", func(m map[string]any) { m["context"].(map[string]any)["registration"] = "session-1" }},
		{"timestamp_without_zone", func(m map[string]any) { m["timestamp"] = "2025-10-28T10:00:00" }},
		{"timestamp_not_a_date", func(m map[string]any) { m["timestamp"] = "2025-13-40T10:00:00Z" }},
		{"null_value", func(m map[string]any) { m["result"] = map[string]any{"response": nil} }},
		{"score_out_of_range", func(m map[string]any) {
			m["result"] = map[string]any{"score": map[string]any{"raw": 7.0, "min": 1.0, "max": 5.0}}
		}},
		{"scaled_out_of_range", func(m map[string]any) { m["result"] = map[string]any{"score": map[string]any{"scaled": 2.0}} }},
		{"platform_with_agent_object", func(m map[string]any) {
			m["object"] = map[string]any{"objectType": "Agent", "account": map[string]any{"homePage": "http://x.test", "name": "1"}}
		}},
		{"context_activity_without_id", func(m map[string]any) {
			m["context"].(map[string]any)["contextActivities"] = map[string]any{"parent": []any{map[string]any{"objectType": "Activity"}}}
		}},
		{"extension_key_not_iri", func(m map[string]any) { m["context"].(map[string]any)["extensions"] = map[string]any{"position": 1} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := good()
			c.break_(m)
			if errs := validateStatement(m); len(errs) == 0 {
				t.Fatalf("accepted: %v", m)
			}
		})
	}
}
