# The README's two commands: `make demo` and `make test`. Each sets up what it needs on a fresh
# machine: the Debian packages for headless OpenGL (when running as root) and a .venv with the
# project installed (`pip install -e '.[cpu,test]'`).

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
APT_PACKAGES := libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri
DEMO_ARGS ?=

.PHONY: demo test setup system-deps clean

demo: setup
	$(VENV)/bin/posenet-mlvae demo $(DEMO_ARGS)

test: setup
	$(PY) -m pytest

setup: system-deps $(VENV)/.installed

# Reinstall when pyproject.toml changes; the stamp records a finished install.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[cpu,test]'
	@touch $@

system-deps:
	@if command -v dpkg >/dev/null 2>&1; then \
	  missing=""; \
	  for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	      echo "Installing Debian packages for headless OpenGL:$$missing"; \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	    else \
	      echo "Missing Debian packages for headless OpenGL:$$missing"; \
	      echo "Run: sudo apt-get install -y$$missing"; exit 1; \
	    fi; \
	  fi; \
	fi

clean:
	rm -rf runs/demo .pytest_cache
