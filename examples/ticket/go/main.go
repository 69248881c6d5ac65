// Command ticket hands out numbered tickets: 1, 2, 3, ... never a duplicate and never a gap,
// however many clients claim at once.
//
//	POST /claim            -> the ticket number (the X-Client header or body is recorded)
//	GET  /                 -> how many tickets were issued
//	GET  /tickets?limit=N  -> the first N tickets as "number holder" lines
package main

import (
	"strconv"
	"strings"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

type Ticket struct{ store *dowasm.Storage }

func ticketKey(n int64) []byte { return dowasm.Uint64Key("ticket:", uint64(n)) }

func (t *Ticket) claim(holder string) (int64, error) {
	var n int64
	// The read of "next" and both writes commit together or not at all.
	err := t.store.Transaction(func(tx *dowasm.Storage) error {
		next, _, err := tx.GetInt64("next")
		if err != nil {
			return err
		}
		n = next + 1
		if err := tx.PutInt64("next", n); err != nil {
			return err
		}
		return tx.Put(ticketKey(n), []byte(holder))
	})
	return n, err
}

func (t *Ticket) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
	switch {
	case req.Path == "/claim" && req.Method == "POST":
		holder := req.Headers.Get("X-Client")
		if holder == "" {
			holder = strings.TrimSpace(string(req.Body))
		}
		if holder == "" {
			holder = "anonymous"
		}
		n, err := t.claim(holder)
		if err != nil {
			return nil, err
		}
		return dowasm.Text(200, strconv.FormatInt(n, 10)), nil
	case req.Path == "/" && req.Method == "GET":
		n, _, err := t.store.GetInt64("next")
		if err != nil {
			return nil, err
		}
		return dowasm.Text(200, strconv.FormatInt(n, 10)), nil
	case req.Path == "/tickets" && req.Method == "GET":
		limit, _ := strconv.Atoi(req.QueryParam("limit"))
		if limit <= 0 || limit > 1000 {
			limit = 100
		}
		entries, err := t.store.List(dowasm.ListOptions{Prefix: []byte("ticket:"), Limit: limit})
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		for _, e := range entries {
			num := e.Key[len("ticket:"):]
			var v uint64
			for _, c := range num {
				v = v<<8 | uint64(c)
			}
			b.WriteString(strconv.FormatUint(v, 10) + " " + string(e.Value) + "\n")
		}
		return dowasm.Text(200, b.String()), nil
	case req.Path == "/claim" || req.Path == "/" || req.Path == "/tickets":
		return dowasm.Text(405, "method not allowed\n"), nil
	}
	return dowasm.Text(404, "not found: try POST /claim, GET / or GET /tickets\n"), nil
}

func init() {
	dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) { return &Ticket{store: obj.Storage()}, nil })
}

func main() {}
