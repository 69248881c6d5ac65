package abi

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestABIDocMatchesTable fails when ABI.md and the Go table disagree: every function heading in
// ABI.md must be a table entry with the same signature, and every entry must have a heading.
func TestABIDocMatchesTable(t *testing.T) {
	f, err := os.Open("ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	heading := regexp.MustCompile("^### `(.+)`$")
	statusRow := regexp.MustCompile(`^\| ([A-Z_]+) \| (\d+) \|`)
	section := ""
	docHost, docGuest := map[string]string{}, map[string]string{}
	docStatus := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			section = strings.TrimPrefix(line, "## ")
			continue
		}
		if m := statusRow.FindStringSubmatch(line); m != nil && section == "Status codes" {
			docStatus[m[1]] = m[2]
		}
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, _, _ := strings.Cut(m[1], "(")
		switch section {
		case "Host functions":
			docHost[name] = m[1]
		case "Guest exports":
			docGuest[name] = m[1]
		default:
			t.Errorf("ABI.md: function heading %q outside the Host functions / Guest exports sections", m[1])
		}
	}
	check := func(kind string, table []Func, doc map[string]string) {
		for _, fn := range table {
			got, ok := doc[fn.Name]
			if !ok {
				t.Errorf("%s %s is in abi.go but has no heading in ABI.md (want `%s`)", kind, fn.Name, fn.Signature())
				continue
			}
			if got != fn.Signature() {
				t.Errorf("%s %s: ABI.md says `%s`, abi.go says `%s`", kind, fn.Name, got, fn.Signature())
			}
			delete(doc, fn.Name)
		}
		for name, sig := range doc {
			t.Errorf("%s %s is documented in ABI.md (`%s`) but missing from abi.go", kind, name, sig)
		}
	}
	check("host function", HostFuncs, docHost)
	check("guest export", GuestExports, docGuest)
	for _, s := range Statuses() {
		if v, ok := docStatus[s.String()]; !ok {
			t.Errorf("status %s (%d) is missing from ABI.md's table", s, s)
		} else if v != strconv.Itoa(int(s)) {
			t.Errorf("status %s: ABI.md says %s, abi.go says %d", s, v, s)
		}
		delete(docStatus, s.String())
	}
	for name, v := range docStatus {
		t.Errorf("status %s = %s is in ABI.md but not in abi.go", name, v)
	}
}

func TestHostFunctionsReturnStatus(t *testing.T) {
	for _, f := range HostFuncs {
		if len(f.Results) != 1 || f.Results[0] != I32 {
			t.Errorf("%s: every host function returns one i32 (a length/count or -status)", f.Name)
		}
	}
}
