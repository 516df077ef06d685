# strata.overlay2: everything installs itself; run as root on Debian (the tests start their own dockerd).
SHELL := /bin/bash
# Development runs on the newest ansible-core (2.21), which needs Python 3.12 or newer on the controller.
PYTHON ?= $(shell python3 devtools/pythons.py 3.13)
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest -p no:cacheprovider
DEBIAN_PACKAGES := docker.io busybox-static shellcheck debootstrap chromium chromium-driver strace redis-tools
DEMO_PACKAGES := docker.io busybox-static
OLDER_CORES := 2.17 2.18 2.19 2.20
# The coming core, tested before its release (sanity and the unit tests, as collections do): devtools/matrix.py pins it.
NEXT_CORE := 2.22
STAGE := devtools/stage

.PHONY: help deps system-deps venv check test unit integration engine sanity lint molecule collection-link demo \
	bench clean matrix importer docs ee

help:
	@echo "make demo      sandbox dockerd + sample images, run the facts playbook, print the map"
	@echo "make check     the edit loop, a few minutes: unit tests, ansible-test sanity, ansible-lint"
	@echo "make test      everything CI runs: check, integration, real engines, the matrix, Molecule (docs/testing.md)"
	@echo "make unit      the unit tests (tests/unit)"
	@echo "make engine    the tests against real engines (tests/engine)"
	@echo "make molecule  the Molecule scenarios on a Docker-in-Docker fleet (engines 20.10 and 28.x)"
	@echo "make matrix    every ansible-core 2.17 to 2.21, and 2.22's release candidate (docs/testing.md)"
	@echo "make bench     benchmarks against the engine's own tools (benchmarks/README.md)"
	@echo "make docs      the documentation site (build/docs/html)"

deps: system-deps venv

system-deps:
	@devtools/debian-packages.sh $(DEBIAN_PACKAGES)
	@devtools/promtool.sh >/dev/null

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "no Python 3.13 found (PATH or pyenv): set PYTHON=/path/to/python3.12-or-newer"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The fast tier: what a developer runs before each commit (no engine, no other core).
check: venv unit sanity lint

# Everything; each stage's time goes to build/stages.log.
test: deps check integration engine importer docs ee matrix molecule

unit: venv
	$(STAGE) unit $(PYTEST) -q tests/unit

# ansible-test's integration targets (tests/integration), the collection built and installed as a user gets it
# (tests/collection), and the report checked in a browser.
integration: deps
	$(STAGE) integration-targets env VENV=$(abspath $(VENV)) devtools/integration.sh
	$(STAGE) integration $(PYTEST) -q tests/collection tests/browser

engine: deps
	$(STAGE) engine $(PYTEST) -q tests/engine

# The development core on its controller Python, plus compile and import on the oldest target it supports.
sanity: deps
	$(STAGE) sanity env VENV=$(abspath $(VENV)) SANITY_TARGETS="3.9 3.11" devtools/sanity.sh

# The other cores of the support matrix and the coming one: sanity and the unit tests on each (the tests that
# no ansible-core can change run once per controller Python), and the module smoke test on every
# controller/target pair (the JSON must be the same everywhere). Each core's virtualenv is made once; the legs
# of each stage run as many at once as there are CPUs (each leg is one process at a time).
matrix: venv collection-link
	$(STAGE) matrix-smoke $(PY) devtools/matrix.py smoke --report build/matrix-smoke.json
	$(STAGE) matrix-unit $(PY) devtools/matrix.py unit $(OLDER_CORES) $(NEXT_CORE)
	$(STAGE) matrix-sanity $(PY) devtools/matrix.py sanity $(OLDER_CORES) $(NEXT_CORE)

# What Galaxy runs on upload: galaxy-importer (its own virtualenv) on the built tarball, no errors or warnings.
importer: venv
	$(STAGE) importer $(PY) devtools/galaxy_import.py

# The documentation site from the collection's own docs: antsibull-docs lint, then Sphinx with warnings as errors.
docs: venv collection-link
	$(STAGE) docs env PATH=$(abspath $(VENV))/bin:$$PATH ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build devtools/docs.sh

# The execution environment definition for AWX/AAP: ansible-builder makes its build context (no image build).
ee: venv
	$(STAGE) ee $(PYTEST) -q tests/ee

collection-link:
	mkdir -p build/ansible_collections/strata && ln -sfn $(CURDIR) build/ansible_collections/strata/overlay2

lint: venv collection-link
	$(STAGE) lint env ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build $(VENV)/bin/ansible-lint playbooks/ roles/ molecule/

# One outer dockerd for the whole run; the host images (debootstrap + docker import) are built once and
# shared by every scenario. The outer engine is stopped by its pid when the scenarios end, pass or fail.
molecule: deps collection-link
	$(STAGE) molecule env PATH=$(abspath $(VENV))/bin:$$PATH ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build \
	  $(PY) devtools/fleet.py run -- molecule test --all

demo: venv
	@devtools/debian-packages.sh $(DEMO_PACKAGES)
	$(PY) devtools/demo.py

bench: deps
	$(PY) benchmarks/facts.py
	$(PY) benchmarks/verify.py
	$(PY) benchmarks/prune.py
	$(PY) benchmarks/containerd.py
	$(PY) benchmarks/cis.py
	$(PY) benchmarks/run
	$(PY) benchmarks/where_time_goes.py

clean:
	rm -rf build tests/output .pytest_cache
