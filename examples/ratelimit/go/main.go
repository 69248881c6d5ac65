// Command ratelimit is a per-user sliding-window rate limiter: one object per user (the object's
// name), a log of the hits inside the window.
//
//	POST /hit?limit=10&window=60  -> 200 {"allowed":true,"remaining":N}
//	                                 or 429 with Retry-After (seconds) once over the limit
//	GET  /status?limit=10&window=60 -> the same answer without counting a hit
package main

import (
	"encoding/binary"
	"strconv"
	"time"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

type Limiter struct{ store *dowasm.Storage }

const prefix = "t:"

// hitKey sorts by time: "t:" + 8-byte big-endian unix ms + a sequence number for equal times.
func hitKey(ms int64, seq uint32) []byte {
	k := dowasm.Uint64Key(prefix, uint64(ms))
	return binary.BigEndian.AppendUint32(k, seq)
}

func hitTime(k []byte) int64 { return int64(binary.BigEndian.Uint64(k[len(prefix):])) }

func param(req *dowasm.Request, name string, def, max int) (int, bool) {
	s := req.QueryParam(name)
	if s == "" {
		return def, true
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 || v > max {
		return 0, false
	}
	return v, true
}

func (l *Limiter) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
	if req.Path != "/hit" && req.Path != "/status" {
		return dowasm.Text(404, "not found: try POST /hit or GET /status\n"), nil
	}
	limit, ok1 := param(req, "limit", 10, 1000)
	window, ok2 := param(req, "window", 60, 86400)
	if !ok1 || !ok2 {
		return dowasm.Text(400, "limit must be 1..1000 and window 1..86400 seconds\n"), nil
	}
	now := time.Now().UnixMilli()
	start := now - int64(window)*1000
	// Forget hits that left the window (in batches of at most 128 keys).
	for {
		old, err := l.store.List(dowasm.ListOptions{Prefix: []byte(prefix), End: hitKey(start+1, 0), Limit: dowasm.MaxBatch})
		if err != nil {
			return nil, err
		}
		if len(old) == 0 {
			break
		}
		keys := make([][]byte, len(old))
		for i, e := range old {
			keys[i] = e.Key
		}
		if _, err := l.store.DeleteMany(keys); err != nil {
			return nil, err
		}
	}
	hits, err := l.store.List(dowasm.ListOptions{Prefix: []byte(prefix), Limit: 1000})
	if err != nil {
		return nil, err
	}
	if len(hits) >= limit {
		// The oldest hit that must expire before one more is allowed.
		oldest := hitTime(hits[len(hits)-limit].Key)
		wait := (oldest + int64(window)*1000 - now + 999) / 1000
		if wait < 1 {
			wait = 1
		}
		return dowasm.JSON(429, `{"allowed":false,"remaining":0,"retryAfter":`+strconv.FormatInt(wait, 10)+`}`).
			WithHeader("Retry-After", strconv.FormatInt(wait, 10)), nil
	}
	remaining := limit - len(hits)
	if req.Path == "/hit" {
		if req.Method != "POST" && req.Method != "GET" {
			return dowasm.Text(405, "use POST\n"), nil
		}
		if err := l.store.Put(hitKey(now, uint32(len(hits))), nil); err != nil {
			return nil, err
		}
		remaining--
	}
	return dowasm.JSON(200, `{"allowed":true,"remaining":`+strconv.Itoa(remaining)+`}`), nil
}

func init() {
	dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) { return &Limiter{store: obj.Storage()}, nil })
}

func main() {}
