// Command shards is a sharded counter built from calls between objects. The object a client
// addresses is the front; its four shards are objects of the same class named
// "<front name>.shard0" ... "<front name>.shard3":
//
//	POST /increment  -> "<i> <value>": the front picks shard i round robin and calls its "add"
//	GET  /total      -> the sum of the four shards (an RPC "get" to each)
//	GET  /shards     -> "<i> <value>" per shard, each fetched with an HTTP request (GET /value)
//	GET  /value      -> this object's own shard value
//
// Every object answers the RPC methods "add" (argument: a decimal amount; returns the new value)
// and "get" (returns the value).
package main

import (
	"errors"
	"strconv"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

const (
	className = "shards"
	numShards = 4
	nextKey   = "next"  // in the front: how many increments were sent, as decimal text
	valueKey  = "value" // in a shard: its value, as decimal text
)

type Shards struct {
	obj   *dowasm.Object
	store *dowasm.Storage
}

// shard returns a stub for shard i of the front named front: the object "<front>.shard<i>" of
// this class.
func (s *Shards) shard(front string, i int) *dowasm.Stub {
	return s.obj.Stub(className, front+".shard"+strconv.Itoa(i))
}

func text(body string) *dowasm.Response { return dowasm.Text(200, body) }

// callFailed answers a failed call: 502 with the error's text (the callee's message included).
func callFailed(err error) *dowasm.Response { return dowasm.Text(502, err.Error()+"\n") }

func (s *Shards) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
	var allow string
	switch req.Path {
	case "/increment":
		allow = "POST"
	case "/total", "/shards", "/value":
		allow = "GET"
	default:
		return dowasm.NotFound(), nil
	}
	if req.Method != allow {
		return dowasm.MethodNotAllowed(allow), nil
	}
	if req.Path == "/value" {
		v, _, err := s.store.GetInt64(valueKey)
		if err != nil {
			return nil, err
		}
		return text(strconv.FormatInt(v, 10) + "\n"), nil
	}
	front, ok := s.obj.Name()
	if !ok {
		return dowasm.Text(400, "a front needs a name\n"), nil
	}

	switch req.Path {
	case "/increment":
		next, _, err := s.store.GetInt64(nextKey)
		if err != nil {
			return nil, err
		}
		i := int(next % numShards)
		if err := s.store.PutInt64(nextKey, next+1); err != nil {
			return nil, err
		}
		// The shard adds in its own event and transaction; its new value arrives after its commit.
		v, err := s.shard(front, i).Call("add", []byte("1"))
		if err != nil {
			return callFailed(err), nil
		}
		return text(strconv.Itoa(i) + " " + string(v) + "\n"), nil

	case "/total":
		var sum int64
		for i := 0; i < numShards; i++ {
			v, err := s.shard(front, i).Call("get", nil)
			if err != nil {
				return callFailed(err), nil
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return nil, errors.New("shard " + strconv.Itoa(i) + " answered get with " + strconv.Quote(string(v)))
			}
			sum += n
		}
		return text(strconv.FormatInt(sum, 10) + "\n"), nil

	default: // "/shards"
		var b []byte
		for i := 0; i < numShards; i++ {
			resp, err := s.shard(front, i).Fetch(&dowasm.Request{Method: "GET", Path: "/value"})
			if err != nil {
				return callFailed(err), nil
			}
			body := resp.Body
			if n := len(body); n > 0 && body[n-1] == '\n' {
				body = body[:n-1]
			}
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, ' ')
			b = append(b, body...)
			b = append(b, '\n')
		}
		return text(string(b)), nil
	}
}

// RPC answers calls from other objects (here: from the front, to its shards).
func (s *Shards) RPC(method string, arg []byte) ([]byte, error) {
	switch method {
	case "add":
		amount, err := strconv.ParseInt(string(arg), 10, 64)
		if err != nil {
			return nil, errors.New("add: bad amount")
		}
		v, _, err := s.store.GetInt64(valueKey)
		if err != nil {
			return nil, err
		}
		v += amount
		if err := s.store.PutInt64(valueKey, v); err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, v, 10), nil
	case "get":
		v, _, err := s.store.GetInt64(valueKey)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, v, 10), nil
	}
	return nil, errors.New("unknown method " + method)
}

func init() {
	dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) {
		return &Shards{obj: obj, store: obj.Storage()}, nil
	})
}

func main() {}
