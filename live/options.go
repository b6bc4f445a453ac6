package live

import (
	"net/http"
	"strconv"
	"time"

	"github.com/lockstep/lockstep/domain"
)

// Options are what every socket's query string may ask for.
type Options struct {
	// After is ?after={position}: resume after it, without a snapshot (nil: absent).
	After *uint64
	// Batch is ?batch={ms}: messages at most every ms milliseconds, as one
	// {"type":"batch"} frame (0: absent, one frame per message).
	Batch time.Duration
}

// Bounds of ?batch=, in milliseconds.
const (
	MinBatchMillis = 10
	MaxBatchMillis = 1000
)

// ParseOptions reads ?after= and ?batch=. A bad value is a 400
// INVALID_REQUEST (*domain.Error) naming the field; handlers answer it before
// upgrading, so the socket never opens.
func ParseOptions(r *http.Request) (Options, error) {
	q := r.URL.Query()
	var o Options
	if s := q.Get("after"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return Options{}, domain.Invalid("after must be a non-negative integer position",
				map[string]string{"after": "must be a non-negative integer position"})
		}
		o.After = &v
	}
	if s := q.Get("batch"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < MinBatchMillis || v > MaxBatchMillis {
			return Options{}, domain.Invalid("batch must be a number of milliseconds from 10 to 1000",
				map[string]string{"batch": "must be a whole number of milliseconds from 10 to 1000"})
		}
		o.Batch = time.Duration(v) * time.Millisecond
	}
	return o, nil
}
