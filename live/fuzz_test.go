package live

// FuzzParseOptions feeds socket query strings (?after=, ?batch=, ?token=)
// to the parsers every socket handler calls before upgrading: ParseOptions
// and Token. Properties: nothing panics; a refusal is an INVALID_REQUEST
// *domain.Error naming after or batch; an accepted batch lies within
// MinBatchMillis..MaxBatchMillis and after is the decimal given; Token
// returns the query token only on a GET WebSocket upgrade of a /ws path.

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/lockstep/lockstep/domain"
)

func FuzzParseOptions(f *testing.F) {
	for _, q := range []string{
		"", "after=0", "after=42", "after=18446744073709551615", "after=18446744073709551616", "after=-1", "after=1e3",
		"batch=10", "batch=1000", "batch=9", "batch=1001", "batch=abc", "after=5&batch=50", "token=abc&after=7",
		"after=%zz", "after=&batch=", "batch=0x10", "after=+1", "batch=100&batch=5", "token=a%00b",
	} {
		f.Add(q, true)
		f.Add(q, false)
	}
	f.Fuzz(func(t *testing.T, rawQuery string, upgrade bool) {
		r := httptest.NewRequest(http.MethodGet, "/ws/help/1", nil)
		r.URL.RawQuery = rawQuery
		if upgrade {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
		}
		q, _ := url.ParseQuery(rawQuery)
		o, err := ParseOptions(r)
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.CodeInvalidRequest {
				t.Fatalf("ParseOptions(%q): %v is not INVALID_REQUEST", rawQuery, err)
			}
			_, a := de.Details["after"]
			_, b := de.Details["batch"]
			if !a && !b {
				t.Fatalf("ParseOptions(%q): refusal names no field: %+v", rawQuery, de.Details)
			}
		} else {
			if s := q.Get("after"); s != "" {
				if o.After == nil || strconv.FormatUint(*o.After, 10) != trimPlus(s) {
					t.Fatalf("ParseOptions(%q): after %v", rawQuery, o.After)
				}
			} else if o.After != nil {
				t.Fatalf("ParseOptions(%q): after %d without ?after=", rawQuery, *o.After)
			}
			if o.Batch != 0 && (o.Batch < MinBatchMillis*time.Millisecond || o.Batch > MaxBatchMillis*time.Millisecond) {
				t.Fatalf("ParseOptions(%q): batch %v out of bounds", rawQuery, o.Batch)
			}
			if q.Get("batch") != "" && o.Batch == 0 {
				t.Fatalf("ParseOptions(%q): ?batch= ignored", rawQuery)
			}
		}
		tok := Token(r)
		if want := q.Get("token"); upgrade && tok != want || !upgrade && tok != "" {
			t.Fatalf("Token(%q, upgrade %v) = %q", rawQuery, upgrade, tok)
		}
	})
}

// trimPlus is the digits strconv.ParseUint accepted ("+5" is not accepted, so
// this only drops leading zeros).
func trimPlus(s string) string {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return s
	}
	return strconv.FormatUint(v, 10)
}
