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
# The tag of every image (docker-compose.yml: fourtier/<tier>:${IMAGE_TAG}). Another tag lets a
# second checkout build and test its own images beside this one's: IMAGE_TAG=mine make test.
export IMAGE_TAG ?= latest
# Tests run a separate copy of the stack under this project name and these ports, so they never
# touch a stack started by `make up`.
TEST_ENV := COMPOSE_PROJECT_NAME=fourtier-test LB_NET_PREFIX=10.213.241 \
            LB_HTTP_PORT=18080 LB_STATS_PORT=18404 LB2_HTTP_PORT=18081 LB2_STATS_PORT=18405 \
            LB_HTTPS_PORT=18443 LB2_HTTPS_PORT=18444 PROMETHEUS_PORT=19090

.PHONY: help up down clean ps logs images prerequisites lint check-configs test test-unit \
        test-integration test-failover test-stack failover-demo rolling-restart vip db-status \
        db-switchover fuzz chromium trace

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

prerequisites: ## Install Compose v2 if missing, make the base image, the secrets and the TLS certificate if missing
	@scripts/ensure-compose.sh
	@scripts/ensure-base-image.sh
	@scripts/make-secrets.sh
	@scripts/make-certs.sh

images: prerequisites ## Build every tier's image
	$(COMPOSE) build

up: prerequisites ## Build the images, start the stack, return when a request through the LB reaches the database
	$(COMPOSE) up --build --detach --wait
	@# Every container is healthy; now the whole path: LB -> web -> app -> the primary.
	@scripts/wait-ready.sh
	@echo
	@echo "fourtier is up:  https://127.0.0.1:$${LB_HTTPS_PORT:-8443}/   (HAProxy stats: http://127.0.0.1:$${LB_STATS_PORT:-8404}/)"
	@echo "                 trust its certificate authority: curl --cacert .secrets/tls/ca.crt ... (README, \"Security\")"
	@echo "watch it live:   http://127.0.0.1:$${PROMETHEUS_PORT:-9090}/consoles/stack.html   (Prometheus: http://127.0.0.1:$${PROMETHEUS_PORT:-9090}/)"

down: ## Stop the stack (the database volume is kept)
	$(COMPOSE) down

clean: ## Stop the stack and remove its volumes, images and secrets
	$(COMPOSE) down --volumes --rmi local
	-$(TEST_ENV) $(COMPOSE) down --volumes
	docker image rm -f fourtier/{lb,web,app,db,monitor}:$(IMAGE_TAG) 2>/dev/null || true
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

check-configs: images ## Check the server configs: docker compose config, haproxy -c, nginx -t, promtool
	$(COMPOSE) config --quiet && echo "docker compose config: OK"
	@# haproxy.cfg reads the LB nodes' addresses from the environment, as docker-compose.yml sets it,
	@# and loads a certificate: a throwaway one, made by the same script in a temporary directory.
	@# Checked twice: as the stack runs it, and with LB_THREADS=1 (loadtests/configs/haproxy-1-thread.yml).
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && scripts/make-certs.sh "$$tmp" 2>/dev/null && \
	for threads in "" 1; do \
	    docker run --rm --hostname lb1 -e LB1_IP=10.0.0.11 -e LB2_IP=10.0.0.12 \
	        $${threads:+-e LB_THREADS=$$threads} --entrypoint haproxy \
	        -v "$$tmp/tls/server.pem:/run/haproxy-tls/site.pem:ro" \
	        fourtier/lb:$(IMAGE_TAG) -c -f /etc/haproxy/haproxy.cfg || exit 1; \
	done
	@# The load tests' bare variant (loadtests/configs/haproxy-bare.yml), the LB tier's ceiling.
	docker run --rm --entrypoint haproxy -v "$$PWD/loadtests/configs/files/haproxy-bare.cfg:/b.cfg:ro" \
	    fourtier/lb:$(IMAGE_TAG) -c -f /b.cfg
	docker run --rm --entrypoint sh -e NODE_NAME=lb1 -e VRRP_PRIORITY=150 -e SELF_IP=10.0.0.11 \
	    -e PEER_IP=10.0.0.12 -e VIP=10.0.0.10 fourtier/lb:$(IMAGE_TAG) -c \
	    'envsubst < /etc/keepalived/keepalived.conf.template > /tmp/k.conf && keepalived --config-test --use-file /tmp/k.conf' \
	    && echo "keepalived --config-test: OK"
	@# nginx -t resolves the upstream names; outside the stack they are given a dummy address.
	docker run --rm --add-host app1:127.0.0.1 --add-host app2:127.0.0.1 fourtier/web:$(IMAGE_TAG) nginx -t
	@# nginx -t does not run the Lua (the module loads it only once shared memory exists, which -t
	@# never makes): start nginx in the image, send one API request that fails on both "app
	@# nodes" (nothing listens there), and /metrics must list the failed attempts.
	@out=$$(docker run --rm --add-host app1:127.0.0.1 --add-host app2:127.0.0.1 --entrypoint sh \
	    fourtier/web:$(IMAGE_TAG) -c 'nginx && curl -s -o /dev/null http://127.0.0.1:8080/api/whoami \
	    && curl -fsS http://127.0.0.1:8081/metrics' 2>&1) || { echo "$$out"; exit 1; }; \
	grep -q '^fourtier_upstream_attempts_total{.*outcome="failed"} 2$$' <<< "$$out" \
	    || { echo "$$out"; echo "nginx Lua: no failed attempt counted" >&2; exit 1; }; \
	echo "nginx Lua: nginx starts, counts attempts and serves /metrics: OK"
	@# Patroni's own --validate-config resolves the etcd hosts (absent here) and, in 4.0.7, does
	@# not know synchronous_mode: quorum; so the image's Python checks the file and the rule that
	@# a primary which cannot renew its leader key demotes itself before the key expires.
	docker run --rm --entrypoint python3 fourtier/db:$(IMAGE_TAG) -c \
	    'import yaml; d = yaml.safe_load(open("/etc/patroni/patroni.yml"))["bootstrap"]["dcs"]; \
	     assert d["loop_wait"] + 2 * d["retry_timeout"] <= d["ttl"], d' \
	    && echo "patroni.yml: loop_wait + 2 x retry_timeout <= ttl: OK"
	@# Prometheus' own checker: the scrape config and the recording rules it loads.
	docker run --rm --entrypoint promtool fourtier/monitor:$(IMAGE_TAG) check config /etc/prometheus/prometheus.yml

test-unit: $(VENV)/.installed images ## Unit tests of the app against a real PostgreSQL (testcontainers)
	$(PY) -m pytest tests/unit

# The stack page's browser test (tests/integration/test_stack_page.py) needs a headless browser:
# Debian's chromium and its WebDriver, from the machine's own apt sources.
chromium: ## Install Chromium and chromium-driver (the stack page's browser test) if missing
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium is missing: run  sudo apt-get install chromium chromium-driver" >&2; exit 1; fi; }

test-integration: $(VENV)/.installed images chromium ## Integration tests on the whole running stack
	$(TEST_ENV) $(PY) -m pytest tests/integration

test-failover: $(VENV)/.installed images ## Failover scenarios under load (kill, drain, reload, restart)
	$(TEST_ENV) $(PY) -m pytest -s tests/failover

# Integration and failover tests, and the labs' proof, share one stack, started once.
# --durations=15: the slowest tests (and their set-ups) are listed at the end, so a CI log shows
# where the suite's time goes (it must stay under 30 minutes).
test-stack: $(VENV)/.installed images chromium
	$(TEST_ENV) $(PY) -m pytest -s --durations=15 tests/integration tests/failover tests/labs

test: lint check-configs test-unit test-stack ## Everything: linters, config checks, unit, integration and failover tests

failover-demo: $(VENV)/.installed ## Run failover scenarios on the `make up` stack, print timelines (SCENARIO=kill_app|graceful|kill_web|drain|reload|vip|database|rolling|db_primary|db_switchover|db_standby|db_etcd|db_tier)
	FOURTIER_REUSE_STACK=1 COMPOSE_PROJECT_NAME=$${COMPOSE_PROJECT_NAME:-fourtier} \
	LB_NET_PREFIX=$${LB_NET_PREFIX:-10.213.240} \
	LB_HTTP_PORT=$${LB_HTTP_PORT:-8080} LB_STATS_PORT=$${LB_STATS_PORT:-8404} \
	LB2_HTTP_PORT=$${LB2_HTTP_PORT:-8081} LB2_STATS_PORT=$${LB2_STATS_PORT:-8405} \
	LB_HTTPS_PORT=$${LB_HTTPS_PORT:-8443} LB2_HTTPS_PORT=$${LB2_HTTPS_PORT:-8444} \
	PROMETHEUS_PORT=$${PROMETHEUS_PORT:-9090} \
	$(PY) -m pytest -s -q -p no:warnings tests/failover -k "$(SCENARIO)"
	@echo
	@echo "watch it live: http://127.0.0.1:$${PROMETHEUS_PORT:-9090}/consoles/stack.html"

fuzz: $(VENV)/.installed ## Fuzz the API of the `make up` stack from its OpenAPI document (FUZZ_MAX_TIME=300, FUZZ_EXAMPLES=100, FUZZ_SEED= to replay a run)
	@# The same test as in `make test` (tests/integration/test_fuzz.py), with a larger budget: a
	@# new seed each run (printed, to replay it), more cases per operation, and a time budget that
	@# the fuzzing and stateful phases fill.
	FOURTIER_REUSE_STACK=1 COMPOSE_PROJECT_NAME=$${COMPOSE_PROJECT_NAME:-fourtier} \
	LB_NET_PREFIX=$${LB_NET_PREFIX:-10.213.240} \
	LB_HTTP_PORT=$${LB_HTTP_PORT:-8080} LB_STATS_PORT=$${LB_STATS_PORT:-8404} \
	LB2_HTTP_PORT=$${LB2_HTTP_PORT:-8081} LB2_STATS_PORT=$${LB2_STATS_PORT:-8405} \
	FUZZ_SEED=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')} \
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} FUZZ_MAX_TIME=$${FUZZ_MAX_TIME:-300} \
	FUZZ_TIMEOUT=$$(( $${FUZZ_MAX_TIME:-300} + 300 )) \
	$(PY) -m pytest -s -q -p no:warnings tests/integration/test_fuzz.py

rolling-restart: ## Restart every replicated tier one node at a time, with no client-visible error
	scripts/rolling-restart.sh

# Patroni's command-line tool, run inside the first db node that is up (any node can answer for
# the whole cluster: the state lives in etcd).
PATRONICTL = for db in db1 db2 db3; do \
	  if $(COMPOSE) exec -T $$db true 2>/dev/null; then \
	    $(COMPOSE) exec -T $$db patronictl -c /run/patroni $(1); exit $$?; fi; \
	done; echo "no db node is running" >&2; exit 1

db-status: ## Show the database cluster: which node is the primary, the standbys' state and lag
	@$(call PATRONICTL,list)

db-switchover: ## Planned switchover: the primary hands over to a healthy standby (CANDIDATE=db2 to choose)
	@$(call PATRONICTL,switchover --force $(if $(CANDIDATE),--candidate $(CANDIDATE)))
	@$(call PATRONICTL,list)

trace: ## One request's journey through every tier's log, with each tier's timing (ID=<X-Request-ID>)
	@scripts/trace.py "$(ID)"

vip: ## Show which load balancer holds the virtual IP
	@for lb in lb1 lb2; do \
	  $(COMPOSE) exec -T $$lb sh -c 'ip -4 -o addr show dev eth0 | grep -q " $$VIP/" && echo "$$(hostname) holds the VIP $$VIP" || echo "$$(hostname) is backup"'; \
	done

# --- Labs (labs/; README "Labs") ---------------------------------------------------------------
# On the stack of `make up` (or the one COMPOSE_PROJECT_NAME, LB_HTTP_PORT, ... name). LAB=NN.
.PHONY: labs lab lab-check lab-reset lab-up test-labs

labs: $(VENV)/.installed ## List the labs and where you are in each
	@$(PY) -m labs list

lab: $(VENV)/.installed ## Start lab LAB=NN: put the stack in its starting state and print the task
	@$(PY) -m labs start $(LAB)

lab-check: $(VENV)/.installed ## Check lab LAB=NN on the running stack: each point, passed or what is still to do
	@$(PY) -m labs check $(LAB)

lab-reset: $(VENV)/.installed ## Undo the current lab's starting state (your own changes are kept)
	@$(PY) -m labs reset

lab-up: $(VENV)/.installed ## Rebuild and restart SERVICES="app1 app2" from your files, with the current lab's overlays
	@$(PY) -m labs up $(SERVICES)

test-labs: $(VENV)/.installed images ## Every lab both ways: its checker fails at the start, passes with its solution
	$(TEST_ENV) $(PY) -m pytest -s tests/labs

# --- Load tests (loadtests/; README "Load testing") ------------------------------------------
# A separate copy of the stack (project fourtier-bench, LB on 28080/28404, web1/app1/db on
# 127.0.0.1:29080/29000/29432, subnet 10.213.242.0/24), brought up and taken down by the harness.
# WARMUP=5: seconds of wrk/pgbench load before each measured run, discarded. QUIET_WAIT=30: how long
# each run may wait for a quiet machine (0: never wait, only record the machine's idle CPU).
CONFIG   ?= default
CONFIGS  ?= tutorial-default default
REPEATS  ?= 3
SCENARIOS ?=
LOAD     := $(PY) -m loadtests.harness

.PHONY: loadtest compare loadtest-list test-loadtest wrk

wrk: ## Install wrk (the C load tool that calibrates Locust) if it is missing
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk is missing: run  sudo apt-get install wrk" >&2; exit 1; fi; }

loadtest: $(VENV)/.installed images wrk ## Every tier's throughput with Locust, calibrated by wrk/pgbench (CONFIG=, DURATION=20)
	$(LOAD) loadtest --config $(CONFIG) --duration $(or $(DURATION),20) --scenarios "$(SCENARIOS)" \
	    --warmup $(or $(WARMUP),5) --quiet-wait $(or $(QUIET_WAIT),30)

compare: $(VENV)/.installed images wrk ## Configurations side by side: CONFIGS="tutorial-default default" REPEATS=3 DURATION=10 TOOL=locust|c (a+b: overlays combined)
	$(LOAD) compare --configs "$(CONFIGS)" --repeats $(REPEATS) --duration $(or $(DURATION),10) --scenarios "$(SCENARIOS)" \
	    --quiet-wait $(or $(QUIET_WAIT),30) --tool $(or $(TOOL),locust) --warmup $(or $(WARMUP),5)

loadtest-list: $(VENV)/.installed ## List the load-test scenarios and configurations
	$(LOAD) list

test-loadtest: $(VENV)/.installed images wrk ## Smoke run of the load-test harness (5 s per scenario)
	$(PY) -m pytest -s --durations=5 tests/loadtest

# `make test` runs the harness's smoke run too, after the other tests.
test: test-loadtest
