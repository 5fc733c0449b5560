package main

import (
	"bufio"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// results are the measurements of a `go test -bench` output: for each
// benchmark (its name without the -GOMAXPROCS suffix), each unit's values,
// one per run.
type results struct {
	header map[string]string               // goos, goarch, pkg, cpu
	order  []string                        // benchmark names, in first-seen order
	runs   map[string]map[string][]float64 // name → unit → values
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.+)$`)

// parse reads the output of `go test -bench` (with -count ≥ 1); lines that
// are not benchmark results or header lines are ignored.
func parse(r io.Reader) (*results, error) {
	res := &results{header: map[string]string{}, runs: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, h := range []string{"goos", "goarch", "pkg", "cpu"} {
			if v, ok := strings.CutPrefix(line, h+": "); ok {
				res.header[h] = v
			}
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f := strings.Fields(m[3])
		if len(f) < 2 || len(f)%2 != 0 {
			continue
		}
		name := m[1]
		units := res.runs[name]
		if units == nil {
			units = map[string][]float64{}
			res.runs[name] = units
			res.order = append(res.order, name)
		}
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			units[f[i+1]] = append(units[f[i+1]], v)
		}
	}
	return res, sc.Err()
}

// median returns the median of name's values in unit, and whether there
// are any.
func (r *results) median(name, unit string) (float64, bool) {
	vs := r.runs[name][unit]
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// count returns how many runs name has.
func (r *results) count(name string) int {
	n := 0
	for _, vs := range r.runs[name] {
		n = max(n, len(vs))
	}
	return n
}

// units returns the units of name, ns/op, B/op and allocs/op first.
func (r *results) units(name string) []string {
	var us []string
	for u := range r.runs[name] {
		us = append(us, u)
	}
	rank := func(u string) int {
		switch u {
		case "ns/op":
			return 0
		case "B/op":
			return 1
		case "allocs/op":
			return 2
		}
		return 3
	}
	sort.Slice(us, func(i, j int) bool {
		if a, b := rank(us[i]), rank(us[j]); a != b {
			return a < b
		}
		return us[i] < us[j]
	})
	return us
}

// backends returns the backends that appear in the results (the second part
// of BenchmarkWhat/Backend/how names), in first-seen order.
func (r *results) backends() []string {
	var bs []string
	for _, n := range r.order {
		parts := strings.Split(n, "/")
		if len(parts) == 3 && !slices.Contains(bs, parts[1]) {
			bs = append(bs, parts[1])
		}
	}
	return bs
}
