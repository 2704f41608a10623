# ZCX: two commands do everything on a fresh machine.
#   make test   installs what is missing, compiles, runs the whole test suite on Anvil
#   make demo   installs what is missing, runs the main job
# Each step leaves a stamp, so a second run only re-does what changed.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMPS := .stamps
SOLC_VERSION := $(shell sed -n 's/^  version: \([0-9.]*\).*/\1/p' ape-config.yaml | head -n1)
SOLCX_DIR := $(or $(SOLCX_BINARY_PATH),$(HOME)/.solcx)
BRIDGE := $(SOLCX_DIR)/solc-v$(SOLC_VERSION)

export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export APE_DISABLE_ANALYTICS := 1

.PHONY: setup test demo bench lint clean

setup: $(STAMPS)/venv $(STAMPS)/npm $(BRIDGE) $(STAMPS)/ape-deps $(STAMPS)/chromium
	ape compile

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	@touch $@

$(STAMPS)/npm: package.json package-lock.json
	@mkdir -p $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The bridge lives outside the tree (where py-solc-x looks), so it is its own target.
$(BRIDGE): $(STAMPS)/npm tools/solc-bridge.cjs tools/install-solc-bridge.sh ape-config.yaml
	tools/install-solc-bridge.sh

$(STAMPS)/ape-deps: ape-config.yaml $(STAMPS)/npm $(STAMPS)/venv
	ape pm install
	@touch $@

# Debian's Chromium (PDF statements, browser tests; Playwright drives it, never `playwright
# install`) and a Japanese font. CI runs as root; elsewhere install the two packages once as root.
$(STAMPS)/chromium:
	@mkdir -p $(STAMPS)
	@if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	else echo "need Debian's chromium and fonts-noto-cjk: apt-get install -y chromium fonts-noto-cjk (as root)" >&2; exit 1; fi
	@touch $@

test: setup
	ape test tests -q -p no:cacheprovider

demo: setup
	ape run demo

bench: setup
	$(VENV)/bin/python bench/run.py

lint: setup
	$(VENV)/bin/pip install -q ruff mypy slither-analyzer
	ruff check zcx oracle scripts tests bench tools
	ruff format --check zcx oracle scripts tests bench tools
	mypy zcx oracle
	$(VENV)/bin/python tools/slither_lint.py

clean:
	rm -rf $(STAMPS) .build contracts/.cache
