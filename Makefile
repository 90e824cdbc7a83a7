# Two commands from a fresh clone: `make demo` (the light install: numpy, Pillow, onnxruntime) and
# `make test` (everything, PyTorch included). Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
# The package index PyTorch comes from: unset, whatever pip is configured with. On a CPU-only
# machine the plain pin resolves to the CUDA build (several GB); its CPU build is one index away:
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# The shared partial VGG19 file when it sits beside the checkout; otherwise fastnst downloads
# torchvision's full file (or reads $FASTNST_VGG_WEIGHTS if you set it yourself).
SHARED_VGG := $(wildcard ../shared/weights/vgg19-imagenet-conv1_1-conv3_4.pth)
ifneq ($(SHARED_VGG),)
export FASTNST_VGG_WEIGHTS ?= $(abspath $(SHARED_VGG))
endif

.PHONY: demo demo-gatys test test-slow install web clean

$(VENV)/.light: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# The tested build first, so the range in pyproject.toml is already satisfied.
	$(PY) -m pip install "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -e ".[train,dev]"
	touch $@

install: $(VENV)/.installed

# The main job on a shipped model, on the light install: one forward pass, a second or two on a CPU.
demo: $(VENV)/.light
	$(VENV)/bin/fastnst stylize the_scream fastnst/assets/sample_photo.jpg -o out/demo.jpg --overwrite

# The slow reference path on the bundled assets (100 L-BFGS iterations at 256 px: about a minute).
demo-gatys: $(VENV)/.installed
	$(VENV)/bin/fastnst gatys --content fastnst/assets/sample_photo.jpg --style fastnst/assets/sample_style.png \
		--size 256 --iterations 100 -o out/demo_gatys.jpg --overwrite

# The browser app (web/): onnxruntime-web from npm, at the version web/package-lock.json pins.
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

# Serves web/ and exported/ on http://127.0.0.1:8000/ (PORT=... to change). The server is
# standard-library Python, so this needs no .venv.
PORT ?= 8000
web: web/node_modules/.package-lock.json
	$(PYTHON) scripts/web.py --port $(PORT)

test: $(VENV)/.installed
	$(PY) -m pytest

test-slow: $(VENV)/.installed
	$(PY) -m pytest -m slow

clean:
	rm -rf $(VENV) out .pytest_cache
