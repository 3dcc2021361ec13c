package main

import (
	"fmt"
	"strconv"
	"strings"
)

// optKind is how an option of a verb takes its value.
type optKind int

const (
	// optData is an argument that may be given by position or as
	// --name VALUE, like virsh's [--file] <string>.
	optData optKind = iota
	// optBool is a flag: --name.
	optBool
	// optNumber is --name N, a non-negative integer.
	optNumber
	// optString is --name VALUE, never by position (virsh's
	// VSH_OT_STRING).
	optString
)

// option is one option of a verb.
type option struct {
	name     string
	kind     optKind
	required bool
	help     string
	// arg names the value in the program's help: FILE, NAME|UUID, …
	arg string
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// parsed holds a verb's arguments after parsing.
type parsed struct {
	values map[string]string
	flags  map[string]bool
	help   bool
}

// str returns the value of a data or string option, "" if absent.
func (p parsed) str(name string) string { return p.values[name] }

// has reports whether a value option or flag was given.
func (p parsed) has(name string) bool {
	_, ok := p.values[name]
	return ok || p.flags[name]
}

// number returns the value of a number option and whether it was given.
func (p parsed) number(name string) (int, bool) {
	v, ok := p.values[name]
	if !ok {
		return 0, false
	}
	n, _ := strconv.Atoi(v) // checked by parseArgs
	return n, true
}

// parseArgs parses a verb's arguments the way virsh does: options as
// --name VALUE or --name=VALUE in any order, data options also by
// position, "-" as a value, "--" ending the options; --help or -h asks
// for the verb's help.
func parseArgs(v *verb, args []string) (parsed, error) {
	p := parsed{values: map[string]string{}, flags: map[string]bool{}}
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if a == "-h" || a == "--help" {
			p.help = true
			return p, nil
		}
		if !strings.HasPrefix(a, "--") || a == "-" {
			if strings.HasPrefix(a, "-") && a != "-" {
				return p, usagef("command '%s' doesn't support option %s", v.name, a)
			}
			positional = append(positional, a)
			continue
		}
		name, value, hasValue := strings.Cut(a[2:], "=")
		o := v.option(name)
		if o == nil {
			return p, usagef("command '%s' doesn't support option --%s", v.name, name)
		}
		if _, dup := p.values[name]; dup || p.flags[name] {
			return p, usagef("option --%s already seen", name)
		}
		if o.kind == optBool {
			if hasValue {
				return p, usagef("option --%s takes no value", name)
			}
			p.flags[name] = true
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return p, usagef("expected syntax: --%s <%s>", name, o.metavar())
			}
			i++
			value = args[i]
		}
		p.values[name] = value
	}
	for _, a := range positional {
		var target *option
		for i := range v.opts {
			o := &v.opts[i]
			if _, set := p.values[o.name]; o.kind == optData && !set {
				target = o
				break
			}
		}
		if target == nil {
			return p, usagef("unexpected data '%s'", a)
		}
		p.values[target.name] = a
	}
	for _, o := range v.opts {
		val, set := p.values[o.name]
		if o.required && !set {
			return p, usagef("command '%s' requires <%s> option", v.name, o.name)
		}
		if set && o.kind == optNumber {
			if n, err := strconv.Atoi(val); err != nil || n < 0 {
				return p, usagef("numeric value '%s' for <%s> option is malformed or out of range", val, o.name)
			}
		}
		if set && o.kind != optBool && val == "" {
			return p, usagef("option --%s needs a non-empty value", o.name)
		}
	}
	return p, nil
}

// metavar is the placeholder of an option's value in help texts.
func (o option) metavar() string {
	if o.kind == optNumber {
		return "number"
	}
	return "string"
}

// option returns the verb's option called name, nil if it has none.
func (v *verb) option(name string) *option {
	for i := range v.opts {
		if v.opts[i].name == name {
			return &v.opts[i]
		}
	}
	return nil
}
