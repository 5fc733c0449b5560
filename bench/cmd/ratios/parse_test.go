package main

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
)

func loadSample(t *testing.T) *results {
	t.Helper()
	f, err := os.Open("testdata/sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParse(t *testing.T) {
	r := loadSample(t)
	if got := r.header["cpu"]; got != "Sample CPU @ 2.00GHz" {
		t.Errorf("cpu: got %q", got)
	}
	if got, want := len(r.order), 16; got != want {
		t.Errorf("got %d benchmarks; want %d: %v", got, want, r.order)
	}
	for _, c := range []struct {
		name, unit string
		want       float64
	}{
		{"BenchmarkPointQuery/SQLiteMem/idmap", "ns/op", 10200}, // median of 10200, 12000, 10100
		{"BenchmarkPointQuery/SQLiteMem/plain", "allocs/op", 34},
		{"BenchmarkGetParallel/SQLiteMem/shared2", "ns/get", 160},
		{"BenchmarkSharedMemory", "B/entry", 165},
		{"BenchmarkSharedMemory", "entries-left", 0},
	} {
		got, ok := r.median(c.name, c.unit)
		if !ok || got != c.want {
			t.Errorf("median(%s, %s): got %v, %v; want %v", c.name, c.unit, got, ok, c.want)
		}
	}
	if got := r.count("BenchmarkGet/SQLiteMem/hitScope"); got != 3 {
		t.Errorf("count: got %d; want 3", got)
	}
	if got := r.backends(); len(got) != 1 || got[0] != "SQLiteMem" {
		t.Errorf("backends: got %v; want [SQLiteMem]", got)
	}
}

func TestMedianEven(t *testing.T) {
	r, err := parse(strings.NewReader("BenchmarkX-2 10 100 ns/op\nBenchmarkX-2 10 300 ns/op\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.median("BenchmarkX", "ns/op"); got != 200 {
		t.Errorf("got %v; want 200", got)
	}
}

func TestRatios(t *testing.T) {
	rows := ratios(loadSample(t))
	want := map[string]struct {
		value   float64
		verdict string
	}{
		"point query: idmap / plain":                        {1.02, "MISS"}, // the paired run's 1.05 decides
		"Select100: Bind cold / hand-written":               {1.25, "MISS"},
		"Select100: Bind warm / hand-written":               {0.9, "PASS"},
		"Select100: Bind cold / sqlx":                       {250.0 / 300, "PASS"},
		"Select100: Bind cold / scany":                      {1, "MISS"}, // "faster than" is strict
		"Select100: hand-written via idmap / plain":         {1.05, ""},
		"Get hit (scope): speed-up over the point query":    {200, "PASS"},
		"Get hit (shared): speed-up over the point query":   {50, "MISS"},
		"Get miss (new scope) / point query":                {2.5, ""},
		"Get hits, shared map: throughput 2 goroutines / 1": {300.0 / 160, ""}, // judged against the ceiling (TestMapTargets)
		"shared map: bytes per weak entry":                  {165, "MISS"},
		"shared map: entries left after release":            {0, "PASS"},
	}
	got := map[string]row{}
	for _, r := range rows {
		got[r.label] = r
	}
	for label, w := range want {
		r, ok := got[label]
		if !ok {
			t.Errorf("%s: missing", label)
			continue
		}
		if math.Abs(r.value-w.value) > 1e-9 || r.verdict != w.verdict {
			t.Errorf("%s: got %v %s; want %v %s", label, r.value, r.verdict, w.value, w.verdict)
		}
	}
	if pq := got["point query: idmap / plain"]; !pq.paired || pq.pvalue != 1.05 || pq.plo != 1.04 || pq.phi != 1.06 {
		t.Errorf("paired point query: got %v %v %v–%v; want 1.05 in 1.04–1.06", pq.paired, pq.pvalue, pq.plo, pq.phi)
	}
	// A paired group without a backend: get1 / get2 of each round.
	if gp := got["Get hits, shared map: throughput 2 goroutines / 1"]; !gp.paired || gp.pvalue != 1.5 || gp.plo != 150000.0/110000 || gp.phi != 150000.0/96000 {
		t.Errorf("paired parallel: got %v %v %v–%v; want 1.5 in 1.36–1.56", gp.paired, gp.pvalue, gp.plo, gp.phi)
	}
	if c := got["machine ceiling, arithmetic loop: throughput 2 goroutines / 1"]; !c.paired || c.pvalue != 100000.0/61000 {
		t.Errorf("machine ceiling: got %v %v; want %v", c.paired, c.pvalue, 100000.0/61000)
	}
	// Benchmarks that the sample lacks give no row.
	if _, ok := got["Select100: Bind shared cold / hand-written"]; ok {
		t.Error("a ratio without its benchmarks was computed")
	}
}

func TestReport(t *testing.T) {
	for _, md := range []bool{false, true} {
		var b bytes.Buffer
		report(&b, loadSample(t), md)
		out := b.String()
		for _, s := range []string{"targets: 4 PASS, 5 MISS", "BenchmarkSelect100/SQLiteMem/bindCold", "49686", "1065", "165 B/entry"} {
			if !strings.Contains(out, s) {
				t.Errorf("md=%v: report lacks %q:\n%s", md, s, out)
			}
		}
	}
}

// TestMapTargets: the metrics that BenchmarkMapGet, BenchmarkMapMemory and
// BenchmarkScopeGet report side by side give issue 16's rows, judged on the
// median of the run-by-run ratios (or values).
func TestMapTargets(t *testing.T) {
	in := `BenchmarkMapGet/n=1000-2   100  1 ns/op  40 getStrong-cpu-ns  50 getWeak-cpu-ns  10 plain-cpu-ns
BenchmarkMapGet/n=1000-2   100  1 ns/op  12 getStrong-cpu-ns  18 getWeak-cpu-ns  10 plain-cpu-ns
BenchmarkMapGet/n=1000-2   100  1 ns/op  14 getStrong-cpu-ns  30 getWeak-cpu-ns  10 plain-cpu-ns
BenchmarkMapMemory/n=1000-2  1  1 ns/op  35 B/entry-idmapStrong  80 B/entry-idmapWeak
BenchmarkScopeGet-2  1  1 ns/op  29 get-cpu-ns
BenchmarkPairedParallel-2  10  1 ns/op  0.97 get-of-ceiling  0.90 scope-of-ceiling  1.02 cpu-of-ceiling
BenchmarkPairedParallel-2  10  1 ns/op  0.93 get-of-ceiling  0.99 scope-of-ceiling  1.01 cpu-of-ceiling
BenchmarkPairedParallel-2  10  1 ns/op  0.99 get-of-ceiling  0.94 scope-of-ceiling  1.00 cpu-of-ceiling
`
	r, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]row{}
	for _, x := range metricRows(r) {
		got[x.label] = x
	}
	for _, c := range []struct {
		label   string
		value   float64
		verdict string
	}{
		{"Get hit, shared, strong / plain map (CPU) at 1000", 1.4, "PASS"},
		{"Get hit, shared, weak / plain map (CPU) at 1000", 3, "MISS"},
		{"heap per entry beyond the object, strong (B) at 1000", 35, "PASS"},
		{"heap per entry beyond the object, weak (B) at 1000", 80, "MISS"},
		{"Get hit in a scope of 10^3 (CPU ns)", 29, "PASS"},
		// The median of the runs decides: 0.97 and 0.94.
		{"Get hits, shared map, 2 goroutines: gain / the read-only map's gain", 0.97, "PASS"},
		{"Get hits, one scope, 2 goroutines: gain / the read-only map's gain", 0.94, "MISS"},
		{"arithmetic loop, 2 goroutines: gain / the read-only map's gain", 1.01, ""},
	} {
		x, ok := got[c.label]
		if !ok || math.Abs(x.value-c.value) > 1e-9 || x.verdict != c.verdict {
			t.Errorf("%s: %+v (found %v), want %v %s", c.label, x, ok, c.value, c.verdict)
		}
	}
	if _, ok := got["Get hit, shared, strong / plain map (CPU) at 100000"]; ok {
		t.Error("a row for a size that did not run")
	}
}
