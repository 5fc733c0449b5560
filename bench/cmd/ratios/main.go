// Command ratios runs idmap's benchmarks (or reads a saved run) and prints
// the ratios that idmap's performance targets are stated in, with PASS or
// MISS against each target, then the median ns/op, B/op and allocs/op of
// every benchmark.
//
// From the bench directory:
//
//	go run ./cmd/ratios                   # run the benchmarks: 5 rounds, -benchtime 300ms
//	go run ./cmd/ratios -out raw.txt      # and keep go test's output
//	go run ./cmd/ratios -in raw.txt       # read a saved `go test -bench` output instead
//	go run ./cmd/ratios -md               # Markdown tables
//
// The test binary is built once (`go test -c`) and run -count times with
// `-test.run ^$ -test.bench . -test.benchmem -test.count 1`: rounds of the
// whole suite rather than -count consecutive runs of each benchmark, so that
// a burst of load on a shared machine does not fall on one side of a ratio
// only. The output is that of `go test -bench -count N`, in another order.
// MySQL and PostgreSQL benchmarks run when IDMAP_MYSQL_DSN / IDMAP_PG_DSN
// are set.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

func main() {
	in := flag.String("in", "", "read this saved `go test -bench` output instead of running the benchmarks")
	out := flag.String("out", "", "write go test's output to this file")
	count := flag.Int("count", 5, "runs of each benchmark, in as many rounds of the whole suite (the median is taken)")
	benchtime := flag.String("benchtime", "300ms", "go test -benchtime")
	bench := flag.String("bench", ".", "go test -bench: which benchmarks")
	dir := flag.String("dir", ".", "the bench module's directory")
	md := flag.Bool("md", false, "print Markdown tables")
	flag.Parse()

	var raw []byte
	if *in != "" {
		b, err := os.ReadFile(*in)
		if err != nil {
			fatal(err)
		}
		raw = b
	} else {
		b, err := run(*dir, *bench, *benchtime, *count)
		raw = b
		if *out != "" {
			if werr := os.WriteFile(*out, raw, 0o644); werr != nil {
				fatal(werr)
			}
		}
		if err != nil {
			fatal(err)
		}
	}
	r, err := parse(bytes.NewReader(raw))
	if err != nil {
		fatal(err)
	}
	if len(r.order) == 0 {
		fatal(fmt.Errorf("no benchmark results in the input"))
	}
	report(os.Stdout, r, *md)
}

// run builds the bench module's test binary in dir and runs the benchmarks
// in count rounds, echoing their output to stderr; it returns the output.
func run(dir, bench, benchtime string, count int) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "idmap-ratios-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bench.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = dir
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "ratios: go test -c (in %s)\n", dir)
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("go test -c: %v", err)
	}
	var buf bytes.Buffer
	for i := range count {
		args := []string{"-test.run", "^$", "-test.bench", bench, "-test.benchmem",
			"-test.count", "1", "-test.benchtime", benchtime, "-test.timeout", "60m"}
		fmt.Fprintf(os.Stderr, "ratios: round %d of %d: bench.test %s\n", i+1, count, strings.Join(args, " "))
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir // the test binary runs in its package's directory, as go test does
		cmd.Stdout = io.MultiWriter(&buf, os.Stderr)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return buf.Bytes(), fmt.Errorf("round %d: %v", i+1, err)
		}
	}
	return buf.Bytes(), nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "ratios:", err)
	os.Exit(1)
}

// report prints the ratio table and the table of medians. "separate" is the
// ratio of the medians of two benchmarks; "paired" the median ratio of two
// sides of one BenchmarkPaired run, which a verdict prefers; each "runs"
// column is the range of the run-by-run ratios. A benchmark's spread is half
// the range of its ns/op as a share of the median.
func report(w io.Writer, r *results, md bool) {
	runs := 0
	for _, n := range r.order {
		runs = max(runs, r.count(n))
	}
	if cpu := r.header["cpu"]; cpu != "" {
		fmt.Fprintf(w, "cpu: %s, %s/%s; median of %d run(s)\n\n", cpu, r.header["goos"], r.header["goarch"], runs)
	}
	rows := ratios(r)
	pass, miss := 0, 0
	for _, x := range rows {
		switch x.verdict {
		case "PASS":
			pass++
		case "MISS":
			miss++
		}
	}
	t := newTable(w, md, "backend", "ratio", "separate", "runs", "paired", "runs", "target", "")
	for _, x := range rows {
		p, pr := "", ""
		if x.paired {
			p, pr = ratioText(x.pvalue), ratioText(x.plo)+"–"+ratioText(x.phi)
		}
		t.row(x.backend, x.label, ratioText(x.value), ratioText(x.lo)+"–"+ratioText(x.hi), p, pr, x.target, x.verdict)
	}
	t.flush()
	fmt.Fprintf(w, "\ntargets: %d PASS, %d MISS\n\n", pass, miss)

	t = newTable(w, md, "benchmark", "ns/op", "spread", "B/op", "allocs/op", "other")
	for _, n := range r.order {
		cell := func(u string) string {
			v, ok := r.median(n, u)
			if !ok {
				return ""
			}
			return num(v)
		}
		var other []string
		for _, u := range r.units(n) {
			if u == "ns/op" || u == "B/op" || u == "allocs/op" {
				continue
			}
			v, _ := r.median(n, u)
			other = append(other, num(v)+" "+u)
		}
		spread := ""
		if med, ok := r.median(n, "ns/op"); ok && med > 0 && r.count(n) > 1 {
			lo, hi := r.valueRange(n, "ns/op")
			spread = fmt.Sprintf("±%.0f%%", 50*(hi-lo)/med)
		}
		t.row(n, cell("ns/op"), spread, cell("B/op"), cell("allocs/op"), strings.Join(other, ", "))
	}
	t.flush()
}

func ratioText(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func num(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e15:
		return fmt.Sprintf("%d", int64(v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// table prints aligned columns, or a Markdown table.
type table struct {
	md bool
	w  io.Writer
	tw *tabwriter.Writer
}

func newTable(w io.Writer, md bool, head ...string) *table {
	t := &table{md: md, w: w}
	if !md {
		t.tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	}
	t.row(head...)
	if md {
		seps := make([]string, len(head))
		for i, h := range head {
			switch h {
			case "backend", "ratio", "benchmark", "target", "other", "":
				seps[i] = "---"
			default:
				seps[i] = "---:"
			}
		}
		t.row(seps...)
	}
	return t
}

func (t *table) row(cells ...string) {
	if t.md {
		fmt.Fprintf(t.w, "| %s |\n", strings.Join(cells, " | "))
		return
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() {
	if t.tw != nil {
		t.tw.Flush()
	}
}
