package web

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/domain"
)

func TestParsePage(t *testing.T) {
	for _, tc := range []struct {
		page, size string
		want       Page
		bad        []string
	}{
		{"", "", Page{1, DefaultPageSize}, nil},
		{"3", "50", Page{3, 50}, nil},
		{"1000000", "100", Page{MaxPage, MaxPageSize}, nil},
		{"9223372036854775807", "", Page{}, []string{"page"}},
		{"1000001", "", Page{}, []string{"page"}},
		{"99999999999999999999", "", Page{}, []string{"page"}},
		{"0", "101", Page{}, []string{"page", "page_size"}},
		{"1", "9223372036854775807", Page{}, []string{"page_size"}},
		{"x", "-1", Page{}, []string{"page", "page_size"}},
	} {
		p, bad := ParsePage(tc.page, tc.size)
		if len(bad) != len(tc.bad) {
			t.Errorf("ParsePage(%q, %q) bad = %v, want %v", tc.page, tc.size, bad, tc.bad)
			continue
		}
		for _, f := range tc.bad {
			if bad[f] == "" {
				t.Errorf("ParsePage(%q, %q) does not name %s", tc.page, tc.size, f)
			}
		}
		if len(bad) == 0 {
			if p != tc.want {
				t.Errorf("ParsePage(%q, %q) = %+v, want %+v", tc.page, tc.size, p, tc.want)
			}
			if off := p.Offset(); off < 0 || off > (MaxPage-1)*MaxPageSize {
				t.Errorf("offset %d", off)
			}
		}
	}
}

func TestRequestID(t *testing.T) {
	for _, tc := range []struct {
		header string
		kept   bool
	}{
		{"abc-123_X.y:z", true},
		{strings.Repeat("a", MaxRequestIDLen), true},
		{"", false},
		{strings.Repeat("a", MaxRequestIDLen+1), false},
		{"a b", false},
		{"é", false},
		{"a\x00", false},
	} {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest("POST", "/", nil)
		c.Request.Header.Set("X-Request-ID", tc.header)
		id := RequestID(c)
		if tc.kept != (id == tc.header) || len(id) == 0 || len(id) > MaxRequestIDLen {
			t.Errorf("RequestID(%q) = %q", tc.header, id)
		}
		if again := RequestID(c); again != id {
			t.Errorf("RequestID is not stable within a request: %q then %q", id, again)
		}
	}
}

func TestStorableNamesTheField(t *testing.T) {
	for _, tc := range []struct{ body, field string }{
		{`{"title":"a\u0000"}`, "title"},
		{`{"context_data":{"t":"\ud800"}}`, "context_data.t"},
		{"{\"name\":\"\xff\"}", "name"},
		{`{"n":1e400000}`, "n"},
		{`"\u0000"`, "body"},
	} {
		err := Storable([]byte(tc.body))
		if domain.ErrorCode(err) != domain.CodeInvalidRequest {
			t.Fatalf("Storable(%s) = %v", tc.body, err)
		}
		status, body := Body(err)
		if status != 400 || body.Error.Details[tc.field] == nil {
			t.Errorf("Storable(%s): %d %+v, want 400 naming %s", tc.body, status, body, tc.field)
		}
	}
	for _, ok := range []string{`{"title":"카카오톡 \ud83d\ude00"}`, `{"a":`, `not json`} {
		if err := Storable([]byte(ok)); err != nil {
			t.Errorf("Storable(%s) = %v, want nil (storable, or left to the decoder)", ok, err)
		}
	}
}

// BenchmarkStorable: the body check on a 1,000-log batch (about 250 KB).
func BenchmarkStorable(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"logs":[`)
	for i := range 1000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"event_type":"CLICK","subtask_id":1001,"timestamp":"2026-12-04T09:00:00Z","event_data":{"x":120.5,"y":-33,"text":"친구 탭 \ud83d\ude00","path":["a","b"]},"screen_info":{"w":1080,"h":2400,"app":"com.kakao.talk"}}`)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := Storable(body); err != nil {
			b.Fatal(err)
		}
	}
}
