# strata.overlay2: everything installs itself; run as root on Debian (the tests start their own dockerd).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest -p no:cacheprovider
DEBIAN_PACKAGES := docker.io busybox-static shellcheck debootstrap chromium chromium-driver

.PHONY: help deps system-deps venv test unit engine sanity lint molecule collection-link demo bench clean

help:
	@echo "make demo    sandbox dockerd + sample images, run the facts playbook, print the map"
	@echo "make test    unit tests, real-engine tests, sanity, lint and the Molecule fleet (what CI runs)"
	@echo "make molecule  the Molecule scenarios on a Docker-in-Docker fleet (engines 20.10 and 28.x)"
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

test: deps unit engine sanity lint molecule

unit: deps
	$(PYTEST) -q tests/unit tests/integration tests/browser

engine: deps
	$(PYTEST) -q tests/engine

sanity: deps
	VENV=$(abspath $(VENV)) devtools/sanity.sh

collection-link:
	mkdir -p build/ansible_collections/strata && ln -sfn $(CURDIR) build/ansible_collections/strata/overlay2

lint: venv collection-link
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build $(VENV)/bin/ansible-lint playbooks/ roles/ molecule/

# One outer dockerd for the whole run; the host images (debootstrap + docker import) are built once and
# shared by every scenario. The outer engine is stopped by its pid when the scenarios end, pass or fail.
molecule: deps collection-link
	PATH=$(abspath $(VENV))/bin:$$PATH ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build \
	  $(PY) devtools/fleet.py run -- molecule test --all

demo: deps
	$(PY) devtools/demo.py

bench: deps
	$(PY) benchmarks/facts.py
	$(PY) benchmarks/verify.py
	$(PY) benchmarks/prune.py
	$(PY) benchmarks/run

clean:
	rm -rf build tests/output .pytest_cache
