// Command counter is the Durable Objects tutorial counter as a dowasm class:
//
//	POST /increment  -> the new value
//	POST /decrement  -> the new value
//	GET  /           -> the current value
package main

import (
	"strconv"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

type Counter struct {
	store *dowasm.Storage
	value int64 // rebuilt from storage by the constructor; every change is written through
}

func newCounter(obj *dowasm.Object) (dowasm.Class, error) {
	c := &Counter{store: obj.Storage()}
	v, _, err := c.store.GetInt64("value")
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
			return dowasm.Text(405, "use POST\n").WithHeader("Allow", "POST"), nil
		}
		next := c.value + 1
		if req.Path == "/decrement" {
			next = c.value - 1
		}
		if err := c.store.PutInt64("value", next); err != nil {
			return nil, err
		}
		// Only after the write succeeded: if the event fails, the instance is discarded anyway.
		c.value = next
	case "/", "/value":
		if req.Method != "GET" && req.Method != "HEAD" {
			return dowasm.Text(405, "use GET\n").WithHeader("Allow", "GET"), nil
		}
	default:
		return dowasm.Text(404, "not found: try POST /increment, POST /decrement or GET /\n"), nil
	}
	return dowasm.Text(200, strconv.FormatInt(c.value, 10)), nil
}

func init() { dowasm.Register(newCounter) }

func main() {}
