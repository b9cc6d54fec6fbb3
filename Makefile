# codebox — the two commands: `make run` (embedded default on http://127.0.0.1:8080)
# and `make test` (sets up what it needs, then the whole suite).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
RUNNER_IMAGE ?= codebox-runner:latest
export CODEBOX_RUNNER_IMAGE := $(RUNNER_IMAGE)

.PHONY: run test build lint fmt docker gvisor crun runner-image services tools up up-aws down lambda-init-times lambda-watch-aws bench bench-compose gateway lambda-build lambda-watch images deploy clean

COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

## The embedded default: gateway + in-process queue + in-memory stores + worker.
run: docker runner-image
	bash scripts/ensure-crun.sh || echo "make run: crun is not set up (above); the sandboxes run on runc"
	$(CARGO) run --release -p codebox-embedded --bin codebox-server

## Everything: formatting, lints, unit, handler, conformance (real PostgreSQL, Redis,
## RabbitMQ), sandbox and end-to-end tests.
# Each suite its own sandbox state directory: two suites on one host (or a suite beside
# `make run`) never reap each other's sandboxes.
SUITE_RUN_DIR := $(or $(CODEBOX_RUN_DIR),/run/codebox/suite-$(shell date +%s%N))
test: export CODEBOX_RUN_DIR := $(SUITE_RUN_DIR)
test: docker gvisor crun runner-image services tools
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) build --workspace --bins --locked
	$(CARGO) test --workspace --locked --no-fail-fast
	bash scripts/schemathesis.sh
	bash scripts/check-leftovers.sh

build:
	$(CARGO) build --workspace --release --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## Installs and starts the Docker engine when it is missing (as root), and what the runc
## engine needs besides (runc, Docker's default seccomp profile).
docker:
	bash scripts/ensure-docker.sh
	bash scripts/ensure-runc.sh

## Registers gVisor's runsc (Debian's package) with the engine; the suite runs on it too.
gvisor: docker
	bash scripts/ensure-gvisor.sh

## crun (Debian's package) for the OCI engine, and cgroups it accepts: the default runtime where it runs.
crun:
	bash scripts/ensure-crun.sh

## Builds the runner image: the Debian base (mmdebstrap → docker import) once, the sandbox agent on top when it changed.
runner-image: docker
	bash worker/runner/build-image.sh

## Project-owned PostgreSQL, Redis and RabbitMQ on loopback (installed when missing).
services:
	bash scripts/services.sh up

## Python tools the tests use (cfn-lint, schemathesis).
tools:
	bash scripts/ensure-tools.sh

LAMBDA_FUNCTIONS := register login logout create-task get-status get-result get-task list-tasks cancel-task commit languages health judge0 sweep webhook-key webhooks
# The deployment's one architecture: `make lambda-build` builds the functions for it and
# `make deploy` hands it to the stack (parameter Architecture: the functions, the worker
# hosts' AMI and instance type), so the binaries, functions and hosts agree; the worker
# and runner images must be built for it too (hosts refuse an image of another). arm64
# (Graviton: cheaper per GB-second and per vCPU-hour) unless told; either builds on any
# host (zig links; rustup adds the Rust target the first time).
# LAMBDA_ARCH is taken for ARCH as well.
ARCH ?= $(or $(LAMBDA_ARCH),arm64)
LAMBDA_TARGET = $(if $(filter arm64,$(ARCH)),--arm64,--x86-64)
check_arch = $(if $(filter arm64 x86_64,$(ARCH)),,$(error ARCH must be arm64 or x86_64, not '$(ARCH)'))

## One Lambda binary per handler into target/lambda/<function>/bootstrap (cargo lambda),
## with the AWS backends only (no PostgreSQL, Redis or RabbitMQ client linked in), built
## with the size profile (Cargo.toml's profile.lambda).
## Needs only Rust and Python 3: cargo-lambda and zig come into a virtualenv of their own
## (scripts/ensure-tools.sh lambda), and zig links for the target whatever the host.
lambda-build:
	$(check_arch)
	PATH="$$(bash scripts/ensure-tools.sh lambda):$$PATH" cargo lambda build --profile lambda \
	  $(LAMBDA_TARGET) -p codebox-functions \
	  --no-default-features --features lambda $(addprefix --bin ,$(LAMBDA_FUNCTIONS))

## Cold-start init time and size of every function built by lambda-build, on BACKEND=aws
## (moto from scripts/services.sh, provisioned by the LocalStack init hook).
lambda-init-times: services
	python3 scripts/lambda-init-times.py --aws-endpoint http://127.0.0.1:55500 $(LAMBDA_FUNCTIONS)

## Every function under `cargo lambda watch` on :9000, on the compose profile's services.
lambda-watch: services
	bash scripts/make-lambda-env.sh
	PATH="$$(bash scripts/ensure-tools.sh lambda):$$PATH" \
	  cargo lambda watch -p codebox-functions --env-file target/lambda.env

## The same on the AWS backends: moto provisioned by the LocalStack init hook.
lambda-watch-aws: services
	mkdir -p target && bash scripts/moto-env.sh > target/lambda-aws.env
	PATH="$$(bash scripts/ensure-tools.sh lambda):$$PATH" \
	  cargo lambda watch -p codebox-functions --env-file target/lambda-aws.env

## The worker and runner images for ARCH, pushed to REGISTRY (the account's ECR,
## <account>.dkr.ecr.<region>.amazonaws.com) as codebox-worker:IMAGE_TAG and
## codebox-runner:IMAGE_TAG: built for linux/ARCH on any machine with Docker's BuildKit
## (Rust cross-compiled on the build machine, scripts/cross-build.sh), each pushed image
## checked to be of ARCH.
IMAGE_TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo latest)
images:
	$(check_arch)
	bash scripts/build-images.sh $(ARCH) "$(REGISTRY)" $(IMAGE_TAG)

## Deploys infra/template.yaml with AWS SAM (needs the sam CLI and AWS credentials); with
## REGISTRY, the images `make images` pushed there for the same ARCH and IMAGE_TAG.
deploy: lambda-build
	PATH="$$(bash scripts/ensure-tools.sh sam):$$PATH" sam deploy --template-file infra/template.yaml --resolve-s3 --capabilities CAPABILITY_IAM --guided \
	  --parameter-overrides Architecture=$(ARCH) \
	  $(if $(REGISTRY),WorkerImageUri=$(REGISTRY)/codebox-worker:$(IMAGE_TAG) RunnerImageUri=$(REGISTRY)/codebox-runner:$(IMAGE_TAG))

## The local gateway alone (stores and queue from the environment).
gateway:
	$(CARGO) run --release -p codebox-functions --bin gateway

## The compose profile: gateway, workers, PostgreSQL, Redis, RabbitMQ, Prometheus, Grafana.
# The images' Rust stages name the build machine's platform (`FROM --platform=$BUILDPLATFORM`),
# which BuildKit sets: compose builds through the docker CLI with it.
up up-aws: export DOCKER_BUILDKIT := 1
up up-aws: export COMPOSE_DOCKER_CLI_BUILD := 1
up: runner-image
	bash scripts/make-env.sh
	$(COMPOSE) --profile local up -d --build

## The AWS profile under compose: gateway and workers on LocalStack (DynamoDB, SQS, S3).
up-aws: runner-image
	bash scripts/make-env.sh
	$(COMPOSE) --profile aws up -d --build

down:
	$(COMPOSE) --profile local --profile aws down

## Load generator against a freshly started embedded stack; figures in target/bench/latest.json.
bench: docker runner-image
	bash scripts/ensure-crun.sh || echo "make bench: crun is not set up (above); the sandboxes run on runc"
	$(CARGO) run --release -p codebox-tests --bin bench -- $(BENCH_ARGS)

## The same load against the compose profile as host processes (WORKERS=2 workers).
bench-compose: docker runner-image
	bash scripts/bench-compose.sh $(BENCH_ARGS)

clean:
	$(CARGO) clean
