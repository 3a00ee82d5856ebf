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

.PHONY: build runtime shim probe fixtures image-fixtures image-tool deps test demo demo-runtime bin busybox-tar bench bench-pull bench-engine clean

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
	$(SWIFT) build --scratch-path .build-test
	BERTH_ROOT_TESTS=1 BERTH_RUNTIME=$(RUNTIME) BERTH_SHIM=$(SHIM) BERTH_PROBE=$(PROBE) BERTH_FIXTURES=$(FIXTURES) \
		BERTH_IMAGE=$(abspath .build-test/debug/berth-image) BERTH_BERTHD=$(abspath .build-test/debug/berthd) \
		BERTH_CLI=$(abspath .build-test/debug/berth) $(SWIFT) test --scratch-path .build-test

# The four binaries side by side in ./bin (berth starts berthd from its own dir, berthd finds the shim and
# the runtime next to itself): static runtime and shim, release berthd and berth.
bin: runtime shim
	$(SWIFT) build -c release --product berthd --scratch-path .build-release
	$(SWIFT) build -c release --product berth --scratch-path .build-release
	mkdir -p bin
	cp -f $(RUNTIME) $(SHIM) .build-release/release/berthd .build-release/release/berth bin/

# The offline busybox image (Debian's busybox-static, scripts/image-fixtures.sh) as a docker archive.
busybox-tar: image-fixtures
	mkdir -p fixtures/out
	rm -f fixtures/out/busybox.tar
	skopeo copy -q oci:$(IMAGES)/busybox:latest docker-archive:fixtures/out/busybox.tar:busybox:latest

# The engine: berth starts berthd (default /var/lib/berth, /run/berth) and loads the offline busybox image;
# the README's first command then runs `./bin/berth run --rm busybox echo hello`.
demo: deps bin busybox-tar
	./bin/berth load -i fixtures/out/busybox.tar

# The runtime on its own, then the image path: a local registry, berth-image pull, a snapshot as the rootfs.
demo-runtime: deps build fixtures
	rm -rf fixtures/out/demo
	BERTH_FIXTURES=$(FIXTURES) scripts/mkbundle.sh fixtures/out/demo echo hello from berth
	cd fixtures/out/demo && $(RUNTIME) run demo-$$$$
	$(SWIFT) build --scratch-path .build-test --product berth-image
	BERTH_FIXTURES=$(FIXTURES) scripts/demo-image.sh $(abspath .build-test/debug/berth-image) $(RUNTIME)

bench: deps build fixtures
	BERTH_RUNTIME=$(RUNTIME) BERTH_FIXTURES=$(FIXTURES) bench/runtime

# The engine against containerd and podman (bench/engine): run --rm latency, idle RSS, shim memory, N alive
bench-engine: deps bin busybox-tar
	bench/engine

# Cold pulls from a local registry: berth-image (BERTH_IMAGE, left out if missing) against ctr, skopeo+umoci, podman
bench-pull: deps image-fixtures image-tool
	BERTH_IMAGE=$(BERTH_IMAGE) BERTH_FIXTURES=$(FIXTURES) bench/pull

clean:
	rm -rf .build-static .build-test .build-release fixtures/cache fixtures/out bin
