package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The shell examples of the manual run as written. TestDocsExamples reads README.md and runs, with
// bash and curl, every ```sh block that talks to localhost:8000,
// against the real binary: a fresh server (with a fresh data directory, so data/admin-token is
// there) for each ## section, the blocks of a section in order, each in its own bash in one
// working directory. The rules, which README.md's "Layout and tests" states for writers:
//
//   - localhost:8000 is the section's server, on a free port; localhost:8001 to localhost:8099
//     are other free ports, for examples that start a second server (`statehub`, the binary under
//     test, is on the PATH).
//   - Every command must exit 0, and the last HTTP answer of every command must be below 400,
//     unless the command's comment starts with a status ("# 409 ..."): then its last answer must
//     have that status. When the rest of that comment is a JSON value ("# 200 {"seq":1}"), one
//     line of what the command printed must be that JSON.
//   - A ``` (or ```text) block right after a ```sh block is its output: each of its non-blank
//     lines must appear, in that order, among the lines the block printed.
//   - <!-- docs-test: skip REASON --> on the line before a block keeps it from running;
//     <!-- docs-test: run --> makes a block without localhost:8000 run.

// docFiles are the manuals whose shell examples run, relative to e2e/. (jslib/README.md has no
// server examples in shell; its page and module examples have a test of their own.)
var docFiles = []string{"../README.md"}

type docBlock struct {
	file    string
	line    int    // of the opening fence
	lang    string // the fence's info string
	text    string
	marker  string // "skip", "run" or ""
	output  string // the output block that follows, if any
	section string
}

// parseDoc returns the fenced blocks of a Markdown file, with their section (## heading).
func parseDoc(t *testing.T, file string) []docBlock {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var blocks []docBlock
	section, marker := "(top)", ""
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "## "):
			section, marker = strings.TrimPrefix(l, "## "), ""
			continue
		case strings.HasPrefix(strings.TrimSpace(l), "<!-- docs-test:"):
			f := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(l), "<!-- docs-test:"), "-->"))
			if len(f) > 0 {
				marker = f[0]
			}
			continue
		case strings.TrimSpace(l) == "":
			continue
		}
		trimmed := strings.TrimLeft(l, " ")
		if !strings.HasPrefix(trimmed, "```") {
			marker = ""
			continue
		}
		indent := len(l) - len(trimmed)
		b := docBlock{file: file, line: i + 1, lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), marker: marker, section: section}
		marker = ""
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, strings.TrimPrefix(lines[i], strings.Repeat(" ", indent)))
		}
		b.text = strings.Join(body, "\n") + "\n"
		if n := len(blocks); n > 0 && (b.lang == "" || b.lang == "text") && blocks[n-1].lang == "sh" && blocks[n-1].output == "" && precededByBlock(lines, b.line-1) {
			blocks[n-1].output = b.text
			continue
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// precededByBlock reports whether the line before index open (0-based, the opening fence), skipping
// blank lines, closes a fenced block.
func precededByBlock(lines []string, open int) bool {
	for j := open - 1; j >= 0; j-- {
		if s := strings.TrimSpace(lines[j]); s != "" {
			return s == "```"
		}
	}
	return false
}

// runnable reports whether the test runs b.
func (b docBlock) runnable() bool {
	switch {
	case b.lang != "sh" || b.marker == "skip":
		return false
	case b.marker == "run":
		return true
	}
	return strings.Contains(b.text, "localhost:8000")
}

// shellCommand is one command of a block: its text and the comment on its last line.
type shellCommand struct {
	text, comment string
	line          int // within the block, 1-based, of its first line
}

var (
	openWords  = map[string]bool{"for": true, "while": true, "until": true, "if": true, "case": true}
	closeWords = map[string]bool{"done": true, "fi": true, "esac": true}
)

// splitCommands splits a block into commands: a command ends at a newline outside quotes, $( ),
// a line continuation and a for/while/until/if/case compound. Comment lines belong to no command.
func splitCommands(block string) ([]shellCommand, error) {
	var cmds []shellCommand
	var cur strings.Builder
	start := 0
	single, double := false, false
	depth, compound := 0, 0
	for n, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		if cur.Len() == 0 && (strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n + 1
		}
		code, comment := line, ""
		var bare strings.Builder // the line's code outside quotes, for the compound keywords
		for i := 0; i < len(line); i++ {
			c := line[i]
			switch {
			case single:
				single = c != '\''
				continue
			case c == '\\':
				i++
				continue
			case double:
				double = c != '"'
				continue
			case c == '\'':
				single = true
			case c == '"':
				double = true
			case c == '(':
				depth++
			case c == ')':
				depth--
			case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
				code, comment = line[:i], strings.TrimSpace(line[i+1:])
				i = len(line)
				continue
			}
			bare.WriteByte(c)
		}
		for _, w := range strings.FieldsFunc(bare.String(), func(r rune) bool { return strings.ContainsRune(" \t;&|()'\"", r) }) {
			if openWords[w] {
				compound++
			} else if closeWords[w] {
				compound--
			}
		}
		cur.WriteString(code)
		cur.WriteString("\n")
		continued := strings.HasSuffix(strings.TrimRight(code, " \t"), "\\")
		if single || double || depth > 0 || compound > 0 || continued {
			continue
		}
		cmds = append(cmds, shellCommand{text: cur.String(), comment: comment, line: start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		return cmds, fmt.Errorf("the block ends inside a command (an open quote, $( or compound) that began on its line %d", start)
	}
	return cmds, nil
}

// expectation is what a command's comment says of its last answer.
type expectation struct {
	status int             // 0: any status below 400
	body   json.RawMessage // nil: not checked
}

var statusComment = regexp.MustCompile(`^([1-5][0-9][0-9])\b\s*(.*)$`)

func expect(comment string) expectation {
	m := statusComment.FindStringSubmatch(comment)
	if m == nil {
		return expectation{}
	}
	e := expectation{}
	e.status, _ = strconv.Atoi(m[1])
	rest := strings.TrimSpace(m[2])
	if rest != "" && (rest[0] == '{' || rest[0] == '[' || rest[0] == '"' || rest[0] == '-' || rest[0] >= '0' && rest[0] <= '9') && json.Valid([]byte(rest)) {
		e.body = json.RawMessage(rest)
	}
	return e
}

var localPort = regexp.MustCompile(`localhost:80([0-9][0-9])`)

func TestDocsExamples(t *testing.T) {
	t.Parallel()
	requireTools(t)
	realCurl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal(err)
	}
	// The wrapper reports the status of every answer on stderr, tagged with the command it
	// belongs to, and keeps curl quiet but for errors and from hanging.
	bin := t.TempDir()
	wrapper := "#!/bin/sh\nexec " + realCurl + ` -sS --max-time 60 -w "%{stderr}@@docs-status ${DOCS_CMD:-0} %{http_code}\n" "$@"` + "\n"
	if err := os.WriteFile(filepath.Join(bin, "curl"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(bin, "statehub")); err != nil {
		t.Fatal(err)
	}
	for _, file := range docFiles {
		var order []string
		bySection := map[string][]docBlock{}
		for _, b := range parseDoc(t, file) {
			if !b.runnable() {
				continue
			}
			if bySection[b.section] == nil {
				order = append(order, b.section)
			}
			bySection[b.section] = append(bySection[b.section], b)
		}
		for _, section := range order {
			blocks := bySection[section]
			t.Run(filepath.Base(file)+"/"+section, func(t *testing.T) {
				t.Parallel()
				runDocSection(t, bin, blocks)
			})
		}
	}
}

// runDocSection starts a server for one section and runs its blocks in order.
func runDocSection(t *testing.T, bin string, blocks []docBlock) {
	dir := t.TempDir()
	base, _, _ := startWith(t, "-data", filepath.Join(dir, "data"))
	ports := map[string]string{"00": strings.TrimPrefix(base, "http://")}
	for _, b := range blocks {
		text := localPort.ReplaceAllStringFunc(b.text, func(s string) string {
			n := s[len(s)-2:]
			if ports[n] == "" {
				ports[n] = freeAddr(t)
			}
			return ports[n]
		})
		cmds, err := splitCommands(text)
		if err != nil {
			t.Fatalf("%s:%d: %v", b.file, b.line, err)
		}
		runDocBlock(t, b, cmds, dir, bin)
	}
}

// runDocBlock runs one block's commands in one bash and checks each against its comment.
func runDocBlock(t *testing.T, b docBlock, cmds []shellCommand, dir, bin string) {
	var script strings.Builder
	for i, c := range cmds {
		fmt.Fprintf(&script, "export DOCS_CMD=%d\n%s__docs_s=$?; printf '\\n@@docs-end %d %%d\\n' \"$__docs_s\"\n", i+1, c.text, i+1)
	}
	script.WriteString("kill $(jobs -p) 2>/dev/null; wait\n") // background jobs the block left running
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	where := fmt.Sprintf("%s:%d (section %q)", b.file, b.line, b.section)
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: bash: %v\nstdout:\n%s\nstderr:\n%s", where, err, stdout.String(), stderr.String())
	}

	// What each command printed, its exit status, and the statuses of its answers.
	out := stdout.String()
	printed := map[int][]string{}
	exit := map[int]int{}
	var all []string
	cur := 1
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		var n, code int
		if _, err := fmt.Sscanf(line, "@@docs-end %d %d", &n, &code); err == nil {
			exit[n] = code
			cur = n + 1
			continue
		}
		printed[cur] = append(printed[cur], line)
		all = append(all, line)
	}
	statuses := map[int][]int{}
	var errOut []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		var n, code int
		if _, err := fmt.Sscanf(line, "@@docs-status %d %d", &n, &code); err == nil {
			statuses[n] = append(statuses[n], code)
		} else if line != "" {
			errOut = append(errOut, line)
		}
	}
	t.Logf("%s: ran %d commands\n%s", where, len(cmds), out)

	for i, c := range cmds {
		n := i + 1
		what := fmt.Sprintf("%s, the command on the block's line %d: %s", where, c.line, strings.TrimSpace(c.text))
		if code, ok := exit[n]; !ok {
			t.Errorf("%s: did not finish\nstderr:\n%s", what, strings.Join(errOut, "\n"))
			continue
		} else if code != 0 {
			t.Errorf("%s: exit status %d\nprinted:\n%s\nstderr:\n%s", what, code, strings.Join(printed[n], "\n"), strings.Join(errOut, "\n"))
		}
		e := expect(c.comment)
		st := statuses[n]
		if len(st) == 0 {
			if e.status != 0 {
				t.Errorf("%s: the comment says %d, but no HTTP answer was seen", what, e.status)
			}
			continue
		}
		last := st[len(st)-1]
		switch {
		case e.status == 0 && (last >= 400 || last < 100):
			t.Errorf("%s: answered %d (a comment starting with the status would say it is expected)\nprinted:\n%s", what, last, strings.Join(printed[n], "\n"))
		case e.status != 0 && last != e.status:
			t.Errorf("%s: answered %d, the comment says %d\nprinted:\n%s", what, last, e.status, strings.Join(printed[n], "\n"))
		}
		if e.body != nil && !printedJSON(printed[n], e.body) {
			t.Errorf("%s: printed no line equal to %s\nprinted:\n%s", what, e.body, strings.Join(printed[n], "\n"))
		}
	}
	if b.output != "" {
		want := nonBlank(b.output)
		j := 0
		for _, line := range all {
			if j < len(want) && strings.TrimSpace(line) == want[j] {
				j++
			}
		}
		if j < len(want) {
			t.Errorf("%s: the output block's line %q was not printed (after the lines before it)\nprinted:\n%s", where, want[j], strings.Join(all, "\n"))
		}
	}
}

// printedJSON reports whether one of lines is JSON equal to want.
func printedJSON(lines []string, want json.RawMessage) bool {
	var w any
	if json.Unmarshal(want, &w) != nil {
		return false
	}
	for _, l := range lines {
		var got any
		if json.Unmarshal([]byte(l), &got) == nil && reflect.DeepEqual(got, w) {
			return true
		}
	}
	return false
}

func nonBlank(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestDocsSplitCommands pins the splitter the examples test relies on.
func TestDocsSplitCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		block string
		want  []string // the commands' comments
		n     int
	}{
		{"one per line", "curl a   # 200 {\"a\":1}\ncurl b\n", []string{`200 {"a":1}`, ""}, 2},
		{"comment lines belong to none", "# a note\ncurl a\n#   another\n", []string{""}, 1},
		{"continuation", "curl a \\\n  -d b   # 201\n", []string{"201"}, 1},
		{"quoted newlines", "curl -d '{\n  \"a\": 1}'   # 200\n", []string{"200"}, 1},
		{"a hash inside quotes", "curl 'a#b' -H \"x #y\"  # 404\n", []string{"404"}, 1},
		{"command substitution", "X=$(curl a \\\n  | sed s/x/y/)\necho \"$X\"\n", []string{"", ""}, 2},
		{"loops", "for i in 1 2; do\n  curl a\ndone\nuntil curl b; do sleep 1; done   # 200\n", []string{"", "200"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmds, err := splitCommands(tc.block)
			if err != nil {
				t.Fatal(err)
			}
			if len(cmds) != tc.n {
				t.Fatalf("%d commands, want %d: %+v", len(cmds), tc.n, cmds)
			}
			for i, c := range cmds {
				if c.comment != tc.want[i] {
					t.Errorf("command %d: comment %q, want %q", i, c.comment, tc.want[i])
				}
			}
		})
	}
	if e := expect(`200 {"seq":1}`); e.status != 200 || string(e.body) != `{"seq":1}` {
		t.Errorf("expect: %+v", e)
	}
	if e := expect(`409 revision_conflict: stale`); e.status != 409 || e.body != nil {
		t.Errorf("expect: %+v", e)
	}
	if e := expect(`1, 2, 3, ...`); e.status != 0 {
		t.Errorf("expect: %+v", e)
	}
}
