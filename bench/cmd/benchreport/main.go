// Command benchreport turns a benchrun results directory into the
// benchmark report: report.md, report.json and the sweep chart
// (sweep.svg, sweep.png) in that directory, the goals marked met or missed
// on standard output, and, when asked, the generated sections of the
// READMEs rewritten between their markers.
//
//	go run ./bench/cmd/benchreport -results bench/results -readme README.md -bench-readme bench/README.md
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/internal/report"
)

// Section names of the READMEs' markers: "<!-- bench:summary:begin -->" …
// "<!-- bench:summary:end -->".
const (
	summarySection = "bench:summary"
	reportSection  = "bench:report"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	results := fs.String("results", "bench/results", "benchrun's results directory; the report is written there")
	readme := fs.String("readme", "", "rewrite the "+summarySection+" section (short table and goals) of this markdown file")
	benchReadme := fs.String("bench-readme", "", "rewrite the "+reportSection+" section (the whole report) of this markdown file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "benchreport — the benchmark report from benchrun's results (medians of the repeats, goals, chart).\n\nUsage: benchreport [flags]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "benchreport: unexpected arguments %v\n", fs.Args())
		return 2
	}
	if err := generate(*results, *readme, *benchReadme, stdout); err != nil {
		fmt.Fprintf(stderr, "benchreport: %v\n", err)
		return 1
	}
	return 0
}

func generate(results, readme, benchReadme string, stdout io.Writer) error {
	r, err := report.Load(results)
	if err != nil {
		return err
	}
	goals := r.Goals()
	if err := r.Write(results, goals); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s, %s and the chart in %s\n", report.MarkdownFile, report.JSONFile, results)
	for _, d := range r.Others {
		fmt.Fprintf(stdout, "  note: %s is not a scenario of this bench (left from an older run?): not read; git rm -r it if so\n",
			filepath.Join(results, d))
	}
	for _, g := range goals {
		fmt.Fprintf(stdout, "  %-12s %s", g.Status, g.Goal)
		if g.Measured != "" {
			fmt.Fprintf(stdout, ": %s", g.Measured)
		}
		fmt.Fprintln(stdout)
	}
	if benchReadme != "" {
		base, err := relLink(benchReadme, results)
		if err != nil {
			return err
		}
		if err := report.UpdateSection(benchReadme, reportSection, r.Markdown(goals, base)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "updated %s\n", benchReadme)
	}
	if readme != "" {
		link := "bench/README.md"
		if benchReadme != "" {
			if link, err = relLink(readme, benchReadme); err != nil {
				return err
			}
		}
		if err := report.UpdateSection(readme, summarySection, r.Summary(goals, link)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "updated %s\n", readme)
	}
	return nil
}

// relLink is the path of target relative to the directory of the markdown
// file from, with forward slashes, for a link.
func relLink(from, target string) (string, error) {
	rel, err := filepath.Rel(filepath.Dir(from), target)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}
