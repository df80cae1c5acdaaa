# bake's developer commands. Every recipe installs what it needs on a fresh
# Debian 12 machine (as root) before it runs.

set shell := ["bash", "-euo", "pipefail", "-c"]

export PATH := "/usr/local/go/bin:" + env_var('PATH')

bin := "bin/bake"
fixtures := env_var_or_default("BAKE_FIXTURES", env_var('HOME') + "/.cache/bake/fixtures")

# List the recipes.
default:
    @just --list

# Install the host packages bake and its tests use.
deps:
    scripts/deps.sh

# Build the bake binary into bin/.
build:
    go build -o {{bin}} ./cmd/bake

# Build the fixtures the integration tests boot (cached outside the repo).
fixtures: deps
    scripts/fixtures.sh all

# Bake the shipped Debian recipe from the locally built Debian 12 base disk.
demo: deps build
    scripts/fixtures.sh debian-disk
    {{bin}} build recipes/debian-12-cloud.toml --force \
        --var base_image="$(scripts/fixtures.sh path debian-disk)" \
        --var base_checksum="sha256:$(sha256sum "$(scripts/fixtures.sh path debian-disk)" | cut -d" " -f1)"
    qemu-img check output/debian-12-cloud/debian-12-cloud.qcow2
    cat output/debian-12-cloud/SHA256SUMS

# Run the test suite: unit and fake-QEMU tests, and real TCG bakes of the fixtures.
test: deps build
    scripts/fixtures.sh all
    go vet ./...
    go test -count=1 -timeout 40m ./...
    @echo "fuzzing the recipe decoder and the boot-command parser for a fixed number of inputs"
    # Counts rather than durations: with a duration, Go's fuzzer fails with
    # "context deadline exceeded" when a slow input is still running as the
    # time runs out, although nothing failed.
    go test -run '^$' -fuzz '^FuzzLoad$' -fuzztime 30000x ./recipes/
    go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 150000x ./boot/

# Run every end-to-end case, including the slow ones.
e2e: deps build fixtures
    BAKE_E2E_FULL=1 go test -count=1 -timeout 60m -run 'E2E' -v ./e2e/

# Run the benchmarks and print ratios against the reference runs.
bench: deps build
    scripts/fixtures.sh debian-disk
    scripts/bench.sh

# Static checks.
lint:
    go vet ./...
    test -z "$(gofmt -l .)"
