# strata.overlay2: everything installs itself; run as root on Debian (the tests start their own dockerd).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest -p no:cacheprovider
DEBIAN_PACKAGES := docker.io busybox-static shellcheck

.PHONY: help deps system-deps venv test unit engine sanity lint demo bench clean

help:
	@echo "make demo    sandbox dockerd + sample images, run the facts playbook, print the map"
	@echo "make test    unit tests, real-engine tests, ansible-test sanity (what CI runs)"
	@echo "make bench   benchmarks against the engine's own tools (writes benchmarks/results/)"

deps: system-deps venv

system-deps:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

test: deps unit engine sanity lint

unit: venv
	$(PYTEST) -q tests/unit tests/integration

engine: deps
	$(PYTEST) -q tests/engine

sanity: deps
	VENV=$(abspath $(VENV)) devtools/sanity.sh

lint: venv
	mkdir -p build/ansible_collections/strata && ln -sfn $(CURDIR) build/ansible_collections/strata/overlay2
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build $(VENV)/bin/ansible-lint playbooks/

demo: deps
	$(PY) devtools/demo.py

bench: deps
	$(PY) benchmarks/facts.py
	$(PY) benchmarks/verify.py
	$(PY) benchmarks/prune.py
	$(PY) benchmarks/run

clean:
	rm -rf build tests/output .pytest_cache
