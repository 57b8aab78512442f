package doclinks

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// anchor is the id GitHub gives a heading: lowercase, spaces become '-',
// every other character but letters, digits, '-' and '_' is dropped.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns the anchors of path's headings (outside code blocks);
// a repeated heading gets "-1", "-2" as on GitHub.
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, seen := map[string]bool{}, map[string]int{}
	fenced := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		a := anchor(strings.TrimLeft(line, "#"))
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var linkRe = regexp.MustCompile(`\]\(([^)\s]*)\)`)

// TestDocLinks: every relative link in docs/*.md and README.md names an
// existing file, and every #anchor a heading of its file.
func TestDocLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"))
	cache := map[string]map[string]bool{}
	checked := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkRe.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %s: %s does not exist", file, target, dest)
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			if cache[dest] == nil {
				cache[dest] = anchors(t, dest)
			}
			checked++
			if !cache[dest][frag] {
				t.Errorf("%s: link %s: %s has no heading with anchor #%s", file, target, dest, frag)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no anchored link found: the link pattern matches nothing")
	}
}

// TestAnchor: GitHub's rule on the kinds of heading the docs use.
func TestAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		" Health-aware inside: a demote":                  "health-aware-inside-a-demote",
		" `import: full`: what it costs":                  "import-full-what-it-costs",
		" Restarts and crashes (`mhlab bench --restart`)": "restarts-and-crashes-mhlab-bench---restart",
		" Kernel install: nexthop objects":                "kernel-install-nexthop-objects",
		" max_prefix_restart & co.":                       "max_prefix_restart--co",
	} {
		if got := anchor(heading); got != want {
			t.Errorf("anchor(%q) = %q; want %q", heading, got, want)
		}
	}
}
