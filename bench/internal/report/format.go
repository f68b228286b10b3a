package report

import (
	"math"
	"strconv"
	"strings"
)

// Num writes a whole number with thousands separators: 10000 is "10,000".
func Num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Count writes a rate or count with three significant digits and a k or
// M suffix: 1213000 is "1.21M", 125500 is "126k", 950 is "950".
func Count(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return sig3(v/1e6) + "M"
	case a >= 1e3:
		return sig3(v/1e3) + "k"
	default:
		return sig3(v)
	}
}

// Ms writes milliseconds with three significant digits (at most two
// decimals): 45.04 is "45", 1.234 is "1.23", 0.4567 is "0.46".
func Ms(v float64) string { return sig3(v) }

// sig3 writes v with three significant digits, at most two decimals, and
// no trailing zeros.
func sig3(v float64) string {
	a := math.Abs(v)
	decimals := 0
	switch {
	case a == 0:
		return "0"
	case a < 10:
		decimals = 2
	case a < 100:
		decimals = 1
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// table is a markdown table under construction.
type table struct {
	b    strings.Builder
	cols int
}

// newTable starts a table; align holds one character per column: l, r
// or c.
func newTable(align string, head ...string) *table {
	t := &table{cols: len(head)}
	t.b.WriteString("|")
	for _, h := range head {
		t.b.WriteString(" " + h + " |")
	}
	t.b.WriteString("\n|")
	for i := range head {
		switch {
		case i < len(align) && align[i] == 'r':
			t.b.WriteString("---:|")
		case i < len(align) && align[i] == 'c':
			t.b.WriteString(":---:|")
		default:
			t.b.WriteString("---|")
		}
	}
	t.b.WriteString("\n")
	return t
}

func (t *table) row(cells ...string) {
	t.b.WriteString("|")
	for i := range t.cols {
		c := "-"
		if i < len(cells) && cells[i] != "" {
			c = cells[i]
		}
		t.b.WriteString(" " + strings.ReplaceAll(c, "|", `\|`) + " |")
	}
	t.b.WriteString("\n")
}

func (t *table) String() string { return t.b.String() }
