# Makefile - the README's command list. `make` (or `make help`) lists every target.
#
# Set-up is two commands on a machine with Docker:  make up  (the stack)  and  make test  (the tests).
# Everything they need (Compose v2, the base image, secrets, a Python venv for the tests) is
# installed or made by the targets below, the first time it is missing.

.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -euo pipefail -c

COMPOSE := docker compose
VENV    := .venv
PY      := $(VENV)/bin/python
# Tests run a separate copy of the stack under this project name and these ports, so they never
# touch a stack started by `make up`.
TEST_ENV := COMPOSE_PROJECT_NAME=fourtier-test LB_HTTP_PORT=18080 LB_STATS_PORT=18404

.PHONY: help up down clean ps logs images prerequisites lint check-configs test test-unit test-integration

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

prerequisites: ## Install Compose v2 if missing, make the base image and the secrets if missing
	@scripts/ensure-compose.sh
	@scripts/ensure-base-image.sh
	@scripts/make-secrets.sh

images: prerequisites ## Build every tier's image
	$(COMPOSE) build

up: prerequisites ## Build the images, start the stack, return when every service is healthy
	$(COMPOSE) up --build --detach --wait
	@echo
	@echo "fourtier is up:  http://127.0.0.1:$${LB_HTTP_PORT:-8080}/   (HAProxy stats: http://127.0.0.1:$${LB_STATS_PORT:-8404}/)"

down: ## Stop the stack (the database volume is kept)
	$(COMPOSE) down

clean: ## Stop the stack and remove its volumes, images and secrets
	$(COMPOSE) down --volumes --rmi local
	-$(TEST_ENV) $(COMPOSE) down --volumes
	docker image rm -f fourtier/lb fourtier/web fourtier/app fourtier/db 2>/dev/null || true
	rm -rf .secrets

ps: ## Show the services and their health
	$(COMPOSE) ps

logs: ## Follow every tier's log
	$(COMPOSE) logs --follow --tail 20

# The venv is rebuilt whenever the pinned requirements change.
$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

lint: $(VENV)/.installed ## Python linters: ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

check-configs: images ## Check the server configs: docker compose config, haproxy -c, nginx -t
	$(COMPOSE) config --quiet && echo "docker compose config: OK"
	docker run --rm fourtier/lb:latest haproxy -c -f /etc/haproxy/haproxy.cfg
	@# nginx -t resolves the upstream names; outside the stack they are given a dummy address.
	docker run --rm --add-host app1:127.0.0.1 --add-host app2:127.0.0.1 fourtier/web:latest nginx -t

test-unit: $(VENV)/.installed images ## Unit tests of the app against a real PostgreSQL (testcontainers)
	TESTCONTAINERS_RYUK_DISABLED=true $(PY) -m pytest tests/unit

test-integration: $(VENV)/.installed images ## Integration tests on the whole running stack
	$(TEST_ENV) TESTCONTAINERS_RYUK_DISABLED=true $(PY) -m pytest tests/integration

test: lint check-configs test-unit test-integration ## Everything: linters, config checks, unit and integration tests
