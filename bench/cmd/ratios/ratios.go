package main

import (
	"fmt"
	"sort"
)

// A target is one of idmap's performance goals, stated as a ratio of two
// measurements on one backend.
type target struct {
	label string // what is compared
	num   string // benchmark (with %s for the backend) and unit of the numerator
	den   string // likewise for the denominator
	unit  string // unit of both, "ns/op" unless said
	// inverse divides den by num (a speed-up, a throughput ratio).
	inverse bool
	cmp     string // "<=", "<", ">=" or "" (no target: shown for information)
	limit   float64
	backend bool // one row per backend (else one row in all)
	// pair, when set, names the BenchmarkPaired group ("pointQuery",
	// "select100") whose side metrics "<side>-ns/op" give the same ratio,
	// measured side by side: pnum over pden.
	pair, pnum, pden string
	// pbench, when set, names the paired benchmark in full instead
	// (a group that has no backend).
	pbench string
}

var targets = []target{
	{label: "point query: idmap / plain", num: "BenchmarkPointQuery/%s/idmap", den: "BenchmarkPointQuery/%s/plain", cmp: "<=", limit: 1.03, backend: true, pair: "pointQuery", pnum: "idmap", pden: "plain"},
	{label: "point query: sqlmw alone / plain", num: "BenchmarkPointQuery/%s/sqlmwNull", den: "BenchmarkPointQuery/%s/plain", backend: true, pair: "pointQuery", pnum: "sqlmwNull", pden: "plain"},
	{label: "point query: idmap / sqlmw alone", num: "BenchmarkPointQuery/%s/idmap", den: "BenchmarkPointQuery/%s/sqlmwNull", backend: true, pair: "pointQuery", pnum: "idmap", pden: "sqlmwNull"},
	{label: "Select100: Bind cold / hand-written", num: "BenchmarkSelect100/%s/bindCold", den: "BenchmarkSelect100/%s/handScan", cmp: "<=", limit: 1.15, backend: true, pair: "select100", pnum: "bindCold", pden: "handScan"},
	{label: "Select100: Bind warm / hand-written", num: "BenchmarkSelect100/%s/bindWarm", den: "BenchmarkSelect100/%s/handScan", cmp: "<=", limit: 0.95, backend: true, pair: "select100", pnum: "bindWarm", pden: "handScan"},
	{label: "Select100: Bind cold / sqlx", num: "BenchmarkSelect100/%s/bindCold", den: "BenchmarkSelect100/%s/sqlx", cmp: "<", limit: 1, backend: true, pair: "select100", pnum: "bindCold", pden: "sqlx"},
	{label: "Select100: Bind cold / scany", num: "BenchmarkSelect100/%s/bindCold", den: "BenchmarkSelect100/%s/scany", cmp: "<", limit: 1, backend: true, pair: "select100", pnum: "bindCold", pden: "scany"},
	{label: "Select100: hand-written via idmap / plain", num: "BenchmarkSelect100/%s/handScanIdmap", den: "BenchmarkSelect100/%s/handScan", backend: true, pair: "select100", pnum: "handScanIdmap", pden: "handScan"},
	{label: "Select100: Bind shared cold / hand-written", num: "BenchmarkSelect100/%s/bindSharedCold", den: "BenchmarkSelect100/%s/handScan", backend: true},
	{label: "Select100: Bind shared warm / hand-written", num: "BenchmarkSelect100/%s/bindSharedWarm", den: "BenchmarkSelect100/%s/handScan", backend: true},
	{label: "Get hit (scope): speed-up over the point query", num: "BenchmarkGet/%s/hitScope", den: "BenchmarkPointQuery/%s/plain", inverse: true, cmp: ">=", limit: 100, backend: true},
	{label: "Get hit (shared): speed-up over the point query", num: "BenchmarkGet/%s/hitShared", den: "BenchmarkPointQuery/%s/plain", inverse: true, cmp: ">=", limit: 100, backend: true},
	{label: "Get miss (new scope) / point query", num: "BenchmarkGet/%s/missScope", den: "BenchmarkPointQuery/%s/plain", backend: true},
	{label: "Get hits, shared map: throughput 2 goroutines / 1", num: "BenchmarkGetParallel/SQLiteMem/shared2", den: "BenchmarkGetParallel/SQLiteMem/shared1", unit: "ns/get", inverse: true, pbench: "BenchmarkPairedParallel", pnum: "get1", pden: "get2"},
	{label: "machine ceiling, arithmetic loop: throughput 2 goroutines / 1", num: "BenchmarkMachineParallel/cpu2", den: "BenchmarkMachineParallel/cpu1", unit: "ns/get", inverse: true, pbench: "BenchmarkPairedParallel", pnum: "cpu1", pden: "cpu2"},
	{label: "machine ceiling, read-only Go map: throughput 2 goroutines / 1", num: "BenchmarkMachineParallel/map2", den: "BenchmarkMachineParallel/map1", unit: "ns/get", inverse: true, pbench: "BenchmarkPairedParallel", pnum: "map1", pden: "map2"},
	{label: "Get hits, one scope: throughput 2 goroutines / 1", num: "BenchmarkGetParallel/SQLiteMem/scope2", den: "BenchmarkGetParallel/SQLiteMem/scope1", unit: "ns/get", inverse: true, pbench: "BenchmarkPairedParallel", pnum: "scope1", pden: "scope2"},
}

// A row of the ratio table.
type row struct {
	backend, label string
	value          float64 // from the separate benchmarks: ratio of the medians
	lo, hi         float64 // the range of the ratio run by run (runs paired in order)
	paired         bool    // pvalue, plo and phi are set
	pvalue         float64 // from BenchmarkPaired: median of the run-by-run ratios
	plo, phi       float64
	target         string // "≤ 1.03", or "" for information
	verdict        string // PASS, MISS, or "" for information: judged on pvalue when paired, else on value
}

func (t target) targetText() string {
	switch t.cmp {
	case "<=":
		return fmt.Sprintf("≤ %.4g", t.limit)
	case "<":
		return fmt.Sprintf("< %.4g", t.limit)
	case ">=":
		return fmt.Sprintf("≥ %.4g", t.limit)
	}
	return ""
}

func (t target) verdict(v float64) string {
	ok := false
	switch t.cmp {
	case "<=":
		ok = v <= t.limit
	case "<":
		ok = v < t.limit
	case ">=":
		ok = v >= t.limit
	default:
		return ""
	}
	if ok {
		return "PASS"
	}
	return "MISS"
}

// ratios computes every target that the results have the benchmarks for.
func ratios(r *results) []row {
	var rows []row
	for _, t := range targets {
		unit := t.unit
		if unit == "" {
			unit = "ns/op"
		}
		bes := []string{""}
		if t.backend {
			bes = r.backends()
		}
		for _, be := range bes {
			num, den := t.num, t.den
			if t.backend {
				num, den = fmt.Sprintf(num, be), fmt.Sprintf(den, be)
			}
			name := be
			if !t.backend {
				name = "-"
			}
			x := row{backend: name, label: t.label, target: t.targetText()}
			n, ok1 := r.median(num, unit)
			d, ok2 := r.median(den, unit)
			if ok1 && ok2 && n != 0 && d != 0 {
				x.value = n / d
				if t.inverse {
					x.value = d / n
				}
				x.lo, x.hi = r.pairedRange(num, den, unit, t.inverse)
			} else {
				ok1 = false
			}
			if t.pair != "" || t.pbench != "" {
				pb := t.pbench
				if pb == "" {
					pb = "BenchmarkPaired/" + be + "/" + t.pair
				}
				x.pvalue, x.plo, x.phi, x.paired = r.ratioOfMetrics(pb, t.pnum+"-ns/op", t.pden+"-ns/op")
			}
			switch {
			case x.paired:
				x.verdict = t.verdict(x.pvalue)
			case ok1:
				x.verdict = t.verdict(x.value)
			default:
				continue
			}
			if !ok1 {
				x.value, x.lo, x.hi = x.pvalue, x.plo, x.phi
			}
			rows = append(rows, x)
		}
	}
	// The memory of weak entries, measured once.
	if v, ok := r.median("BenchmarkSharedMemory", "B/entry"); ok {
		t := target{cmp: "<=", limit: 160}
		lo, hi := r.valueRange("BenchmarkSharedMemory", "B/entry")
		rows = append(rows, row{backend: "-", label: "shared map: bytes per weak entry", value: v, lo: lo, hi: hi, target: t.targetText(), verdict: t.verdict(v)})
	}
	rows = append(rows, metricRows(r)...)
	if v, ok := r.median("BenchmarkSharedMemory", "entries-left"); ok {
		t := target{cmp: "<=", limit: 0}
		lo, hi := r.valueRange("BenchmarkSharedMemory", "entries-left")
		rows = append(rows, row{backend: "-", label: "shared map: entries left after release", value: v, lo: lo, hi: hi, target: "0", verdict: t.verdict(v)})
	}
	return rows
}

// pairedRange returns the smallest and largest ratio of the i-th run of num
// to the i-th run of den: with rounds of the whole suite, the runs of one
// round ran close in time, under the same load.
func (r *results) pairedRange(num, den, unit string, inverse bool) (lo, hi float64) {
	ns, ds := r.runs[num][unit], r.runs[den][unit]
	first := true
	for i := range min(len(ns), len(ds)) {
		if ns[i] == 0 || ds[i] == 0 {
			continue
		}
		v := ns[i] / ds[i]
		if inverse {
			v = ds[i] / ns[i]
		}
		if first || v < lo {
			lo = v
		}
		if first || v > hi {
			hi = v
		}
		first = false
	}
	return lo, hi
}

// valueRange returns the smallest and largest value of name in unit.
func (r *results) valueRange(name, unit string) (lo, hi float64) {
	for i, v := range r.runs[name][unit] {
		if i == 0 || v < lo {
			lo = v
		}
		if i == 0 || v > hi {
			hi = v
		}
	}
	return lo, hi
}

// ratioOfMetrics returns the median and range of num/den over the runs of
// one benchmark, each run's two metrics divided.
func (r *results) ratioOfMetrics(name, num, den string) (med, lo, hi float64, ok bool) {
	ns, ds := r.runs[name][num], r.runs[name][den]
	var vs []float64
	for i := range min(len(ns), len(ds)) {
		if ds[i] != 0 {
			vs = append(vs, ns[i]/ds[i])
		}
	}
	if len(vs) == 0 {
		return 0, 0, 0, false
	}
	sort.Float64s(vs)
	med = vs[len(vs)/2]
	if len(vs)%2 == 0 {
		med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return med, vs[0], vs[len(vs)-1], true
}

// A metricTarget is a goal on metrics that one benchmark reports side by
// side (BenchmarkMapGet's "<side>-cpu-ns", BenchmarkMapMemory's
// "B/entry-<variant>"): num / den, run by run, or num itself when den is
// "".
type metricTarget struct {
	label, bench, num, den string
	cmp                    string
	limit                  float64
}

// mapTargets are issue 16's targets, at each size the benchmarks ran.
func mapTargets(r *results) []metricTarget {
	var ts []metricTarget
	for _, n := range []string{"1000", "100000", "1000000"} {
		get := "BenchmarkMapGet/n=" + n
		mem := "BenchmarkMapMemory/n=" + n
		at := " at " + n
		ts = append(ts,
			metricTarget{"Get hit, shared, strong / plain map (CPU)" + at, get, "getStrong-cpu-ns", "plain-cpu-ns", "<=", 1.5},
			metricTarget{"Get hit, shared, weak / plain map (CPU)" + at, get, "getWeak-cpu-ns", "plain-cpu-ns", "<=", 2},
			metricTarget{"Get hit, scope / plain map (CPU)" + at, get, "getScope-cpu-ns", "plain-cpu-ns", "", 0},
			metricTarget{"xsync Load / plain map (CPU)" + at, get, "xsync-cpu-ns", "plain-cpu-ns", "", 0},
			metricTarget{"plain map of weak.Pointer / plain map (CPU)" + at, get, "weakMap-cpu-ns", "plain-cpu-ns", "", 0},
			metricTarget{"Get hit, shared, weak / plain map of weak.Pointer (CPU)" + at, get, "getWeak-cpu-ns", "weakMap-cpu-ns", "", 0},
			metricTarget{"heap per entry beyond the object, strong (B)" + at, mem, "B/entry-idmapStrong", "", "<=", 40},
			metricTarget{"heap per entry beyond the object, weak (B)" + at, mem, "B/entry-idmapWeak", "", "<=", 72},
			metricTarget{"heap per entry beyond the object, plain map (B)" + at, mem, "B/entry-plain", "", "", 0},
			metricTarget{"full GC CPU with the map held, strong / plain" + at, mem, "gc-cpu-ms-idmapStrong", "gc-cpu-ms-plain", "<=", 1.5},
			metricTarget{"full GC CPU with the map held, weak / plain" + at, mem, "gc-cpu-ms-idmapWeak", "gc-cpu-ms-plain", "<=", 2},
		)
	}
	return append(ts,
		metricTarget{"Get hit in a scope of 10^3 (CPU ns)", "BenchmarkScopeGet", "get-cpu-ns", "", "<=", 30},
		// Two goroutines' gain over one, divided by the read-only map's
		// gain measured beside it (BenchmarkPairedParallel): hits "scale
		// like the machine's own ceiling" within 5%.
		metricTarget{"Get hits, shared map, 2 goroutines: gain / the read-only map's gain", "BenchmarkPairedParallel", "get-of-ceiling", "", ">=", 0.95},
		metricTarget{"Get hits, one scope, 2 goroutines: gain / the read-only map's gain", "BenchmarkPairedParallel", "scope-of-ceiling", "", ">=", 0.95},
		metricTarget{"arithmetic loop, 2 goroutines: gain / the read-only map's gain", "BenchmarkPairedParallel", "cpu-of-ceiling", "", "", 0},
		// Hits while another goroutine writes (BenchmarkGetWhileWriting),
		// against hits beside a goroutine that computes: no target.
		metricTarget{"Get hits while another goroutine writes other rows of the table / beside arithmetic", "BenchmarkGetWhileWriting", "rows-ns/op", "cpu-ns/op", "", 0},
		metricTarget{"Get hits while another goroutine writes another table / beside arithmetic", "BenchmarkGetWhileWriting", "table-ns/op", "cpu-ns/op", "", 0},
		metricTarget{"Bind 10^6 rows, shared strong / hand-written Scan into a map", "BenchmarkMapBind", "bindStrong-ns/op", "handScanMap-ns/op", "<=", 1.3},
		metricTarget{"Bind 10^6 rows, shared weak / hand-written Scan into a map", "BenchmarkMapBind", "bindWeak-ns/op", "handScanMap-ns/op", "<=", 1.3},
	)
}

// metricRows are the rows of mapTargets whose benchmarks ran.
func metricRows(r *results) []row {
	var rows []row
	for _, t := range mapTargets(r) {
		tt := target{cmp: t.cmp, limit: t.limit}
		x := row{backend: "-", label: t.label, target: tt.targetText()}
		var ok bool
		if t.den == "" {
			x.value, ok = r.median(t.bench, t.num)
			x.lo, x.hi = r.valueRange(t.bench, t.num)
		} else {
			x.value, x.lo, x.hi, ok = r.ratioOfMetrics(t.bench, t.num, t.den)
		}
		if !ok {
			continue
		}
		if t.cmp != "" {
			x.verdict = tt.verdict(x.value)
		}
		rows = append(rows, x)
	}
	return rows
}
