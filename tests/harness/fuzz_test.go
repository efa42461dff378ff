package harness_test

import (
	"strings"
	"testing"

	"tlcvm/tests/harness"
)

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"return": {}, "id": [1, "x", null]}`, `"\u00e9"`, `[[[]]]`, `{`, `1e3`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := harness.ParseJSON([]byte(s))
		if err != nil {
			return
		}
		// What we render parses back to the same rendering.
		out := v.String()
		w, err := harness.ParseJSON([]byte(out))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if w.String() != out {
			t.Fatalf("render not stable: %q vs %q", out, w.String())
		}
		if err := harness.Match(v, w); err != nil {
			t.Fatalf("value does not match its own rendering: %v", err)
		}
	})
}

func FuzzParseScript(f *testing.F) {
	for _, s := range []string{
		"args: -S\n-> {}\n<- {\"return\": {}}\n",
		"case: a\nqmp: none\n(qemu) info status\nexpect-exit: 0\ncase: b\nsend: \"x\\n\"\n",
		"-> @fd @shape:2 {{repeat \"[\" 3}}\nwait-event: STOP\nsignal: TERM\nscrub: a => b\n",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, golden bool) {
		if strings.Contains(s, "{{") {
			return // templates can ask for unbounded output (repeat)
		}
		scripts, err := harness.ParseScript("f.txt", "f", []byte(s), golden)
		if err != nil {
			return
		}
		if len(scripts) == 0 {
			t.Fatal("no script and no error")
		}
	})
}

func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{`-m 64 -name "a b" 'c d' e\ f`, `"`, `'`, `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := harness.SplitArgs(s)
		if err != nil {
			return
		}
		for _, a := range args {
			if strings.ContainsAny(a, " \t") && !strings.ContainsAny(s, `"'\`) {
				t.Fatalf("blank inside unquoted word %q", a)
			}
		}
	})
}

func FuzzScreen(f *testing.F) {
	f.Add("i\x1b[K\x1b[Din\x1b[K\r\nout\r\n")
	f.Add("\x1b[12D\x1b[3C\x1b[?\x1b")
	f.Fuzz(func(t *testing.T, s string) {
		lines := harness.Screen(harness.Prompt, []byte(s))
		if len(lines) == 0 {
			t.Fatal("no lines")
		}
		if n := strings.Count(s, "\n") + 1; len(lines) != n {
			t.Fatalf("%d lines for %d newlines", len(lines), n-1)
		}
	})
}

func FuzzParseCmdlines(f *testing.F) {
	f.Add("-m foo\n-version ;; stdout scrub=\\(.*\\)$\n# c\n-M help ;; stdout-head=1 stdout-each=\\S+\n")
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := harness.ParseCmdlines("f", []byte(s))
		if err != nil {
			return
		}
		for _, c := range cs {
			if c.Line < 1 || c.Name() == "" {
				t.Fatalf("bad case %+v", c)
			}
		}
	})
}
