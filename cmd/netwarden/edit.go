package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
)

// editorCommand returns the editor to run: $VISUAL, else $EDITOR, else
// vi, as virsh chooses.
func editorCommand(getenv func(string) string) string {
	for _, name := range []string{"VISUAL", "EDITOR"} {
		if e := strings.TrimSpace(getenv(name)); e != "" {
			return e
		}
	}
	return "vi"
}

// runEditor runs the editor on path through the shell, so that the
// variable may carry arguments ("emacs -nw"), with the terminal as its
// standard streams. netwarden ignores SIGINT meanwhile: a Ctrl-C meant
// for the editor must not end netwarden and leave the editor behind.
func runEditor(s *session, path string) error {
	editor := editorCommand(s.getenv)
	cmd := exec.Command("/bin/sh", "-c", editor+` "$1"`, "netwarden-editor", path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.stdin, s.stdout, s.stderr
	if s.signals {
		signal.Ignore(os.Interrupt)
		defer signal.Reset(os.Interrupt)
	}
	if err := cmd.Run(); err != nil {
		return &cmdError{msg: fmt.Sprintf("editor '%s' failed: %v", editor, err)}
	}
	return nil
}

// reeditPrompt is virsh's question after a refused edit.
const reeditPrompt = "Failed. Try again? [y,n,f,?]: "

const reeditHelp = `y - yes, start editor again
n - no, throw away my changes
f - force, try to redefine again
? - print this help
`

// askReedit asks what to do after a refused edit and returns 'y', 'n'
// or 'f'; end of input counts as 'n'.
func askReedit(in *bufio.Reader, out io.Writer) byte {
	for {
		io.WriteString(out, reeditPrompt)
		line, err := in.ReadString('\n')
		answer := strings.ToLower(strings.TrimSpace(line))
		switch {
		case answer == "y" || answer == "n" || answer == "f":
			return answer[0]
		case err != nil:
			io.WriteString(out, "\n")
			return 'n'
		case answer == "?":
			io.WriteString(out, reeditHelp)
		}
	}
}

// nwfilterEdit edits a filter's XML in an editor, as virsh's
// nwfilter-edit does.
func nwfilterEdit(s *session, c api, p parsed) error {
	arg := p.str("nwfilter")
	path, err := s.lookupFilter(c, arg)
	if err != nil {
		return err
	}
	name := s.filterName(c, path, arg)
	ctx, cancel := s.callContext()
	orig, err := c.NWFilterGetXMLDesc(ctx, path, 0)
	cancel()
	if err != nil {
		return fail(readFailure(fmt.Sprintf("failed to get the XML of network filter '%s'", arg), "no network filter with that name or UUID"), err)
	}

	return s.editLoop("Network filter", name, "netwarden-nwfilter-*.xml", orig, func(edited string) (string, error) {
		ctx, cancel := s.callContext()
		defer cancel()
		newPath, err := c.NWFilterDefineXML(ctx, edited)
		if err != nil {
			return "", fail(manageFailure("failed to define the edited network filter "+name, "define network filters", ""), err)
		}
		return s.filterName(c, newPath, name), nil
	})
}

// editLoop runs the editor on a temporary copy of orig and defines the
// result with define, which returns the name defined or the error told
// in words; what names the kind of object in messages ("Network
// filter"). A refused result is edited again, thrown away or defined
// again as the user answers on a terminal; without one it fails.
func (s *session) editLoop(what, name, pattern, orig string, define func(edited string) (string, error)) error {
	tmp, err := os.CreateTemp("", pattern)
	if err != nil {
		return &cmdError{msg: fmt.Sprintf("failed to create a temporary file: %v", err)}
	}
	defer os.Remove(tmp.Name())
	if _, err := io.WriteString(tmp, orig); err != nil {
		tmp.Close()
		return &cmdError{msg: fmt.Sprintf("failed to write %s: %v", tmp.Name(), err)}
	}
	if err := tmp.Close(); err != nil {
		return &cmdError{msg: fmt.Sprintf("failed to write %s: %v", tmp.Name(), err)}
	}

	answers := bufio.NewReader(s.stdin)
	for {
		if err := s.edit(s, tmp.Name()); err != nil {
			return err
		}
		b, err := os.ReadFile(tmp.Name())
		if err != nil {
			return &cmdError{msg: fmt.Sprintf("failed to read %s: %v", tmp.Name(), err)}
		}
		edited := string(b)
		if edited == orig {
			s.say("%s %s XML configuration not changed.\n", what, name)
			return nil
		}
		for {
			newName, err := define(edited)
			if err == nil {
				s.say("%s %s XML configuration edited.\n", what, newName)
				return nil
			}
			if !s.interactive {
				return err
			}
			fmt.Fprintf(s.stderr, "error: %v\n", err)
			switch askReedit(answers, s.stdout) {
			case 'y':
			case 'f':
				continue
			default:
				return errSilent
			}
			break
		}
	}
}
