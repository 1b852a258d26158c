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
DEB_PACKAGES := binutils-mingw-w64-i686 chromium samba samba-common-bin smbclient
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

.PHONY: help setup system-deps venv collection-path test unit lint sanity demo demo-offline bench clean
# ansible-test sanity tests that need no per-test virtualenv: the others bootstrap pip from a host outside
# the package registries this project may use, so they cannot run here (see docs/development.md).
SANITY_TESTS := compile empty-init line-endings no-assert no-get-exception no-illegal-filenames no-smart-quotes \
	replace-urlopen shebang symlinks use-compat-six use-argspec-type-path action-plugin-docs
SANITY_ROOT := $(CACHE)/sanity/ansible_collections/kbfix/windows

help:
	@echo "make demo   - set up, start a simulated fleet, audit, remediate, audit again, print the result"
	@echo "make test   - set up and run every test (unit, winsim conformance, integration, molecule, lint)"
	@echo "make bench  - request and wall-time benchmarks against the raw-command baseline"

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

lint: setup sanity
	$(BIN)/ruff check plugins tests tools
	$(BIN)/mypy
	$(BIN)/ansible-lint

# ansible-test wants the collection at .../ansible_collections/kbfix/windows as a real directory: copy the
# tracked and untracked-but-not-ignored files there.
sanity: setup
	@rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_ROOT)
	@git ls-files --cached --others --exclude-standard -z | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
		| tar --null -cf - -T - | tar -xf - -C $(SANITY_ROOT)
	cd $(SANITY_ROOT) && $(BIN)/ansible-test sanity --python 3.11 $(addprefix --test ,$(SANITY_TESTS))

demo: setup
	$(BIN)/python tools/demo.py

# The engine alone, over the bundled host snapshots (no network, no simulator).
demo-offline: setup
	$(BIN)/python tools/offline_demo.py

bench: setup
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(CACHE) build report tests/output
