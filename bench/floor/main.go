// Command floor is the speed floor for HTTP benchmarks: a bare net/http handler that answers a
// POST with a small counter value, measured with wrk in the same run as dowasm.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address")
	flag.Parse()
	var n atomic.Int64
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("floor listening on http://%s\n", ln.Addr())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strconv.FormatInt(n.Add(1), 10)))
	}))
}
