# The two set-up-and-go commands of the README:
#   make demo   builds in release and runs the demo: synthetic cells, a trained CNN, counterfactuals,
#               every attribution method, every scorer (QuAC, insertion, deletion, infidelity,
#               max-sensitivity, faithfulness, ROAD, the sanity check), the HTML report
#   make test   runs the whole test suite (Swift tests, Python round trips, the C SDK's build, the
#               TorchScript plugin when libtorch is installed)
# Both install what they need on a fresh Debian machine (scripts/setup.sh).
#   make fuzz   builds the libFuzzer harnesses (fuzz/) with AddressSanitizer and runs each reader of
#               untrusted bytes for FUZZ_RUNS executions (fuzz/README.md)

SWIFT ?= swift
# OpenBLAS falls back to slow generic kernels on CPUs it does not know; pick them from the CPU flags
# (quac-host does the same for itself; the test process links OpenBLAS directly).
export OPENBLAS_CORETYPE ?= $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | grep -q avx512bw && echo SkylakeX || (grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | grep -q avx2 && echo Haswell))
RELEASE_BIN = .build/release/quac-host

.PHONY: demo toy test setup setup-test build release sdk-check install install-files clean fuzz fuzz-build

demo: setup release
	$(RELEASE_BIN) data synth --output runs/synth-data --size 32 --count 1024 --format safetensors
	QUAC_PLUGIN_PATH=$(CURDIR)/plugins $(RELEASE_BIN) run examples/synth/pipeline.json
	$(RELEASE_BIN) report runs/synth
	@echo "demo report: $(CURDIR)/runs/synth/report.html (results: runs/synth/)"

toy: setup release
	$(RELEASE_BIN) data toy --output runs/toy-data
	QUAC_PLUGIN_PATH=$(CURDIR)/plugins $(RELEASE_BIN) run examples/toy/pipeline.json
	$(RELEASE_BIN) report runs/toy
	@echo "toy report: $(CURDIR)/runs/toy/report.html"

test: setup-test build sdk-check
	QUAC_TEST_PYTHON=$(CURDIR)/.venv-test/bin/python QUAC_TEST_TORCH_VENV=$(CURDIR)/.venv-torch $(SWIFT) test

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

# The C++ TorchScript classifier plugin (libtorch) goes next to quac-host, like the Swift bundles;
# without libtorch it is skipped with a message and everything else still builds.
TORCHSCRIPT_PLUGIN = $(MAKE) -s -C Sources/Plugins/TorchScript OUT=$(CURDIR)/.build/$(1)

build:
	$(SWIFT) build
	$(call TORCHSCRIPT_PLUGIN,debug)

release:
	$(SWIFT) build -c release
	$(call TORCHSCRIPT_PLUGIN,release)

sdk-check:
	$(MAKE) -s -C SDK check BUILD_DIR=$(CURDIR)/.build-sdk-check

# make install PREFIX=/opt/quac: quac-host in PREFIX/bin, the built-in plugin libraries in
# PREFIX/lib/quac-host, their manifests and the manifest schemas in PREFIX/share/quac-host, and the SDK
# (headers in PREFIX/include/quac, libquacsdk.a, quac-sdk.pc). DESTDIR is honoured. install-files
# copies an existing build (PRODUCTS, default the release build) without building it.
PREFIX ?= /usr/local
PRODUCTS ?= .build/release
install: setup release install-files

install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/quac-host \
	    $(DESTDIR)$(PREFIX)/share/quac-host/plugins $(DESTDIR)$(PREFIX)/share/quac-host/schemas
	install -m 755 $(PRODUCTS)/quac-host $(DESTDIR)$(PREFIX)/bin/quac-host
	install -m 755 $(PRODUCTS)/libQuac*.so $(DESTDIR)$(PREFIX)/lib/quac-host/
	install -m 644 Sources/Host/Resources/plugins/*.json Sources/Host/Resources/plugins/*.pt \
	    $(DESTDIR)$(PREFIX)/share/quac-host/plugins/
	install -m 644 Sources/Host/Resources/schemas/*.json $(DESTDIR)$(PREFIX)/share/quac-host/schemas/
	$(MAKE) -s -C SDK install PREFIX=$(PREFIX) BUILD_DIR=$(CURDIR)/.build-sdk-install

clean:
	rm -rf .build .build-sdk-check .build-sdk-install runs

# Coverage-guided fuzzing of the readers of untrusted bytes (fuzz/README.md). FUZZ_RUNS executions per
# target, one target after another; each prints its executions, time, final coverage and result.
# FUZZ_CONFIG=release (the default) builds the harnesses optimized: 4-6x the executions per second of
# FUZZ_CONFIG=debug, with the same overflow, bounds and sanitizer checks.
FUZZ_RUNS ?= 1000000
FUZZ_TARGETS ?= safetensors npy json manifest png tiff torch onnx
FUZZ_CONFIG ?= release
FUZZ_SCRATCH ?= $(CURDIR)/.build-fuzz$(if $(filter release,$(FUZZ_CONFIG)),-release)

fuzz-build:
	nice -n 19 $(SWIFT) build --package-path fuzz --scratch-path $(FUZZ_SCRATCH) -c $(FUZZ_CONFIG) \
	    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library

fuzz: fuzz-build
	@status=0; for t in $(FUZZ_TARGETS); do \
	    FUZZ_BIN_DIR=$(FUZZ_SCRATCH)/$(FUZZ_CONFIG) fuzz/run.sh $$t $(FUZZ_RUNS) || status=1; \
	done; exit $$status
