# Build, check and install netwarden.
#
#   make                      bin/netwardend and bin/netwarden
#   make check                gofmt, go vet, staticcheck, unit tests
#   make integration          the integration tests (root; real namespaces)
#   make install              install everything under DESTDIR and PREFIX
#   make uninstall            remove what install installed
#
# install honours DESTDIR (staging root for packaging) and PREFIX
# (default /usr); each directory can also be set alone, e.g.
#   make install DESTDIR=/tmp/stage SYSTEMDUNITDIR=/usr/lib/systemd/system
# It installs the binaries, netwardend.service and netwardend.socket, the
# bus policy and activation file (Exec= and ExecStart= pointing at
# SBINDIR), the polkit actions and the D-Bus interface descriptions.
# The Cockpit page (cockpit/) goes to $(COCKPITDIR).
# The firewalld zone and policy files (zones/firewalld) go to
# $(FIREWALLDDIR)/{zones,policies}, where firewalld reads its defaults; a
# file there with the same content is left untouched, a different one is
# replaced with a message. uninstall leaves them: another package (libvirt)
# may own files of the same names.
# BUILDDIR (default bin) is where the binaries are built, for builds
# outside the source tree.

PREFIX          ?= /usr
SBINDIR         ?= $(PREFIX)/sbin
BINDIR          ?= $(PREFIX)/bin
DATADIR         ?= $(PREFIX)/share
DBUSPOLICYDIR   ?= $(DATADIR)/dbus-1/system.d
DBUSSERVICEDIR  ?= $(DATADIR)/dbus-1/system-services
DBUSIFACEDIR    ?= $(DATADIR)/dbus-1/interfaces
POLKITACTIONDIR ?= $(DATADIR)/polkit-1/actions
SYSTEMDUNITDIR  ?= /lib/systemd/system
FIREWALLDDIR    ?= $(PREFIX)/lib/firewalld
COCKPITDIR      ?= $(DATADIR)/cockpit/netwarden
DESTDIR         ?=
BUILDDIR        ?= bin

GO          ?= go
STATICCHECK ?= $(or $(shell command -v staticcheck 2>/dev/null),$(HOME)/go/bin/staticcheck)
# The version comes from the nearest git tag, else version.Dev.
VERSION     ?= $(or $(shell git describe --tags --dirty 2>/dev/null),0.0.0-dev)
GOFLAGS_BUILD = -trimpath -ldflags "-X github.com/netwarden/netwarden/version.version=$(VERSION)"

# The D-Bus interface descriptions (checked against the code by
# dbusapi's TestInterfaceFiles).
IFACEFILES := $(notdir $(wildcard dbusapi/interfaces/*.xml))

# The firewalld zones and policies, relative to zones/firewalld.
FWFILES := $(patsubst zones/firewalld/%,%,$(wildcard zones/firewalld/zones/*.xml zones/firewalld/policies/*.xml))

# The Cockpit page (plain files, no build step).
COCKPITFILES := $(notdir $(wildcard cockpit/*.json cockpit/*.html cockpit/*.js cockpit/*.css))

# The CLI is built when its main package exists.
CMDS := netwardend $(if $(wildcard cmd/netwarden/main.go),netwarden)

.PHONY: all build check fmt-check vet staticcheck test integration install uninstall clean FORCE

all: build

build: $(CMDS:%=$(BUILDDIR)/%)

# go's own cache decides what to rebuild, so make always asks it (FORCE).
$(BUILDDIR)/%: FORCE
	$(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/$*

check: fmt-check vet staticcheck test

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

# Unit tests: every package but the lab and the integration tests.
test:
	$(GO) test $$($(GO) list ./... | grep -v /tests/)

integration:
	NETWARDEN_INTEGRATION=1 $(GO) test -count=1 -v ./tests/integration/

install: build
	install -D -m 0755 $(BUILDDIR)/netwardend $(DESTDIR)$(SBINDIR)/netwardend
	$(if $(filter netwarden,$(CMDS)),install -D -m 0755 $(BUILDDIR)/netwarden $(DESTDIR)$(BINDIR)/netwarden)
	install -D -m 0644 dbusapi/org.netwarden1.conf $(DESTDIR)$(DBUSPOLICYDIR)/org.netwarden1.conf
	install -D -m 0644 polkit/org.netwarden1.policy $(DESTDIR)$(POLKITACTIONDIR)/org.netwarden1.policy
	install -d -m 0755 $(DESTDIR)$(DBUSIFACEDIR)
	install -m 0644 $(IFACEFILES:%=dbusapi/interfaces/%) $(DESTDIR)$(DBUSIFACEDIR)/
	install -d -m 0755 $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(DBUSSERVICEDIR)
	sed 's|/usr/sbin/netwardend|$(SBINDIR)/netwardend|' systemd/netwardend.service \
		> $(DESTDIR)$(SYSTEMDUNITDIR)/netwardend.service
	install -m 0644 systemd/netwardend.socket $(DESTDIR)$(SYSTEMDUNITDIR)/netwardend.socket
	sed 's|/usr/sbin/netwardend|$(SBINDIR)/netwardend|' systemd/org.netwarden1.service \
		> $(DESTDIR)$(DBUSSERVICEDIR)/org.netwarden1.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/netwardend.service $(DESTDIR)$(DBUSSERVICEDIR)/org.netwarden1.service
	install -d -m 0755 $(DESTDIR)$(COCKPITDIR)
	install -m 0644 $(COCKPITFILES:%=cockpit/%) $(DESTDIR)$(COCKPITDIR)/
	@for f in $(FWFILES); do \
		dst="$(DESTDIR)$(FIREWALLDDIR)/$$f"; \
		if cmp -s "zones/firewalld/$$f" "$$dst"; then echo "$$dst: identical file present, kept"; continue; fi; \
		if [ -e "$$dst" ]; then echo "$$dst: differs, replaced"; fi; \
		install -D -m 0644 "zones/firewalld/$$f" "$$dst" || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/netwardend $(DESTDIR)$(BINDIR)/netwarden \
		$(DESTDIR)$(DBUSPOLICYDIR)/org.netwarden1.conf \
		$(DESTDIR)$(POLKITACTIONDIR)/org.netwarden1.policy \
		$(IFACEFILES:%=$(DESTDIR)$(DBUSIFACEDIR)/%) \
		$(DESTDIR)$(SYSTEMDUNITDIR)/netwardend.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/netwardend.socket \
		$(DESTDIR)$(DBUSSERVICEDIR)/org.netwarden1.service \
		$(COCKPITFILES:%=$(DESTDIR)$(COCKPITDIR)/%)
	-rmdir $(DESTDIR)$(COCKPITDIR) 2>/dev/null

clean:
	rm -rf bin
