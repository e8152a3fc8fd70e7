# diffred: build the book and run the tests.
#
#   make setup    venv installed from requirements.lock (exact versions, hashes checked), the
#                 package itself (editable), system packages (root) or a hint, local MathJax
#   make book     execute every chapter and build the HTML book (fails on any warning)
#   make test     the test suite (it builds the book once, at smoke scale)
#   make lock     (re)write requirements.lock from pyproject.toml (after editing its dependencies)
#   make publish  build the book, then pack it: _build/publish/diffred-book-<version>.tar.gz
#   make clean    remove the book build
#
# Variables: PYTHON (the interpreter that creates .venv), PYTEST_ARGS (e.g. -m 'not slow'),
# LOCK_ARGS (e.g. --upgrade, or --upgrade-package timm), HTML and PUBLISH_DIR (make archive).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := book

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
JB := $(VENV)/bin/jupyter-book
STAMP := $(VENV)/.stamp
LOCK := requirements.lock
# pip-compile runs in a venv of its own, so that its dependencies never change the book's.
LOCK_VENV := $(VENV)/lock-tool
LOCK_TOOL := pip-tools==7.6.2
LOCK_ARGS ?=
# The archive's version: CITATION.cff's (the same as pyproject.toml's; a test checks).
VERSION := $(shell sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' CITATION.cff)
HTML ?= _build/html
PUBLISH_DIR ?= _build/publish
ARCHIVE := $(PUBLISH_DIR)/diffred-book-$(VERSION).tar.gz
APT_PACKAGES := dataset-fashion-mnist chromium
PYTEST_ARGS ?=

# Kernels and helper tools must come from the venv, not from whatever is first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup system-packages mathjax book test lock publish archive clean

setup: system-packages $(STAMP) mathjax

# (Re)install only when pyproject.toml or the lock is newer than the stamp. Every package
# comes from the lock, at its exact version, its hash checked (pip's hash-checking mode);
# then the project itself, with no dependencies of its own to resolve.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --require-hashes -r $(LOCK)
	$(VPY) -m pip install --no-deps -e .
	@touch $@

# The lock: every package pyproject.toml needs (with the test and bench extras), resolved for this
# machine's Python 3.11 on Linux x86_64, pinned with the hashes of the files pip may
# install. A re-run keeps the pins that still satisfy pyproject.toml and adds or moves only
# what changed (LOCK_ARGS=--upgrade moves everything to the newest release allowed).
lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) \
	    && $(LOCK_VENV)/bin/pip install --quiet '$(LOCK_TOOL)'; }
	CUSTOM_COMPILE_COMMAND='make lock' $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	    --extra test --extra bench --no-emit-index-url --no-emit-find-links \
	    $(LOCK_ARGS) --output-file $(LOCK) pyproject.toml
	@{ printf '%s\n' "$$LOCK_HEADER"; cat $(LOCK); } > $(LOCK).tmp && mv $(LOCK).tmp $(LOCK)
	@echo "make lock: wrote $(LOCK) ($$(grep -c '^[a-z0-9].*==' $(LOCK)) packages)"

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

# The built site as one versioned archive, for a static host (README: "Publishing").
publish: book
	@$(MAKE) --no-print-directory archive

# Pack an already built site ($(HTML)) with no build: reproducible bytes (sorted names,
# fixed owner and times, gzip without a timestamp) under one top folder of the version.
archive:
	@test -f $(HTML)/index.html || { echo "make archive: no book in $(HTML) (make book first)"; exit 1; }
	@test -n "$(VERSION)" || { echo "make archive: CITATION.cff has no version:"; exit 1; }
	@mkdir -p $(PUBLISH_DIR)
	tar --create --directory $(HTML) --transform 's,^\.,diffred-book-$(VERSION),' \
	    --exclude ./.buildinfo --sort=name --owner=0 --group=0 --numeric-owner \
	    --mtime='$(shell sed -n 's/^date-released: *//p' CITATION.cff) 00:00Z' . \
	    | gzip -n -9 > $(ARCHIVE)
	@echo "make archive: $(ARCHIVE) ($$(du -h $(ARCHIVE) | cut -f1))"

clean:
	rm -rf _build

define LOCK_HEADER
# requirements.lock: the exact version of every package the book installs, with the
# sha256 of every file pip may take for it. Written by `make lock` (pip-compile, from
# pyproject.toml's dependencies and its `test` extra); `make setup`, hence `make book` and
# `make test`, installs from it in pip's hash-checking mode, and tests/test_lock.py fails
# when pyproject.toml asks for something this file does not pin. Do not edit by hand:
# change pyproject.toml, then run `make lock` (LOCK_ARGS=--upgrade to move every pin).
#
# Resolved for CPython 3.11 on Linux x86_64 (the packages torch needs there, the CUDA
# runtime wheels among them, are pinned too). Each pin lists the hash of every file the
# indexes offered for that version; pip accepts a file whose sha256 is among them.
# torch 2.14.1 and torchvision 0.29.1 are hashed like every other package, hashes not
# omitted: on this project's machines pip takes them from a wheel index on the machine's
# own disk (pip's configuration in /etc/pip.conf and /etc/xdg/pip), and the sha256 of those
# two files (torch ...305a61f6, torchvision ...2cb67802) is listed below beside PyPI's. A
# machine whose torch comes from elsewhere (another build of the same version) fails the
# hash check rather than run other code: there, `make lock` locks what that machine offers.
endef
export LOCK_HEADER
