// Command rooms is a room registry built from calls between objects. The object a client
// addresses is the registry; each room is an object of the same class named
// "<registry name>.room.<room>", which keeps its own members:
//
//	POST /rooms/<room>/join?member=<m>   -> the room's member count, after the room's "join"
//	POST /rooms/<room>/leave?member=<m>  -> the room's member count, after the room's "leave"
//	GET  /rooms                          -> "<room> <count>" per room, asking each room ("count")
//	GET  /members                        -> this object's own members, one per line
//
// Room and member names are 1 to 64 characters from [a-z0-9-].
package main

import (
	"errors"
	"strconv"
	"strings"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

const (
	className    = "rooms"
	roomPrefix   = "room:"   // in the registry: room:<room> -> empty, one per room with members
	memberPrefix = "member:" // in a room: member:<m> -> empty, one per member
)

type Rooms struct {
	obj   *dowasm.Object
	store *dowasm.Storage
}

// validName reports whether s is a room or member name: 1..64 characters from [a-z0-9-].
func validName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// room returns a stub for the registry's room: the object "<registry>.room.<room>" of this class.
func (r *Rooms) room(registry, room string) *dowasm.Stub {
	return r.obj.Stub(className, registry+".room."+room)
}

// callFailed answers a failed call: 502 with the error's text (the callee's message included).
func callFailed(err error) *dowasm.Response { return dowasm.Text(502, err.Error()+"\n") }

// noName answers a join, leave or listing on a registry addressed by ID: without a name, its
// rooms cannot be named after it.
func noName() *dowasm.Response { return dowasm.Text(400, "a registry needs a name\n") }

func (r *Rooms) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
	switch req.Path {
	case "/rooms":
		if req.Method != "GET" {
			return dowasm.MethodNotAllowed("GET"), nil
		}
		return r.listRooms()
	case "/members":
		if req.Method != "GET" {
			return dowasm.MethodNotAllowed("GET"), nil
		}
		entries, err := r.store.List(dowasm.ListOptions{Prefix: []byte(memberPrefix)})
		if err != nil {
			return nil, err
		}
		var b []byte
		for _, e := range entries {
			b = append(b, e.Key[len(memberPrefix):]...)
			b = append(b, '\n')
		}
		return dowasm.Text(200, string(b)), nil
	}
	// /rooms/<room>/join and /rooms/<room>/leave: <room> is everything in between.
	rest, ok := strings.CutPrefix(req.Path, "/rooms/")
	if !ok {
		return dowasm.NotFound(), nil
	}
	var room, op string
	if room, ok = strings.CutSuffix(rest, "/join"); ok {
		op = "join"
	} else if room, ok = strings.CutSuffix(rest, "/leave"); ok {
		op = "leave"
	} else {
		return dowasm.NotFound(), nil
	}
	if req.Method != "POST" {
		return dowasm.MethodNotAllowed("POST"), nil
	}
	if !validName(room) {
		return dowasm.Text(400, "bad room name\n"), nil
	}
	member := req.QueryParam("member")
	if !validName(member) {
		return dowasm.Text(400, "bad member name\n"), nil
	}
	registry, ok := r.obj.Name()
	if !ok {
		return noName(), nil
	}
	// The room changes its members in its own event and transaction; the count arrives after
	// its commit. The registry's own write below commits with this event.
	count, err := r.room(registry, room).Call(op, []byte(member))
	if err != nil {
		return callFailed(err), nil
	}
	key := []byte(roomPrefix + room)
	if op == "join" {
		err = r.store.Put(key, nil)
	} else if string(count) == "0" {
		_, err = r.store.Delete(key)
	}
	if err != nil {
		return nil, err
	}
	return dowasm.Text(200, string(count)+"\n"), nil
}

// listRooms answers GET /rooms: every room the registry knows, with the count its room object
// reports.
func (r *Rooms) listRooms() (*dowasm.Response, error) {
	entries, err := r.store.List(dowasm.ListOptions{Prefix: []byte(roomPrefix)})
	if err != nil {
		return nil, err
	}
	var b []byte
	if len(entries) > 0 {
		registry, ok := r.obj.Name()
		if !ok {
			return noName(), nil
		}
		for _, e := range entries {
			room := string(e.Key[len(roomPrefix):])
			count, err := r.room(registry, room).Call("count", nil)
			if err != nil {
				return callFailed(err), nil
			}
			b = append(b, room...)
			b = append(b, ' ')
			b = append(b, count...)
			b = append(b, '\n')
		}
	}
	return dowasm.Text(200, string(b)), nil
}

// count returns the number of members of this room, as decimal text.
func (r *Rooms) count() ([]byte, error) {
	entries, err := r.store.List(dowasm.ListOptions{Prefix: []byte(memberPrefix)})
	if err != nil {
		return nil, err
	}
	return strconv.AppendInt(nil, int64(len(entries)), 10), nil
}

// RPC answers calls from other objects (here: from the registry, to its rooms).
func (r *Rooms) RPC(method string, arg []byte) ([]byte, error) {
	switch method {
	case "join":
		if err := r.store.Put(append([]byte(memberPrefix), arg...), nil); err != nil {
			return nil, err
		}
		return r.count()
	case "leave":
		if _, err := r.store.Delete(append([]byte(memberPrefix), arg...)); err != nil {
			return nil, err
		}
		return r.count()
	case "count":
		return r.count()
	}
	return nil, errors.New("unknown method " + method)
}

func init() {
	dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) {
		return &Rooms{obj: obj, store: obj.Storage()}, nil
	})
}

func main() {}
