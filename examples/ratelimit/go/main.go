// Command ratelimit is a per-user sliding-window rate limiter. Each user is one object (the
// object's name is the user) holding a log of that user's hits inside the window:
//
//	POST /hit?limit=10&window=60  -> 200 {"allowed":true,"remaining":N}, or once over the limit
//	                                 429 {"allowed":false,"remaining":0,"retryAfter":S} with a
//	                                 Retry-After: S header (whole seconds, rounded up)
//	GET  /status?limit=10&window=60 -> the same answer (always 200) without counting a hit
//
// GET /hit works too. limit is 1..1000 hits (default 10), window 1..86400 seconds (default 60).
package main

import (
	"encoding/binary"
	"strconv"
	"time"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

// Hits are stored under "t:" + 8-byte big-endian unix milliseconds + 4-byte big-endian sequence
// number (for hits in the same millisecond), with an empty value. Keys sort by time, so expired
// hits are a key range and the newest hits are the end of the range.
const hitPrefix = "t:"

func hitKey(ms int64, seq uint32) []byte {
	return binary.BigEndian.AppendUint32(dowasm.Uint64Key(hitPrefix, uint64(ms)), seq)
}

func parseHitKey(k []byte) (ms int64, seq uint32) {
	v, _ := dowasm.KeyUint64(k, hitPrefix)
	if len(k) == len(hitPrefix)+12 {
		seq = binary.BigEndian.Uint32(k[len(hitPrefix)+8:])
	}
	return int64(v), seq
}

type Limiter struct {
	obj   *dowasm.Object
	store *dowasm.Storage
}

// expire deletes the hits at or before cutoff (unix ms), at most MaxBatch keys per call.
func (l *Limiter) expire(cutoff int64) error {
	end := hitKey(cutoff+1, 0)
	for {
		old, err := l.store.List(dowasm.ListOptions{Prefix: []byte(hitPrefix), End: end, Limit: dowasm.MaxBatch})
		if err != nil || len(old) == 0 {
			return err
		}
		keys := make([][]byte, len(old))
		for i, e := range old {
			keys[i] = e.Key
		}
		if _, err := l.store.DeleteMany(keys); err != nil {
			return err
		}
	}
}

func (l *Limiter) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
	hit := false
	switch req.Path {
	case "/hit":
		if req.Method != "POST" && req.Method != "GET" {
			return dowasm.MethodNotAllowed("GET, POST"), nil
		}
		hit = true
	case "/status":
		if req.Method != "GET" {
			return dowasm.MethodNotAllowed("GET"), nil
		}
	default:
		return dowasm.Text(404, "not found: try POST /hit or GET /status\n"), nil
	}
	limit, err1 := req.QueryInt("limit", 10)
	window, err2 := req.QueryInt("window", 60)
	if err1 != nil || err2 != nil || limit < 1 || limit > 1000 || window < 1 || window > 86400 {
		return dowasm.Text(400, "limit must be 1..1000 hits and window 1..86400 seconds\n"), nil
	}
	windowMs := int64(window) * 1000
	now := time.Now().UnixMilli() // the WASI wall clock

	// The window is (now-window, now]: forget older hits, then look at the newest `limit` ones.
	if err := l.expire(now - windowMs); err != nil {
		return nil, err
	}
	recent, err := l.store.List(dowasm.ListOptions{Prefix: []byte(hitPrefix), Reverse: true, Limit: limit})
	if err != nil {
		return nil, err
	}

	if len(recent) >= limit {
		// One more hit is allowed once the limit-th newest hit leaves the window.
		oldest, _ := parseHitKey(recent[limit-1].Key)
		wait := max((oldest+windowMs-now+999)/1000, 1)
		body := `{"allowed":false,"remaining":0,"retryAfter":` + strconv.FormatInt(wait, 10) + `}`
		if !hit {
			return dowasm.JSON(200, body), nil
		}
		if user, ok := l.obj.Name(); ok {
			l.obj.Log(dowasm.LevelDebug, "rate limited "+strconv.Quote(user))
		}
		return dowasm.JSON(429, body).SetHeader("Retry-After", strconv.FormatInt(wait, 10)), nil
	}

	remaining := limit - len(recent)
	if hit {
		ms, seq := now, uint32(0)
		if len(recent) > 0 {
			// Keep keys unique and increasing even if the clock stands still or steps back.
			if lastMs, lastSeq := parseHitKey(recent[0].Key); lastMs >= ms {
				ms, seq = lastMs, lastSeq+1
			}
		}
		if err := l.store.Put(hitKey(ms, seq), nil); err != nil {
			return nil, err
		}
		remaining--
	}
	return dowasm.JSON(200, `{"allowed":true,"remaining":`+strconv.Itoa(remaining)+`}`), nil
}

func init() {
	dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) {
		return &Limiter{obj: obj, store: obj.Storage()}, nil
	})
}

func main() {}
