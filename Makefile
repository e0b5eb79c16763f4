# Two commands for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv on their own, install the Debian packages the project needs, then run.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEBS    := openfoam
export FOAM_ETC := /usr/share/openfoam/etc
export WM_PROJECT_DIR := /usr/share/openfoam

.PHONY: demo test test-slow deps venv lint clean train-coronary

# Debian packages: OpenFOAM (v1912) for the coronary CFD. Off-screen rendering uses the vtk wheel's
# own OSMesa/EGL fallback, so no X server is needed.
deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,triton,fem,sphere,bench]'
	touch $(STAMP)

venv: $(STAMP)

demo: deps $(STAMP)
	$(BIN)/meshops demo

test: deps $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: deps $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check meshops tests benchmarks examples datasets

train-coronary: deps $(STAMP)
	$(BIN)/meshops train datasets/coronary_synthetic/train.yaml

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
