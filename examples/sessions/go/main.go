// Command sessions keeps expiring sessions. Each user is one object (the name in the URL) holding
// that user's sessions; the object's alarm deletes them once they expire, even when nobody asks:
//
//	POST   /sessions?ttl=S   -> 201 "<id>\n": a new session holding the body (at most 1024
//	                            bytes) that expires in S seconds (1..86400, default 60)
//	GET    /sessions         -> the live sessions as "<id> <expiresAt>\n" lines, in id order
//	GET    /sessions/<id>    -> the session's data; 404 once it expired
//	DELETE /sessions/<id>    -> 204, or 404 when there is no such session
//	GET    /alarm            -> when the alarm fires next (unix ms), or "none"
//
// Times are unix milliseconds from dowasm.Now() (the WASI clock), read afresh in every event.
package main

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

const (
	nextKey       = "next"     // the next session id, as decimal text (absent: 1)
	sessionPrefix = "session:" // session:<id, zero-padded to 20 digits> -> "<expiresAt> <data>"
	maxData       = 1024       // bytes of session data
)

// stored is one stored session without its data: its key and when it expires (unix ms).
type stored struct {
	key       []byte
	expiresAt int64
}

// parseValue splits a stored session value, "<expiresAt> <data>", into its parts.
func parseValue(v []byte) (expiresAt int64, data []byte, ok bool) {
	sp := bytes.IndexByte(v, ' ')
	if sp < 0 {
		return 0, nil, false
	}
	t, err := strconv.ParseInt(string(v[:sp]), 10, 64)
	if err != nil {
		return 0, nil, false
	}
	return t, v[sp+1:], true
}

// keyID returns the id in a session key (the 20 digits after the prefix).
func keyID(key []byte) (uint64, bool) {
	if len(key) < len(sessionPrefix) {
		return 0, false
	}
	id, err := strconv.ParseUint(string(key[len(sessionPrefix):]), 10, 64)
	return id, err == nil
}

// parseID parses a session id in a path: a decimal integer >= 1, digits only, no leading zeros.
func parseID(s string) (uint64, bool) {
	if s == "" || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseUint(s, 10, 64) // fails beyond 2^64-1
	return id, err == nil
}

func malformed(key []byte) error {
	return errors.New("malformed session under " + strconv.Quote(string(key)))
}

func noSuchSession() *dowasm.Response { return dowasm.Text(404, "no such session\n") }

type Sessions struct {
	obj   *dowasm.Object
	store *dowasm.Storage
}

// all returns every stored session (expired or not) in id order, read a page at a time.
func (s *Sessions) all() ([]stored, error) {
	var out []stored
	opts := dowasm.ListOptions{Prefix: []byte(sessionPrefix), Limit: dowasm.MaxBatch}
	for {
		page, err := s.store.List(opts)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			t, _, ok := parseValue(e.Value)
			if !ok {
				return nil, malformed(e.Key)
			}
			out = append(out, stored{key: e.Key, expiresAt: t})
		}
		if len(page) < dowasm.MaxBatch {
			return out, nil
		}
		opts.StartAfter = page[len(page)-1].Key
	}
}

func (s *Sessions) create(req *dowasm.Request) (*dowasm.Response, error) {
	ttl, err := req.QueryInt("ttl", 60)
	if err != nil || ttl < 1 || ttl > 86400 {
		return dowasm.Text(400, "ttl must be 1..86400 seconds\n"), nil
	}
	if len(req.Body) > maxData {
		return dowasm.Text(400, "data longer than 1024 bytes\n"), nil
	}
	expiresAt := dowasm.Now() + int64(ttl)*1000
	id, ok, err := s.store.GetInt64(nextKey)
	if err != nil {
		return nil, err
	}
	if !ok {
		id = 1
	}
	value := strconv.AppendInt(nil, expiresAt, 10)
	value = append(value, ' ')
	value = append(value, req.Body...)
	// Both writes in one call: kept together or not at all (and the whole event's writes, the
	// alarm included, commit before the answer leaves).
	if err := s.store.PutMany([]dowasm.Entry{
		{Key: []byte(nextKey), Value: strconv.AppendInt(nil, id+1, 10)},
		{Key: dowasm.PaddedKey(sessionPrefix, uint64(id)), Value: value},
	}); err != nil {
		return nil, err
	}
	// The alarm stays at the earliest expiry.
	if t, ok, err := s.store.GetAlarm(); err != nil {
		return nil, err
	} else if !ok || t > expiresAt {
		if err := s.store.SetAlarm(expiresAt); err != nil {
			return nil, err
		}
	}
	return dowasm.Text(201, strconv.FormatInt(id, 10)+"\n"), nil
}

func (s *Sessions) list() (*dowasm.Response, error) {
	now := dowasm.Now()
	all, err := s.all()
	if err != nil {
		return nil, err
	}
	var b []byte
	for _, st := range all {
		if st.expiresAt > now {
			id, ok := keyID(st.key)
			if !ok {
				return nil, malformed(st.key)
			}
			b = strconv.AppendUint(b, id, 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, st.expiresAt, 10)
			b = append(b, '\n')
		}
	}
	return dowasm.Bytes(200, b).SetHeader("Content-Type", "text/plain; charset=utf-8"), nil
}

func (s *Sessions) get(id uint64) (*dowasm.Response, error) {
	key := dowasm.PaddedKey(sessionPrefix, id)
	v, ok, err := s.store.Get(key)
	if err != nil {
		return nil, err
	}
	if ok {
		expiresAt, data, ok := parseValue(v)
		if !ok {
			return nil, malformed(key)
		}
		// Expired is gone, even before the alarm deleted it.
		if expiresAt > dowasm.Now() {
			return dowasm.Bytes(200, data).SetHeader("Content-Type", "text/plain; charset=utf-8"), nil
		}
	}
	return noSuchSession(), nil
}

func (s *Sessions) delete(id uint64) (*dowasm.Response, error) {
	existed, err := s.store.Delete(dowasm.PaddedKey(sessionPrefix, id))
	if err != nil {
		return nil, err
	}
	if !existed {
		return noSuchSession(), nil
	}
	return dowasm.Bytes(204, nil), nil
}

func (s *Sessions) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
	switch {
	case req.Path == "/sessions":
		switch req.Method {
		case "GET":
			return s.list()
		case "POST":
			return s.create(req)
		}
		return dowasm.MethodNotAllowed("GET, POST"), nil

	case strings.HasPrefix(req.Path, "/sessions/"):
		if req.Method != "GET" && req.Method != "DELETE" {
			return dowasm.MethodNotAllowed("GET, DELETE"), nil
		}
		id, ok := parseID(req.Path[len("/sessions/"):])
		if !ok {
			return dowasm.Text(400, "not a session id\n"), nil
		}
		if req.Method == "GET" {
			return s.get(id)
		}
		return s.delete(id)

	case req.Path == "/alarm":
		if req.Method != "GET" {
			return dowasm.MethodNotAllowed("GET"), nil
		}
		t, ok, err := s.store.GetAlarm()
		if err != nil {
			return nil, err
		}
		if !ok {
			return dowasm.Text(200, "none\n"), nil
		}
		return dowasm.Text(200, strconv.FormatInt(t, 10)+"\n"), nil
	}
	return dowasm.NotFound(), nil
}

// Alarm deletes the expired sessions and sets the alarm to the next expiry, if any. The alarm may
// fire late, or twice (delivery is at least once): each run only looks at the clock and at what
// is stored, so that is harmless.
func (s *Sessions) Alarm(dowasm.AlarmInfo) error {
	now := dowasm.Now()
	all, err := s.all()
	if err != nil {
		return err
	}
	var expired [][]byte
	next, found := int64(0), false
	for _, st := range all {
		if st.expiresAt <= now {
			expired = append(expired, st.key)
		} else if !found || st.expiresAt < next {
			next, found = st.expiresAt, true
		}
	}
	for i := 0; i < len(expired); i += dowasm.MaxBatch {
		if _, err := s.store.DeleteMany(expired[i:min(i+dowasm.MaxBatch, len(expired))]); err != nil {
			return err
		}
	}
	if found {
		if err := s.store.SetAlarm(next); err != nil {
			return err
		}
	}
	s.obj.Log(dowasm.LevelInfo, "deleted "+strconv.Itoa(len(expired))+" expired sessions")
	return nil
}

func init() {
	dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) {
		return &Sessions{obj: obj, store: obj.Storage()}, nil
	})
}

func main() {}
