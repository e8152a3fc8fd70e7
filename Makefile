# diffred: build the book and run the tests.
#
#   make setup   venv + editable install, system packages (root) or a hint, local MathJax
#   make book    execute every chapter and build the HTML book (fails on any warning)
#   make test    the test suite (it builds the book once, at smoke scale)
#   make clean   remove the book build
#
# Variables: PYTHON (the interpreter that creates .venv), PYTEST_ARGS (e.g. -m 'not slow').

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := book

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
JB := $(VENV)/bin/jupyter-book
STAMP := $(VENV)/.stamp
APT_PACKAGES := dataset-fashion-mnist chromium
PYTEST_ARGS ?=

# Kernels and helper tools must come from the venv, not from whatever is first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup system-packages mathjax book test clean

setup: system-packages $(STAMP) mathjax

# (Re)install only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -e '.[test]'
	@touch $@

# Fashion-MNIST and the browser the tests drive come from Debian; npm fetches MathJax.
# Install what is missing when root; otherwise say which command to run, and go on.
system-packages:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do \
	    dpkg -s "$$pkg" >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && apt-get install -y $$missing; \
	else \
	    echo "make setup: missing Debian packages; run:"; \
	    echo "    sudo apt-get update && sudo apt-get install -y$$missing"; \
	fi

mathjax:
	@scripts/vendor_mathjax.sh

book: setup
	$(JB) build -W -n --keep-going --all .
	@test -f _build/html/index.html

test: setup
	$(VPY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf _build
