// Command ticket hands out numbered tickets: 1, 2, 3, ... never a duplicate and never a gap,
// however many clients claim at once. One object per event (the name in the URL):
//
//	POST /claim              -> the new ticket number; the X-Client header (or else the body)
//	                            is recorded as the holder
//	GET  /                   -> how many tickets were issued
//	GET  /tickets?limit=N    -> issued tickets as "number holder" lines, in order
//	                            (&after=M continues after ticket M)
//	GET  /tickets/<number>   -> the holder of one ticket
package main

import (
	"strconv"
	"strings"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

const (
	nextKey      = "next"    // the last number issued, as decimal text
	ticketPrefix = "ticket:" // ticket:<number, zero-padded to 20 digits> -> holder
)

type Ticket struct{ store *dowasm.Storage }

// claim issues the next number. The read of "next" and both writes form one explicit
// transaction: they are kept together or not at all. Events run one at a time, so no other claim
// can interleave, and the event's writes commit before the number is sent.
func (t *Ticket) claim(holder string) (uint64, error) {
	var n uint64
	err := t.store.Transaction(func(tx *dowasm.Storage) error {
		last, _, err := tx.GetInt64(nextKey)
		if err != nil {
			return err
		}
		n = uint64(last) + 1
		if err := tx.PutInt64(nextKey, int64(n)); err != nil {
			return err
		}
		return tx.Put(dowasm.PaddedKey(ticketPrefix, n), []byte(holder))
	})
	return n, err
}

func (t *Ticket) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
	switch {
	case req.Path == "/claim":
		if req.Method != "POST" {
			return dowasm.MethodNotAllowed("POST"), nil
		}
		holder := req.Header("X-Client")
		if holder == "" {
			holder = strings.TrimSpace(string(req.Body))
		}
		holder = strings.Join(strings.Fields(holder), " ") // one line in the listing
		if holder == "" {
			holder = "anonymous"
		}
		if len(holder) > 1024 {
			return dowasm.Text(400, "holder longer than 1024 bytes\n"), nil
		}
		n, err := t.claim(holder)
		if err != nil {
			return nil, err
		}
		return dowasm.Text(200, strconv.FormatUint(n, 10)), nil

	case req.Path == "/":
		if req.Method != "GET" {
			return dowasm.MethodNotAllowed("GET"), nil
		}
		n, _, err := t.store.GetInt64(nextKey)
		if err != nil {
			return nil, err
		}
		return dowasm.Text(200, strconv.FormatInt(n, 10)), nil

	case req.Path == "/tickets":
		if req.Method != "GET" {
			return dowasm.MethodNotAllowed("GET"), nil
		}
		limit, err1 := req.QueryInt("limit", 100)
		after, err2 := req.QueryInt("after", 0)
		if err1 != nil || err2 != nil || limit < 1 || limit > 1000 || after < 0 {
			return dowasm.Text(400, "limit must be 1..1000 and after a ticket number\n"), nil
		}
		opts := dowasm.ListOptions{Prefix: []byte(ticketPrefix), Limit: limit}
		if after > 0 {
			opts.StartAfter = dowasm.PaddedKey(ticketPrefix, uint64(after))
		}
		entries, err := t.store.List(opts)
		if err != nil {
			return nil, err
		}
		var b []byte
		for _, e := range entries {
			num := strings.TrimLeft(string(e.Key[len(ticketPrefix):]), "0")
			b = append(b, num...)
			b = append(b, ' ')
			b = append(b, e.Value...)
			b = append(b, '\n')
		}
		return dowasm.Bytes(200, b).SetHeader("Content-Type", "text/plain; charset=utf-8"), nil

	case strings.HasPrefix(req.Path, "/tickets/"):
		if req.Method != "GET" {
			return dowasm.MethodNotAllowed("GET"), nil
		}
		n, err := strconv.ParseUint(req.Path[len("/tickets/"):], 10, 64)
		if err != nil || n == 0 {
			return dowasm.Text(400, "not a ticket number\n"), nil
		}
		holder, ok, err := t.store.GetString(string(dowasm.PaddedKey(ticketPrefix, n)))
		if err != nil {
			return nil, err
		}
		if !ok {
			return dowasm.Text(404, "no such ticket\n"), nil
		}
		return dowasm.Text(200, holder), nil
	}
	return dowasm.Text(404, "not found: try POST /claim, GET /, GET /tickets or GET /tickets/1\n"), nil
}

func init() {
	dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) {
		return &Ticket{store: obj.Storage()}, nil
	})
}

func main() {}
