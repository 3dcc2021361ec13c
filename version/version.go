// Package version reports the version of netwarden's programs.
//
//	fmt.Println("netwardend", version.String())
//
// Release builds set the string at link time (the Makefile does this):
//
//	go build -ldflags "-X github.com/netwarden/netwarden/version.version=1.2.3" ./cmd/netwardend
//
// Without it, String falls back to the module version recorded by the Go
// toolchain and, failing that (a build from a work tree), to Dev.
package version

import "runtime/debug"

// Dev is the version of a build that carries no version information.
const Dev = "0.0.0-dev"

// version is set by the linker (-X); it is never assigned at run time.
var version string

// String returns the version of the running program.
func String() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Dev
}
