//go:build race

package host

// raceEnabled: the race detector slows the host's Go code several times; tests that measure
// scale use smaller sizes under it (and the full size runs without it: see Taskfile.yml's test).
const raceEnabled = true
