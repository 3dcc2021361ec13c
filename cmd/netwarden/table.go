package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// formatTable lays out rows under header the way virsh's tables look:
// every cell preceded by a space, columns padded to their widest cell
// and separated by two more spaces, a dashed rule under the header as
// wide as the columns plus three per column, and an empty line at the
// end (virsh ends every command's output with one). With quiet, only
// the rows are printed, as virsh --quiet does. Control characters in
// cells are escaped so that they cannot break the layout.
func formatTable(header []string, rows [][]string, quiet bool) string {
	widths := make([]int, len(header))
	all := append([][]string{header}, rows...)
	for i, row := range all {
		all[i] = make([]string, len(header))
		for j := range header {
			if j < len(row) {
				all[i][j] = safeCell(row[j])
			}
			widths[j] = max(widths[j], utf8.RuneCountInString(all[i][j]))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		for j, cell := range row {
			b.WriteString(" ")
			b.WriteString(cell)
			if j < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(cell)+2))
			}
		}
		b.WriteString("\n")
	}
	if !quiet {
		line(all[0])
		total := 0
		for _, w := range widths {
			total += w + 3
		}
		b.WriteString(strings.Repeat("-", total))
		b.WriteString("\n")
	}
	for _, row := range all[1:] {
		line(row)
	}
	if !quiet {
		b.WriteString("\n")
	}
	return b.String()
}

// safeCell replaces control and other non-printable characters with
// \xNN (or \uNNNN) escapes.
func safeCell(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x100:
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		default:
			b.WriteString(strings.Trim(strconv.QuoteRuneToASCII(r), "'"))
		}
	}
	return b.String()
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}
