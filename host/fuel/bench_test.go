package fuel_test

import (
	"context"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/dowasm/dowasm/host/fuel"
)

// BenchmarkFuel compares, per compute guest, four ways of running it on
// wazero's compiler:
//
//	off    the original module: nothing can stop it
//	fuel   the instrumented module, with a refill function that checks
//	       time.Now() against a far deadline and grants 1,000,000 units
//	depth  the same with a call depth limit (Options.MaxCallDepth 10,000)
//	cod    the original module with WithCloseOnContextDone(true)
//
// Each benchmark iteration calls the guest once in each mode, one after the
// other, so that load from other processes hits all alike. Reported: the
// mean time per call of each mode (off-ns/op, fuel-ns/op, depth-ns/op,
// cod-ns/op) and the ratios of the fastest calls (fuel/off, depth/off,
// cod/off), which are the numbers least disturbed by a busy machine. ns/op
// is the sum of the modes.
func BenchmarkFuel(b *testing.B) {
	guests := []struct {
		name   string
		params []uint64
	}{
		{"sort", []uint64{100_000, 7}},
		{"hash", []uint64{65536, 4}},
		{"matmul", []uint64{128}},
		{"fib", []uint64{27}},
		{"ops", []uint64{1_000_000, 1}},
	}
	far := time.Now().Add(time.Hour)
	refill := func(context.Context) int64 {
		if time.Now().After(far) {
			panic(errDeadline)
		}
		return 1_000_000
	}
	for _, v := range rustVariants {
		b.Run(v.name, func(b *testing.B) {
			plain := rust(b, "compute", v)
			metered := instrument(b, plain)
			deep := instrument(b, plain, fuel.Options{MaxCallDepth: 10_000})
			off := instantiate(b, newRuntime(b, false, nil), plain)
			metr := instantiate(b, newRuntime(b, false, refill), metered)
			depth := instantiate(b, newRuntime(b, false, refill), deep)
			cod := instantiate(b, newRuntime(b, true, nil), plain)
			for _, g := range guests {
				b.Run(g.name, func(b *testing.B) {
					modes := []struct {
						name string
						fn   api.Function
						sum  time.Duration
						min  time.Duration
					}{
						{name: "off", fn: off.ExportedFunction(g.name)},
						{name: "fuel", fn: metr.ExportedFunction(g.name)},
						{name: "depth", fn: depth.ExportedFunction(g.name)},
						{name: "cod", fn: cod.ExportedFunction(g.name)},
					}
					// A context that can be cancelled, so that cod installs
					// its watchdog.
					ctx, cancel := context.WithDeadline(context.Background(), far)
					defer cancel()
					for i := 0; i < b.N; i++ {
						for j := range modes {
							m := &modes[j]
							start := time.Now()
							if _, err := m.fn.Call(ctx, g.params...); err != nil {
								b.Fatal(err)
							}
							d := time.Since(start)
							m.sum += d
							if m.min == 0 || d < m.min {
								m.min = d
							}
						}
					}
					for _, m := range modes {
						b.ReportMetric(float64(m.sum.Nanoseconds())/float64(b.N), m.name+"-ns/op")
					}
					b.ReportMetric(float64(modes[1].min)/float64(modes[0].min), "fuel/off")
					b.ReportMetric(float64(modes[2].min)/float64(modes[0].min), "depth/off")
					b.ReportMetric(float64(modes[3].min)/float64(modes[0].min), "cod/off")
				})
			}
		})
	}
}
