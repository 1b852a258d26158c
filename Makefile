# Everything the project needs is set up from its own files: a virtualenv with pinned packages
# (requirements/dev.lock.txt), a few Debian packages (system-deps), and a collections path in which
# kbfix.windows resolves to this working tree.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
CACHE := $(CURDIR)/.cache
COLLECTIONS := $(CACHE)/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/kbfix/windows
DEB_PACKAGES := binutils-mingw-w64-i686 chromium samba samba-common-bin smbclient osslsigncode
PYTEST_ARGS ?=

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export PYTHONPATH := $(COLLECTIONS):$(CURDIR)/tests/winsim
export PATH := $(BIN):$(PATH)
export ANSIBLE_HOST_KEY_CHECKING := false
export ANSIBLE_NOCOLOR := 1
export ANSIBLE_FORCE_COLOR := 0
export ANSIBLE_LOCAL_TEMP := $(CACHE)/ansible-tmp
export ANSIBLE_HOME := $(CACHE)/ansible-home

.PHONY: help setup system-deps venv collection-path test unit lint sanity docs-lint galaxy demo demo-offline bench campaign clean
# The tarball Galaxy users get (galaxy.yml's build_ignore decides what is in it); sanity runs on its content.
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := $(CACHE)/build/kbfix-windows-$(VERSION).tar.gz

help:
	@echo "make demo   - set up, start a simulated fleet, audit, remediate, audit again, print the result"
	@echo "make test   - set up and run every test (unit, winsim conformance, integration, molecule, lint)"
	@echo "make bench  - request and wall-time benchmarks against the raw-command baseline"
	@echo "make campaign - fleet fault campaign: 200 simulated hosts with injected faults (docs/reliability.md)"

setup: system-deps venv collection-path

# Debian packages: mingw binutils build real PE files for winsim, Chromium renders the HTML report.
system-deps: $(CACHE)/.system-deps
$(CACHE)/.system-deps: Makefile
	@mkdir -p $(CACHE)
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

venv: $(VENV)/.installed
$(VENV)/.installed: requirements/dev.lock.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements/dev.lock.txt
	@touch $@

collection-path: $(COLLECTION_LINK)
$(COLLECTION_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn $(CURDIR) $@

test: setup
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS) tests
	$(MAKE) --no-print-directory lint

unit: setup
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS) tests/unit

lint: setup sanity docs-lint
	$(BIN)/ruff check plugins tests tools
	$(BIN)/mypy
	$(BIN)/ansible-lint

galaxy: setup
	@mkdir -p $(dir $(TARBALL))
	$(BIN)/ansible-galaxy collection build --force --output-path $(dir $(TARBALL))

# Every ansible-test sanity test, on the unpacked tarball, ending with a table of what ran (tools/sanity.py
# says how, and docs/development.md why).
sanity: galaxy
	$(BIN)/python tools/sanity.py $(TARBALL) $(CACHE)/sanity

# The docs site (antsibull-docs) and the changelog (antsibull-changelog) as their own linters see them.
docs-lint: setup
	$(BIN)/antsibull-docs lint-collection-docs --plugin-docs .
	$(BIN)/antsibull-changelog lint
	@echo "docs-lint: antsibull-docs lint-collection-docs --plugin-docs and antsibull-changelog lint passed"

demo: setup
	$(BIN)/python tools/demo.py

# The engine alone, over the bundled host snapshots (no network, no simulator).
demo-offline: setup
	$(BIN)/python tools/offline_demo.py

bench: setup
	$(BIN)/python bench/run.py

# 200 simulated hosts, injected faults, remediate then audit, every property checked from the fleet's state;
# the table is printed and written to report/campaign.json. CAMPAIGN_ARGS: e.g. --hosts 30 --keep DIR.
CAMPAIGN_ARGS ?=
campaign: setup
	$(BIN)/python tools/campaign.py $(CAMPAIGN_ARGS)

clean:
	rm -rf $(VENV) $(CACHE) build report tests/output
