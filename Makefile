# strata.overlay2: everything installs itself; run as root on Debian (the tests start their own dockerd).
SHELL := /bin/bash
# Development runs on the newest ansible-core (2.21), which needs Python 3.12 or newer on the controller.
PYTHON ?= $(shell python3 devtools/pythons.py 3.13)
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest -p no:cacheprovider
DEBIAN_PACKAGES := docker.io busybox-static shellcheck debootstrap chromium chromium-driver
DEMO_PACKAGES := docker.io busybox-static
OLDER_CORES := 2.17 2.18 2.19 2.20

.PHONY: help deps system-deps venv test unit engine sanity lint molecule collection-link demo bench clean \
	matrix importer docs ee

help:
	@echo "make demo    sandbox dockerd + sample images, run the facts playbook, print the map"
	@echo "make test    unit tests, real-engine tests, sanity, lint and the Molecule fleet (what CI runs)"
	@echo "make molecule  the Molecule scenarios on a Docker-in-Docker fleet (engines 20.10 and 28.x)"
	@echo "make bench   benchmarks against the engine's own tools (writes benchmarks/results/)"
	@echo "make matrix  sanity, unit tests and the module smoke test on every ansible-core 2.17 to 2.21"
	@echo "make docs    the documentation site (docs/site/build/html)"

deps: system-deps venv

system-deps:
	@devtools/debian-packages.sh $(DEBIAN_PACKAGES)

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "no Python 3.13 found (PATH or pyenv): set PYTHON=/path/to/python3.12-or-newer"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

test: deps unit engine sanity lint importer docs ee matrix molecule

unit: deps
	$(PYTEST) -q tests/unit tests/integration tests/browser

engine: deps
	$(PYTEST) -q tests/engine

# The development core on its controller Python, plus compile and import on the oldest target it supports.
sanity: deps
	VENV=$(abspath $(VENV)) SANITY_TARGETS="3.9 3.11" devtools/sanity.sh

# The older cores of the support matrix: sanity and unit tests on each, and the module smoke test on every
# controller/target pair (the JSON must be the same everywhere). Each core's virtualenv is made once.
matrix: venv collection-link
	$(PY) devtools/matrix.py smoke --report build/matrix-smoke.json
	$(PY) devtools/matrix.py unit $(OLDER_CORES)
	$(PY) devtools/matrix.py sanity $(OLDER_CORES)

# What Galaxy runs on upload: galaxy-importer (its own virtualenv) on the built tarball, no errors or warnings.
importer: venv
	$(PY) devtools/galaxy_import.py

# The documentation site from the collection's own docs: antsibull-docs lint, then Sphinx with warnings as errors.
docs: venv collection-link
	PATH=$(abspath $(VENV))/bin:$$PATH ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build devtools/docs.sh

# The execution environment definition for AWX/AAP: ansible-builder makes its build context (no image build).
ee: venv
	$(PY) -m pytest -p no:cacheprovider -q tests/ee

collection-link:
	mkdir -p build/ansible_collections/strata && ln -sfn $(CURDIR) build/ansible_collections/strata/overlay2

lint: venv collection-link
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build $(VENV)/bin/ansible-lint playbooks/ roles/ molecule/

# One outer dockerd for the whole run; the host images (debootstrap + docker import) are built once and
# shared by every scenario. The outer engine is stopped by its pid when the scenarios end, pass or fail.
molecule: deps collection-link
	PATH=$(abspath $(VENV))/bin:$$PATH ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/build \
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
	rm -rf build tests/output .pytest_cache docs/site
