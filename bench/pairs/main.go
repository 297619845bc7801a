// Command pairs compares one Go benchmark in two test binaries (go test -c) by alternating pairs
// of runs, which on a shared, noisy machine says more than benchstat's comparison of all the runs
// of each: the two runs of a pair meet about the same load, and which binary runs first turns
// each pair.
//
//	go test -c -o /tmp/old.test ./web/   # on the tree before a change
//	go test -c -o /tmp/new.test ./web/   # and after it
//	go run ./bench/pairs -dir web -bench GetHandler/open -benchtime 200ms -n 30 /tmp/old.test /tmp/new.test
//
// For each metric of the benchmark's line (ns/op, and cpu-ns/op and others it reports) it prints
// the median of the pairs' ratios new/old, their quartiles, in how many pairs new was lower, and
// the two-sided sign test's p-value of that count. -bench must name one benchmark (one line of
// output per run).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"math/big"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

func main() {
	bench := flag.String("bench", "", "the benchmark to run (-test.bench), one benchmark")
	benchtime := flag.String("benchtime", "1s", "-test.benchtime of each run")
	n := flag.Int("n", 20, "pairs of runs")
	dir := flag.String("dir", ".", "directory to run the binaries in (the package's, for its testdata)")
	flag.Parse()
	log.SetFlags(0)
	if *bench == "" || flag.NArg() != 2 {
		log.Fatal("usage: pairs -bench NAME [-benchtime 1s] [-n 20] [-dir DIR] OLD.test NEW.test")
	}
	old, new := flag.Arg(0), flag.Arg(1)
	ratios := map[string][]float64{}
	var units []string
	for i := range *n {
		run := func(bin string) map[string]float64 {
			cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", *bench, "-test.benchtime", *benchtime)
			cmd.Dir = *dir
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				log.Fatalf("%s: %v", bin, err)
			}
			return metrics(out)
		}
		var a, b map[string]float64
		if i%2 == 0 {
			a, b = run(old), run(new)
		} else {
			b, a = run(new), run(old)
		}
		for unit, va := range a {
			vb, ok := b[unit]
			if !ok || va == 0 {
				continue
			}
			if ratios[unit] == nil {
				units = append(units, unit)
			}
			ratios[unit] = append(ratios[unit], vb/va)
		}
	}
	slices.Sort(units)
	for _, unit := range units {
		r := slices.Sorted(slices.Values(ratios[unit]))
		lower := 0
		for _, x := range r {
			if x < 1 {
				lower++
			}
		}
		fmt.Printf("%s %s: median new/old %.3f (quartiles %.3f, %.3f), new lower in %d of %d pairs, sign test p=%.2g\n",
			*bench, unit, r[len(r)/2], r[len(r)/4], r[3*len(r)/4], lower, len(r), signTest(lower, len(r)))
	}
}

// metrics reads the values of one benchmark line: "BenchmarkX-2  1000  1234 ns/op  56 B/op ...".
func metrics(out []byte) map[string]float64 {
	var lines [][]byte
	for line := range bytes.Lines(out) {
		if bytes.HasPrefix(line, []byte("Benchmark")) {
			lines = append(lines, line)
		}
	}
	if len(lines) != 1 {
		log.Fatalf("want one benchmark line, got %d:\n%s", len(lines), out)
	}
	fields := strings.Fields(string(lines[0]))
	m := map[string]float64{}
	for i := 2; i+1 < len(fields); i += 2 {
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			log.Fatalf("unexpected benchmark line %q", lines[0])
		}
		m[fields[i+1]] = v
	}
	return m
}

// signTest is the two-sided p-value of k of n pairs falling on one side when either side is
// equally likely.
func signTest(k, n int) float64 {
	k = min(k, n-k)
	sum := new(big.Int)
	for i := 0; i <= k; i++ {
		sum.Add(sum, new(big.Int).Binomial(int64(n), int64(i)))
	}
	p, _ := new(big.Rat).SetFrac(sum.Mul(sum, big.NewInt(2)), new(big.Int).Lsh(big.NewInt(1), uint(n))).Float64()
	return min(1, p)
}
