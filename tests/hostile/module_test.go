package hostile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dowasm/dowasm/host"
)

// Module bombs (issue 12): modules whose declarations, not their code, cost the host memory. A
// few bytes of module can declare a large table, a global or a local, and each costs the host
// memory per instance; wazero puts no bound of its own on most of them. The host's
// instrumentation (host/fuel) bounds what a module declares: the tables' sizes together, and the
// number of tables, globals, functions, types, imports, exports, segments and their contents,
// locals, function bodies and memories.

// eachName is a name in a line of a template guest (testdata/many*.wat) that expandEach renames
// in each copy. Standing alone, a template is a valid module with one of each repeated thing.
var eachName = regexp.MustCompile(`(\$[a-z]+)0\b`)

// expandEach reads testdata/<name> and repeats every line containing marker n times, the i-th
// copy with every name ending in 0 ($t0, $fill0) renamed to end in i instead, and assembles the
// result.
func expandEach(t *testing.T, name, marker string, n int) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		if !strings.Contains(line, marker) {
			b.WriteString(line + "\n")
			continue
		}
		for i := 0; i < n; i++ {
			b.WriteString(eachName.ReplaceAllString(line, fmt.Sprintf("${1}%d", i)) + "\n")
		}
	}
	return assembleText(t, name, b.String())
}

// refusedModule is a module bomb the host must refuse when it is loaded, with an error that
// names the class and says what is too large, how large and the limit. Its load is attempted
// repeatedly for a second while the tenant runs, and the host's memory measured.
type refusedModule struct {
	name          string // in the results
	class, wat    string
	marker        string
	copies        int
	cfg           host.Config
	wants         []string // the load error must contain each
	limitsOutcome string   // what the results say was refused
}

func (c refusedModule) run(t *testing.T) {
	wasm := expandEach(t, c.wat, c.marker, c.copies)
	t.Logf("%s: a module of %d bytes", c.wat, len(wasm))
	e := newEnv(t, c.cfg)
	m := e.startTenant()
	rss := watchRSS(t)
	var loadErr error
	var worst time.Duration
	attempts := repeatFor(time.Second, func() {
		start := time.Now()
		_, err := e.rt.LoadClass(context.Background(), c.class, "testdata/"+c.wat, wasm)
		worst = max(worst, time.Since(start))
		if err == nil {
			t.Fatalf("%s was loaded", c.wat)
		}
		loadErr = err
	})
	grew := rss.end()
	st := m.finish()
	for _, w := range append([]string{"class " + c.class}, c.wants...) {
		if !strings.Contains(loadErr.Error(), w) {
			t.Errorf("load error %q does not say %q", loadErr, w)
		}
	}
	if e.rt.Class(c.class) != nil {
		t.Error("the refused class is registered")
	}
	t.Logf("%d loads refused, each within %s; peak resident memory +%.0f MiB: %v", attempts, ms(worst), grew, loadErr)
	// Refusing it takes a read of its sections, nothing proportional to what it declares.
	if grew > 100 {
		t.Errorf("refusing %s %d times grew the host's resident memory by %.0f MiB (limit 100 MiB)", c.wat, attempts, grew)
	}
	reason := loadErr.Error()
	if i := strings.LastIndex(reason, ": "); i >= 0 {
		reason = reason[i+2:] // the part after "fuel: <section>: offset N: "
	}
	record(resultRow{Case: c.name, Stop: fmt.Sprintf("refused at load (%d attempts, each within %s)", attempts, ms(worst)),
		Outcome: fmt.Sprintf("%s; load error `… %s`; peak RSS +%.0f MiB", c.limitsOutcome, reason, grew), Tenant: st})
}

// testManyTables: 1,000 tables of 100,000 elements each (800 MB per instance), every one within
// a per-table limit, refused because together they hold 10^8 elements.
func testManyTables(t *testing.T) {
	refusedModule{
		name:  "1,000 tables of 100,000 elements (800 MB per instance)",
		class: "manytables", wat: "manytables.wat", marker: ";; each table", copies: 1000,
		cfg:           host.Config{MaxTableElems: 1 << 20, EventTimeout: 10 * time.Second},
		wants:         []string{"module declares 1000 tables holding 100000000 elements in all; the limit is 1048576"},
		limitsOutcome: "the limit of 2^20 table elements holds for all tables together",
	}.run(t)
}

// testManyGlobals: 100,000 globals, about 9 MB of host memory per instance from 500 KB of module.
func testManyGlobals(t *testing.T) {
	refusedModule{
		name:  "100,000 globals (9 MB per instance)",
		class: "manyglobals", wat: "manyglobals.wat", marker: ";; each global", copies: 100_000,
		cfg:           host.Config{EventTimeout: 10 * time.Second},
		wants:         []string{"module declares 100000 globals; the limit is 10000"},
		limitsOutcome: "the default limit of 10,000 globals",
	}.run(t)
}

// testManyGrowingTables: 1,000 tables declared empty and without a maximum, each grown by the
// guest as far as the host lets it. Each table gets a share of the host's limit as its maximum,
// so together they hold 2^20 elements (8 MiB per instance), not 2^20 each (8 GiB).
func testManyGrowingTables(t *testing.T) {
	const limit = 1 << 20
	e := newEnv(t, host.Config{MaxTableElems: limit, EventTimeout: 10 * time.Second})
	e.load("manygrowingtables", expandEach(t, "manygrowingtables.wat", ";; each table", 1000))
	e.must("PUT", "/manygrowingtables/victim/", 204)
	m := e.startTenant()
	rss := watchRSS(t)
	var worst time.Duration
	want := fmt.Sprintf("fetch returned error code 1: tables hold %d elements in all", limit)
	attacks := repeatFor(time.Second, func() {
		r, err := e.do("POST", "/manygrowingtables/victim/")
		if err != nil {
			t.Fatal(err)
		}
		e.expectFailure(r, "manygrowingtables", "victim", want)
		worst = max(worst, r.took)
	})
	grew := rss.end()
	st := m.finish()
	t.Logf("%d attacks, each growing 1,000 tables as far as they go: answered within %s; peak resident memory +%.0f MiB", attacks, ms(worst), grew)
	if grew > 200 {
		t.Errorf("1,000 tables grown to the limit of %d elements in all grew the host's resident memory by %.0f MiB (limit 200 MiB)", limit, grew)
	}
	e.expectRolledBack("manygrowingtables", "victim")
	record(resultRow{Case: "1,000 growing tables (2^20 elements each would be 8 GiB per instance)",
		Stop:    fmt.Sprintf("table.grow -1 once the tables hold 2^20 elements together; answered within %s", ms(worst)),
		Outcome: fmt.Sprintf("500 `tables hold %d elements in all`, rolled back; peak RSS +%.0f MiB (%d attacks)", limit, grew, attacks), Tenant: st})
}
