package story

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"
)

// Printer writes the demo's output for a person: short headed sections,
// indented detail, colours only on a terminal.
type Printer struct {
	w     io.Writer
	color bool
	step  int
}

// NewPrinter writes to w, with colours if w is a terminal.
func NewPrinter(w io.Writer) *Printer {
	color := false
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == "" {
		color = true
	}
	return &Printer{w: w, color: color}
}

func (p *Printer) paint(code, s string) string {
	if !p.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Section starts a numbered section.
func (p *Printer) Section(title string) {
	p.step++
	fmt.Fprintf(p.w, "\n%s\n", p.paint("1;36", fmt.Sprintf("== %d. %s", p.step, title)))
}

// Line prints an indented line.
func (p *Printer) Line(format string, args ...any) {
	fmt.Fprintf(p.w, "   %s\n", fmt.Sprintf(format, args...))
}

// OK prints a success line.
func (p *Printer) OK(format string, args ...any) {
	fmt.Fprintf(p.w, "   %s %s\n", p.paint("32", "✔"), fmt.Sprintf(format, args...))
}

// Denied prints a rejection (an expected one is good news).
func (p *Printer) Denied(format string, args ...any) {
	fmt.Fprintf(p.w, "   %s %s\n", p.paint("33", "✘"), fmt.Sprintf(format, args...))
}

// Fail prints a failure.
func (p *Printer) Fail(format string, args ...any) {
	fmt.Fprintf(p.w, "   %s %s\n", p.paint("31", "FAIL"), fmt.Sprintf(format, args...))
}

// Progress prints a line for a long step.
func (p *Printer) Progress(msg string) {
	fmt.Fprintf(p.w, "   %s %s\n", p.paint("2", "…"), msg)
}

// Block prints text indented.
func (p *Printer) Block(text string) {
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(p.w, "     %s\n", l)
	}
}

// Table prints rows aligned in columns.
func (p *Printer) Table(header []string, rows [][]string) {
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "   %s\n", strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintf(tw, "   %s\n", strings.Join(r, "\t"))
	}
	tw.Flush()
}
