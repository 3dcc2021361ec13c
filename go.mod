module github.com/netwarden/netwarden

go 1.26.8

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/godbus/dbus/v5 v5.2.4
	github.com/google/gopacket v1.1.19
	github.com/vishvananda/netns v0.0.5
	golang.org/x/sys v0.50.0
)
