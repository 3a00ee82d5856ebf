# berth: build, fixtures, tests, demo and benches. `sudo make demo`, `sudo make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := build

SWIFT        ?= swift
FIXTURES     := $(abspath fixtures/cache)
PROBE        := $(FIXTURES)/probe
IMAGES       := $(FIXTURES)/images
BERTH_IMAGE  ?= $(abspath .build-release/release/berth-image)
RUNTIME      := $(abspath .build-static/release/berth-runtime)
SHIM         := $(abspath .build-static/release/berth-shim)
STATIC_FLAGS := -c release --static-swift-stdlib -Xswiftc -static-executable --scratch-path .build-static

.PHONY: build runtime shim probe fixtures image-fixtures image-tool deps test demo bench bench-pull clean

build: runtime shim probe

runtime:
	$(SWIFT) build $(STATIC_FLAGS) --product berth-runtime

shim:
	$(SWIFT) build $(STATIC_FLAGS) --product berth-shim

probe: $(PROBE)

$(PROBE): tests/probe/probe.c
	@mkdir -p $(FIXTURES)
	gcc -static -O2 -Wall -Wextra -o $@.tmp $< && mv -f $@.tmp $@

fixtures: probe
	scripts/fixtures.sh $(FIXTURES)
	scripts/image-fixtures.sh $(IMAGES)

# OCI image layouts for the Images tests and bench/pull (from the rootfs above), in $(BERTH_FIXTURES)/images
image-fixtures: probe
	scripts/fixtures.sh $(FIXTURES)
	scripts/image-fixtures.sh $(IMAGES)

deps:
	scripts/install-deps.sh

# berth-image, release (dynamically linked: the daemon side may use Foundation, NIO and BoringSSL)
image-tool:
	$(SWIFT) build -c release --product berth-image --scratch-path .build-release

# The whole package's tests (unit tests and the root integration tests against the static runtime).
# berth-image is built into the tests' own scratch dir: the Images tests kill a pull it runs.
test: deps build fixtures
	$(SWIFT) build --scratch-path .build-test --product berth-image
	BERTH_ROOT_TESTS=1 BERTH_RUNTIME=$(RUNTIME) BERTH_SHIM=$(SHIM) BERTH_PROBE=$(PROBE) BERTH_FIXTURES=$(FIXTURES) \
		BERTH_IMAGE=$(abspath .build-test/debug/berth-image) $(SWIFT) test --scratch-path .build-test

# The runtime on its own, then the image path: a local registry, berth-image pull, a snapshot as the rootfs.
demo: deps build fixtures
	rm -rf fixtures/out/demo
	BERTH_FIXTURES=$(FIXTURES) scripts/mkbundle.sh fixtures/out/demo echo hello from berth
	cd fixtures/out/demo && $(RUNTIME) run demo-$$$$
	$(SWIFT) build --scratch-path .build-test --product berth-image
	BERTH_FIXTURES=$(FIXTURES) scripts/demo-image.sh $(abspath .build-test/debug/berth-image) $(RUNTIME)

bench: deps build fixtures
	BERTH_RUNTIME=$(RUNTIME) BERTH_FIXTURES=$(FIXTURES) bench/runtime

# Cold pulls from a local registry: berth-image (BERTH_IMAGE, left out if missing) against ctr, skopeo+umoci, podman
bench-pull: deps image-fixtures image-tool
	BERTH_IMAGE=$(BERTH_IMAGE) BERTH_FIXTURES=$(FIXTURES) bench/pull

clean:
	rm -rf .build-static .build-test .build-release fixtures/cache fixtures/out
