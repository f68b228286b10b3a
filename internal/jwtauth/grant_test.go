package jwtauth_test

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/jwtauth"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/topic"
)

func TestGrantDoesNotAllocate(t *testing.T) {
	g, err := jwtauth.NewGrant("", time.Time{}, []string{"a.b", "player.*.>"}, []string{"player.>"})
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		_ = g.CanPublish("player.1.start")
		_ = g.CanSubscribe("player.1")
	}); n != 0 {
		t.Errorf("CanPublish and CanSubscribe's fast path allocate %v times", n)
	}
}

func grant(tb testing.TB, publish, subscribe []string) *jwtauth.Grant {
	tb.Helper()
	g, err := jwtauth.NewGrant("s", time.Time{}, publish, subscribe)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func TestCanPublish(t *testing.T) {
	t.Parallel()
	g := grant(t, []string{"default", "player.*.start", "ads.>"}, []string{">"})
	for name, want := range map[string]bool{
		"default": true, "player.1.start": true, "ads.a": true, "ads.a.b": true,
		"ads": false, "player.1.stop": false, "player.start": false, "other": false,
		"player.*.start": false, "ads.>": false, "*": false, "": false, "a..b": false,
	} {
		if got := g.CanPublish(name); got != want {
			t.Errorf("CanPublish(%q) = %v, want %v", name, got, want)
		}
	}
	var none *jwtauth.Grant
	if none.CanPublish("default") || none.CanSubscribe("default") || none.SubscribePatterns() != nil {
		t.Error("the nil Grant grants something")
	}
}

func TestCanSubscribe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		granted []string
		allowed []string
		refused []string
	}{
		{
			granted: []string{"player.>"},
			allowed: []string{"player.a", "player.*", "player.>", "player.a.>", "player.*.b", "player.a.b.c", "player.*.>"},
			refused: []string{"player", "*", ">", "*.a", "*.>", "ads", "players.a", "playe.>"},
		},
		{
			granted: []string{"player.*"},
			allowed: []string{"player.a", "player.*"},
			refused: []string{"player.>", "player.a.b", "player", "player.*.>", "*.*", "*"},
		},
		{
			granted: []string{"*"},
			allowed: []string{"a", "default", "*"},
			refused: []string{"a.b", "*.*", ">", "a.>"},
		},
		{
			granted: []string{">"},
			allowed: []string{"a", "a.b", "*", ">", "*.>", "a.*.c"},
			refused: []string{"", "a..b", "a.>.b"},
		},
		{
			// Together, a.* and a.*.> are a.>.
			granted: []string{"a.*", "a.*.>"},
			allowed: []string{"a.>", "a.b", "a.b.c", "a.*.*"},
			refused: []string{">", "a", "b.>"},
		},
		{
			// * and *.> are >.
			granted: []string{"*.>", "*"},
			allowed: []string{">", "a", "*.*.*"},
		},
		{
			// Literals never add up to a wildcard.
			granted: []string{"a.x", "a.y", "a.z"},
			allowed: []string{"a.x"},
			refused: []string{"a.*", "a.>", "*.x"},
		},
		{
			granted: []string{"a.x.>", "a.*.y", "a.*.*.>"},
			allowed: []string{"a.x.y", "a.b.y", "a.x.b", "a.*.y", "a.*.*.*", "a.*.*.>", "a.x.>"},
			refused: []string{"a.*.>", "a.*.*", "a.>"},
		},
		{
			// *.b and a.* both match a.b, but neither covers *.*.
			granted: []string{"*.b", "a.*"},
			allowed: []string{"a.b", "a.c", "c.b", "a.*", "*.b"},
			refused: []string{"*.*", "c.c", "*.c"},
		},
		{
			granted: nil,
			refused: []string{"a", ">", "*"},
		},
	} {
		g := grant(t, nil, tc.granted)
		for _, p := range tc.allowed {
			if !g.CanSubscribe(p) {
				t.Errorf("granted %q: CanSubscribe(%q) = false, want true", tc.granted, p)
			}
		}
		for _, p := range tc.refused {
			if g.CanSubscribe(p) {
				t.Errorf("granted %q: CanSubscribe(%q) = true, want false", tc.granted, p)
			}
		}
	}
}

func TestNewGrant(t *testing.T) {
	t.Parallel()
	exp := time.Date(2030, time.January, 1, 12, 1, 0, 0, time.UTC)
	g, err := jwtauth.NewGrant("me", exp, []string{"a", "a"}, []string{"b.*", "c", "b.*"})
	if err != nil || g.Subject != "me" || !g.Expires.Equal(exp) {
		t.Fatalf("NewGrant = %+v, %v", g, err)
	}
	if got := g.SubscribePatterns(); !slices.Equal(got, []string{"b.*", "c"}) {
		t.Errorf("SubscribePatterns = %q", got)
	}
	in := []string{"x"}
	g, _ = jwtauth.NewGrant("", time.Time{}, in, in)
	in[0] = "y"
	if !g.CanPublish("x") || g.CanPublish("y") {
		t.Error("NewGrant keeps the caller's slice")
	}
	for _, bad := range [][2][]string{{{"ok", "a.>.b"}, nil}, {nil, {">", ""}}} {
		if _, err := jwtauth.NewGrant("", time.Time{}, bad[0], bad[1]); err == nil {
			t.Errorf("NewGrant(%q, %q) accepts an invalid pattern", bad[0], bad[1])
		}
	}
}

// The covers-check against a brute-force reference. Patterns are built
// from the segments a, b, * and a final >, up to three segments; topics
// from a, b and z (a value no pattern names), up to four segments: one
// more than the longest pattern, which is enough for a counterexample to
// show (a topic longer than every pattern only matches through a final >,
// which looks at the first segments only). The requested pattern is
// covered when every topic it matches is matched by a granted pattern.
func TestCanSubscribeAgainstBruteForce(t *testing.T) {
	t.Parallel()
	patterns := generate([]string{"a", "b", "*"}, 3, true)
	topics := generate([]string{"a", "b", "z"}, 4, false)
	// matches[i] is the set of topics pattern i matches, as a bit set.
	matches := make([][2]uint64, len(patterns))
	for i, p := range patterns {
		for j, name := range topics {
			if topic.Match(p, name) {
				matches[i][j/64] |= 1 << (j % 64)
			}
		}
	}
	if len(topics) > 128 {
		t.Fatalf("%d topics do not fit the bit sets", len(topics))
	}
	covered := func(req int, granted ...int) bool {
		var union [2]uint64
		for _, g := range granted {
			union[0] |= matches[g][0]
			union[1] |= matches[g][1]
		}
		return matches[req][0]&^union[0] == 0 && matches[req][1]&^union[1] == 0
	}
	check := func(req int, granted ...int) {
		gs := make([]string, len(granted))
		for i, g := range granted {
			gs[i] = patterns[g]
		}
		g := grant(t, nil, gs)
		if got, want := g.CanSubscribe(patterns[req]), covered(req, granted...); got != want {
			t.Fatalf("granted %q: CanSubscribe(%q) = %v, the reference says %v", gs, patterns[req], got, want)
		}
	}
	n := len(patterns)
	for r := range n {
		check(r)
		for g1 := range n {
			check(r, g1)
			for g2 := g1 + 1; g2 < n; g2++ {
				check(r, g1, g2)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		k := 3 + rng.IntN(3)
		granted := make([]int, k)
		for i := range granted {
			granted[i] = rng.IntN(n)
		}
		check(rng.IntN(n), granted...)
	}
}

// generate returns every pattern (or topic) of 1 to depth segments taken
// from segs, plus, with tail, those that end with ">" after 0 to depth-1
// such segments.
func generate(segs []string, depth int, tail bool) []string {
	var out []string
	level := []string{""}
	for d := 1; d <= depth; d++ {
		next := make([]string, 0, len(level)*len(segs))
		for _, prefix := range level {
			for _, s := range segs {
				next = append(next, join(prefix, s))
			}
			if tail {
				out = append(out, join(prefix, ">"))
			}
		}
		out = append(out, next...)
		level = next
	}
	return out
}

func join(prefix, seg string) string {
	if prefix == "" {
		return seg
	}
	return prefix + "." + seg
}

// Reference implementations for the fuzz targets: regular expressions
// written from the rules, not from the code.
var (
	refTopic   = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	refPattern = regexp.MustCompile(`^(>|([A-Za-z0-9_-]+|\*)(\.([A-Za-z0-9_-]+|\*))*(\.>)?)$`)
)

func refValid(p string) bool   { return len(p) <= 64 && refPattern.MatchString(p) }
func refIsTopic(t string) bool { return len(t) <= 64 && refTopic.MatchString(t) }

// refMatch translates the pattern into a regular expression.
func refMatch(pattern, topic string) bool {
	if !refValid(pattern) || !refIsTopic(topic) {
		return false
	}
	segs := strings.Split(pattern, ".")
	for i, s := range segs {
		switch s {
		case "*":
			segs[i] = `[^.]+`
		case ">":
			segs[i] = `[^.]+(\.[^.]+)*`
		default:
			segs[i] = regexp.QuoteMeta(s)
		}
	}
	return regexp.MustCompile(`^` + strings.Join(segs, `\.`) + `$`).MatchString(topic)
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"a", "a"}, {"*", "a"}, {">", "a.b"}, {"a.*.c", "a.b.c"}, {"a.>", "a"}, {"a..b", "a..b"},
		{"*.>", "x.y"}, {"a>", "a>"}, {"", ""}, {strings.Repeat("a.", 32) + ">", "a"}, {"-_.*", "-_.Z"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if got, want := topic.ValidPattern(pattern), refValid(pattern); got != want {
			t.Fatalf("ValidPattern(%q) = %v, want %v", pattern, got, want)
		}
		if got, want := topic.Match(pattern, name), refMatch(pattern, name); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pattern, name, got, want)
		}
		// A valid name is a pattern that matches itself and, granted,
		// allows subscribing to itself and publishing on itself.
		if refIsTopic(name) {
			g := grant(t, []string{name}, []string{name})
			if !topic.Match(name, name) || !g.CanSubscribe(name) || !g.CanPublish(name) {
				t.Fatalf("name %q does not match itself", name)
			}
		}
		// Granted a valid pattern allows it, and every name it matches.
		if refValid(pattern) {
			g := grant(t, []string{pattern}, []string{pattern})
			if !g.CanSubscribe(pattern) {
				t.Fatalf("granted %q does not allow itself", pattern)
			}
			if topic.Match(pattern, name) != g.CanPublish(name) || topic.Match(pattern, name) && !g.CanSubscribe(name) {
				t.Fatalf("granted %q, name %q: CanPublish or CanSubscribe disagrees with Match", pattern, name)
			}
		}
	})
}

// FuzzCovers checks CanSubscribe for two granted patterns and a request
// against the brute-force reference, over the topics made of the literals
// the three patterns name and one value none names, one segment longer
// than the longest of them.
func FuzzCovers(f *testing.F) {
	f.Add("a.*", "a.*.>", "a.>")
	f.Add("*.b", "a.*", "*.*")
	f.Add("x.>", "*.y", "x.*")
	f.Add("*", "*.>", ">")
	f.Fuzz(func(t *testing.T, g1, g2, req string) {
		if !topic.ValidPattern(g1) || !topic.ValidPattern(g2) || !topic.ValidPattern(req) {
			return
		}
		var lits []string
		depth := 0
		for _, p := range []string{g1, g2, req} {
			segs := strings.Split(p, ".")
			depth = max(depth, len(segs))
			for _, s := range segs {
				if s != "*" && s != ">" && !slices.Contains(lits, s) {
					lits = append(lits, s)
				}
			}
		}
		fresh := "fresh"
		for slices.Contains(lits, fresh) {
			fresh += "0"
		}
		lits = append(lits, fresh)
		depth++
		// Keep the universe small, and its topics within 64 bytes so that
		// they are valid topics Match accepts.
		longest := 0
		for _, l := range lits {
			longest = max(longest, len(l))
		}
		size := 1
		for range depth {
			size *= len(lits)
		}
		if size > 5000 || depth*(longest+1) > 65 {
			return
		}
		want := true
		for _, name := range generate(lits, depth, false) {
			if refMatch(req, name) && !refMatch(g1, name) && !refMatch(g2, name) {
				want = false
				break
			}
		}
		g := grant(t, nil, []string{g1, g2})
		if got := g.CanSubscribe(req); got != want {
			t.Fatalf("granted %q and %q: CanSubscribe(%q) = %v, the reference says %v", g1, g2, req, got, want)
		}
	})
}
