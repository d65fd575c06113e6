# The README's two commands: `make demo` and `make test`. Each sets up what it needs on a fresh
# machine: the Debian packages for headless OpenGL (when running as root) and a .venv with the
# project installed (`pip install -e '.[train,cpu,test]'`). `make test` also installs what the
# web page's test needs: onnxruntime-web (`npm ci` in web/) and Debian's chromium with
# chromium-driver (as root; otherwise it prints the apt-get line and that test is skipped), and a
# C++ compiler for the tests of `train --compile` (skipped without one).

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
APT_PACKAGES := libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri
BROWSER_PACKAGES := chromium chromium-driver
COMPILER_PACKAGES := g++
DEMO_ARGS ?=

.PHONY: demo test setup system-deps browser-deps compiler-deps web node-deps clean

demo: setup
	$(VENV)/bin/posenet-mlvae demo $(DEMO_ARGS)

test: setup web browser-deps compiler-deps
	$(PY) -m pytest

setup: system-deps $(VENV)/.installed

# Reinstall when pyproject.toml changes; the stamp records a finished install.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[train,cpu,test]'
	@touch $@

# $(call apt_ensure,PACKAGES,PURPOSE,ON_MISSING): install the missing Debian packages as root;
# otherwise print the apt-get line and run ON_MISSING (`exit 1` to stop, `true` to go on).
define apt_ensure
	@if command -v dpkg >/dev/null 2>&1; then \
	  missing=""; \
	  for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	      echo "Installing Debian packages for $(2):$$missing"; \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends $$missing; \
	    else \
	      echo "Missing Debian packages for $(2):$$missing"; \
	      echo "Run: sudo apt-get install -y --no-install-recommends$$missing"; $(3); \
	    fi; \
	  fi; \
	fi
endef

system-deps:
	$(call apt_ensure,$(APT_PACKAGES),headless OpenGL,exit 1)

browser-deps:
	$(call apt_ensure,$(BROWSER_PACKAGES),the web page test (tests/test_web_page.py),true)

compiler-deps:
	$(call apt_ensure,$(COMPILER_PACKAGES),the compiled training step's tests (tests/test_compile.py),true)

# onnxruntime-web for the page (web/package-lock.json pins it); needs Node.js with npm.
web: web/node_modules/.installed

web/node_modules/.installed: web/package.json web/package-lock.json
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory node-deps
	@if command -v npm >/dev/null 2>&1; then \
	  cd web && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else \
	  echo "npm not found: install Node.js with npm, then run make web (the web page test is skipped)"; \
	fi

node-deps:
	$(call apt_ensure,nodejs npm,the web page (npm ci),true)

clean:
	rm -rf runs/demo .pytest_cache
