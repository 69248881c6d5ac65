// Command sdkcheck is a test guest that exercises every storage call of the Go SDK against the
// real host and answers "ok" or the first mismatch: batches, listing options, transactions,
// limits and error values. POST /run runs the checks on a fresh object.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	dowasm "github.com/dowasm/dowasm/guest-sdk/go"
)

type checker struct{ obj *dowasm.Object }

func (c *checker) Fetch(req *dowasm.Request) (*dowasm.Response, error) {
	st := c.obj.Storage()
	switch req.Path {
	case "/panic":
		if err := st.PutString("lost", "x"); err != nil {
			return nil, err
		}
		panic("deliberate panic after a write")
	case "/fail":
		if err := st.PutString("lost", "x"); err != nil {
			return nil, err
		}
		return nil, errors.New("deliberate error after a write")
	case "/lost":
		_, found, err := st.GetString("lost")
		if err != nil {
			return nil, err
		}
		return dowasm.Text(200, fmt.Sprint(found)), nil
	case "/run":
	default:
		return dowasm.Text(404, "POST /run"), nil
	}
	if err := c.run(c.obj.Storage()); err != nil {
		return dowasm.Text(500, err.Error()), nil
	}
	return dowasm.Text(200, "ok"), nil
}

func keys(es []dowasm.Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, string(e.Key))
	}
	return strings.Join(s, ",")
}

func (c *checker) run(st *dowasm.Storage) error {
	if err := st.DeleteAll(); err != nil {
		return err
	}
	// batches
	var es []dowasm.Entry
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		es = append(es, dowasm.Entry{Key: []byte(k), Value: []byte("v" + k)})
	}
	if err := st.PutMany(es); err != nil {
		return fmt.Errorf("PutMany: %w", err)
	}
	vals, found, err := st.GetMany([][]byte{[]byte("a"), []byte("zz"), []byte("e")})
	if err != nil || !found[0] || found[1] || !found[2] || string(vals[2]) != "ve" || vals[1] != nil {
		return fmt.Errorf("GetMany: %q %v %v", vals, found, err)
	}
	if n, err := st.DeleteMany([][]byte{[]byte("d"), []byte("zz")}); n != 1 || err != nil {
		return fmt.Errorf("DeleteMany: %d %v", n, err)
	}
	tooMany := make([][]byte, dowasm.MaxBatch+1)
	for i := range tooMany {
		tooMany[i] = []byte{byte(i)}
	}
	if _, _, err := st.GetMany(tooMany); !errors.Is(err, dowasm.ErrTooManyKeys) {
		return fmt.Errorf("GetMany of 129 keys: %v", err)
	}
	// listing
	list := func(o dowasm.ListOptions, want string) error {
		got, err := st.List(o)
		if err != nil || keys(got) != want {
			return fmt.Errorf("List(%+v) = %q, %v; want %q", o, keys(got), err, want)
		}
		return nil
	}
	for _, tc := range []struct {
		o    dowasm.ListOptions
		want string
	}{
		{dowasm.ListOptions{}, "a,b,c,e"},
		{dowasm.ListOptions{Reverse: true, Limit: 2}, "e,c"},
		{dowasm.ListOptions{Start: []byte("b"), End: []byte("e")}, "b,c"},
		{dowasm.ListOptions{StartAfter: []byte("b")}, "c,e"},
		{dowasm.ListOptions{Prefix: []byte("c")}, "c"},
		{dowasm.ListOptions{Prefix: []byte("x")}, ""},
	} {
		if err := list(tc.o, tc.want); err != nil {
			return err
		}
	}
	if _, err := st.List(dowasm.ListOptions{Start: []byte("a"), StartAfter: []byte("a")}); !errors.Is(err, dowasm.ErrInvalidArgument) {
		return fmt.Errorf("List with start and startAfter: %v", err)
	}
	// transactions: a failing one rolls back, ErrRollback rolls back quietly, nesting works
	boom := errors.New("boom")
	err = st.Transaction(func(tx *dowasm.Storage) error {
		tx.PutString("t1", "x")
		return boom
	})
	if !errors.Is(err, boom) {
		return fmt.Errorf("failing transaction returned %v", err)
	}
	if _, ok, _ := st.GetString("t1"); ok {
		return errors.New("a failed transaction's write is visible")
	}
	err = st.Transaction(func(tx *dowasm.Storage) error {
		tx.PutString("outer", "1")
		return tx.Transaction(func(tx2 *dowasm.Storage) error {
			tx2.PutString("inner", "1")
			return dowasm.ErrRollback
		})
	})
	if err != nil {
		return fmt.Errorf("nested transactions: %v", err)
	}
	if _, ok, _ := st.GetString("outer"); !ok {
		return errors.New("outer transaction lost its write")
	}
	if _, ok, _ := st.GetString("inner"); ok {
		return errors.New("rolled back inner transaction kept its write")
	}
	// limits and typed values
	if err := st.Put(bytes.Repeat([]byte("k"), dowasm.MaxKeySize+1), nil); !errors.Is(err, dowasm.ErrKeyTooLarge) {
		return fmt.Errorf("long key: %v", err)
	}
	if err := st.Put([]byte("k"), make([]byte, dowasm.MaxEntrySize)); !errors.Is(err, dowasm.ErrValueTooLarge) {
		return fmt.Errorf("large value: %v", err)
	}
	if err := st.PutInt64("n", -42); err != nil {
		return err
	}
	if n, ok, err := st.GetInt64("n"); n != -42 || !ok || err != nil {
		return fmt.Errorf("GetInt64: %d %v %v", n, ok, err)
	}
	if _, _, err := st.GetInt64("a"); err == nil {
		return errors.New("GetInt64 of a non-number succeeded")
	}
	if ok, err := st.Delete([]byte("a")); !ok || err != nil {
		return fmt.Errorf("Delete: %v %v", ok, err)
	}
	if _, ok, _ := st.Get([]byte("a")); ok {
		return errors.New("deleted key still found")
	}
	if id := c.obj.ID(); len(id) != 64 {
		return fmt.Errorf("ID %q", id)
	}
	if name, ok := c.obj.Name(); !ok || name != "check" {
		return fmt.Errorf("Name %q %v", name, ok)
	}
	c.obj.Log(dowasm.LevelInfo, "sdkcheck passed")
	return nil
}

func init() {
	dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) { return &checker{obj: obj}, nil })
}

func main() {}
