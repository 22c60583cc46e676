# 证书助手 (certhelper) — set-up, demo and tests on Debian/Ubuntu.
#   make demo   install what is missing, build the demo token, list its certificates,
#               run the helper with the demo hall (:9010) and the demo CA (:9020)
#   make demo-reset  rebuild the demo token (undoes renewals: new keys and certificates)
#   make test   install what is missing (plus test tools), lint, run the tests
# Works as root or as a user with sudo.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the helper needs at run time, and those the tests add.
APT_RUNTIME := softhsm2 opensc openssl libnss3-tools python3-tk fonts-noto-cjk \
               xdg-utils desktop-file-utils \
               gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1 \
               libgirepository1.0-dev libcairo2-dev pkg-config gcc python3-dev libssl-dev
# real windows under Xvfb, and Debian's Chromium and Firefox ESR for the browser tests
# (never a downloaded one)
APT_TEST    := xvfb xdotool x11-utils imagemagick chromium firefox-esr trayer dbus valgrind libp11-kit-dev

.PHONY: demo demo-reset test deps venv venv-test demo-token lint bench clean help softskf softp11sm2

help:
	@echo "make demo   — set up and run certhelper on the built-in demo token"
	@echo "make demo-reset — rebuild the demo token (after a renewal demo)"
	@echo "make test   — set up and run the test suite"
	@echo "make bench  — run the benchmarks (tests/bench)"

# Install the Debian packages that are missing (apt-get update only when needed).
deps:
	@missing=""; \
	for p in $(APT_RUNTIME) $(if $(filter test venv-test,$(MAKECMDGOALS)),$(APT_TEST)); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then missing="$$missing python3-venv"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "certhelper needs Python >= 3.11"'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The tray's GTK backend needs PyGObject, built against Debian 12's libraries
# (PyGObject < 3.51: later releases need girepository-2.0). Without it the
# tray falls back to pystray's Xorg backend, which has no menu.
venv: deps $(PY)
	$(PY) -m pip install -q -e .
	$(PY) -m pip install -q -e '.[tray]' || echo "no PyGObject: the tray falls back to Xorg (no menu)"

# the soft SKF (GM/T 0016) key for the SM2 tests and the demo's SM2 device
softskf: deps
	$(MAKE) -C softhsm-fixtures/softskf

# the test double of a vendor PKCS#11 module with an SM2 mechanism (SoftHSM2 + SM2; tests only)
softp11sm2: deps
	$(MAKE) -C softhsm-fixtures/softp11sm2

venv-test: deps $(PY) softskf softp11sm2
	$(PY) -m pip install -q -e '.[test,tray]'

# The demo token lives in the user's data dir; it is built once and kept.
demo-token: venv softskf
	@dir=$$($(PY) -c 'from helper.config import demo_dir; print(demo_dir())'); \
	$(PY) softhsm-fixtures/build.py "$$dir" --profile demo

# A renewal at the demo CA writes to the demo token; this builds it afresh (new keys,
# the expiring certificate again 5 days from now). Stop `make demo` first.
demo-reset: venv softskf
	@dir=$$($(PY) -c 'from helper.config import demo_dir; print(demo_dir())'); \
	$(PY) softhsm-fixtures/build.py "$$dir" --profile demo --force

demo: demo-token
	$(VENV)/bin/certhelper --demo list
	$(VENV)/bin/certhelper --demo demo

# ruff (style), mypy (types: None misuse is an error), import-linter (the layers of
# docs/architecture.md); any finding fails the build
lint: venv-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: venv-test lint
	$(PY) -m pytest -q

bench: venv-test
	$(PY) tests/bench/bench_driver.py
	$(PY) tests/bench/bench_bridge.py
	$(PY) tests/bench/bench_hops.py
	$(PY) tests/bench/bench_skf.py
	$(PY) tests/bench/bench_extension.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info build dist
