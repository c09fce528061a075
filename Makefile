# Build and install vigil on a Debian gateway.
#   make                  build the release binary (Swift runtime linked in)
#   make deb              the Debian package: dist/vigil_<version>_<arch>.deb (scripts/deb)
#   sudo make install     binary, systemd unit, /etc/vigil/vigil.yaml and /etc/vigil/rules.d,
#                         README.md and docs/ in $(DOCDIR)
#   make install DESTDIR=/tmp/pkg PREFIX=/usr    stage a package
# An existing /etc/vigil/vigil.yaml or rule file is kept; the shipped one goes beside it as .new.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
# /usr/local/lib/systemd/system is on systemd's unit path; /etc/systemd/system stays the
# administrators' (overrides: systemctl edit vigil).
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/vigil
SWIFT ?= swift
BUILD := .build-release/release/vigil
# The commit for `vigil --version` (Package.swift reads it; SwiftPM re-reads the manifest
# when it changes). Outside a git checkout it stays empty and vigil says "commit unknown".
VIGIL_COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git rev-parse HEAD >/dev/null 2>&1 && ! git diff --quiet HEAD -- 2>/dev/null && echo -dirty)
export VIGIL_COMMIT

.PHONY: all build install install-files uninstall check-install deb

all: build

build:
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path .build-release --product vigil

# Config files are never overwritten: an edited gateway keeps its own.
define install_config
	if [ -e "$(2)" ]; then install -m 0644 "$(1)" "$(2).new"; else install -m 0644 "$(1)" "$(2)"; fi
endef

install: build install-files

# What install puts in place, from a binary already built (debian/rules uses it too).
install-files:
	install -D -s -m 0755 $(BUILD) $(DESTDIR)$(BINDIR)/vigil
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/vigil/rules.d $(DESTDIR)$(DOCDIR)
	sed -e 's|/usr/bin/vigil|$(BINDIR)/vigil|g' -e 's|/etc/vigil|$(SYSCONFDIR)/vigil|g' \
	    -e 's|/usr/share/doc/vigil|$(DOCDIR)|g' systemd/vigil.service > $(DESTDIR)$(UNITDIR)/vigil.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/vigil.service
	sed -e 's|^rules_dir: .*|rules_dir: $(SYSCONFDIR)/vigil/rules.d|' config/vigil.yaml > config/.vigil.yaml.install
	$(call install_config,config/.vigil.yaml.install,$(DESTDIR)$(SYSCONFDIR)/vigil/vigil.yaml)
	rm -f config/.vigil.yaml.install
	for f in config/rules.d/*.yaml; do $(call install_config,$$f,$(DESTDIR)$(SYSCONFDIR)/vigil/rules.d/$$(basename $$f)); done
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -d $(DESTDIR)$(DOCDIR)/docs/schemas
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/docs/
	install -m 0644 docs/schemas/*.json $(DESTDIR)$(DOCDIR)/docs/schemas/
	for f in docs/*.svg; do if [ -e "$$f" ]; then install -m 0644 "$$f" $(DESTDIR)$(DOCDIR)/docs/; fi; done
	@echo "installed; next: edit $(SYSCONFDIR)/vigil/vigil.yaml, then systemctl daemon-reload && systemctl enable --now vigil"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vigil $(DESTDIR)$(UNITDIR)/vigil.service
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "kept $(SYSCONFDIR)/vigil and /var/lib/vigil (config and buffer)"

# What CI checks: a staged install whose example config passes `vigil check`, a unit that
# `systemd-analyze verify` accepts and that `systemd-analyze security` rates 2.0 or lower.
check-install: build
	scripts/check-install

deb:
	scripts/deb
