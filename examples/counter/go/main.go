// Command counter is the Durable Objects tutorial counter as a dowasm class. Every name is its
// own object with its own value:
//
//	POST /increment      -> the new value, as decimal text
//	POST /decrement      -> the new value
//	GET  /  (or /value)  -> the current value
//
// Other paths answer 404, other methods 405.
package main

import (
	"strconv"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

// Counter keeps the value in memory, rebuilt from storage by the constructor, and writes every
// change through to storage under the key "value".
type Counter struct {
	store *dowasm.Storage
	value int64
}

// newCounter is the constructor: it runs when the object is first used and every time it wakes
// (after eviction or a failed event), inside the first event's transaction.
func newCounter(obj *dowasm.Object) (dowasm.Class, error) {
	c := &Counter{store: obj.Storage()}
	v, _, err := c.store.GetInt64("value") // 0 when the object is new
	if err != nil {
		return nil, err
	}
	c.value = v
	return c, nil
}

func (c *Counter) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
	switch req.Path {
	case "/increment", "/decrement":
		if req.Method != "POST" {
			return dowasm.MethodNotAllowed("POST"), nil
		}
		next := c.value + 1
		if req.Path == "/decrement" {
			next = c.value - 1
		}
		// Write through. The response leaves only after this write is committed; if the event
		// fails instead, the host discards this instance and the next one reads storage again.
		if err := c.store.PutInt64("value", next); err != nil {
			return nil, err
		}
		c.value = next
	case "/", "/value":
		if req.Method != "GET" && req.Method != "HEAD" {
			return dowasm.MethodNotAllowed("GET, HEAD"), nil
		}
	default:
		return dowasm.Text(404, "not found: try POST /increment, POST /decrement or GET /\n"), nil
	}
	return dowasm.Text(200, strconv.FormatInt(c.value, 10)), nil
}

func init() { dowasm.Register(newCounter) }

func main() {}
