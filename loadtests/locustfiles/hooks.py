"""Hooks shared by every scenario: tags pick the User class, thresholds set the exit code.

- `--tags static` keeps only the User classes that have a task tagged `static`, so one scenario
  config file names one User class (Locust's own tag filter works on tasks, not on classes).
- At the end of a headless run (the `quitting` event), the run fails (exit code 1) if more than
  `--max-fail-ratio` of the requests failed or the 95th percentile exceeded `--max-p95-ms`, as in
  Locust's "running without the web UI" docs. Next to the CSV files it writes `<prefix>_run.json`:
  the verdict and whether Locust warned that its own CPU was saturated.
"""

import json
import logging

from locust import events
from locust.runners import WorkerRunner

log = logging.getLogger(__name__)


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    parser.add_argument(
        "--max-fail-ratio",
        type=float,
        default=0.01,
        help="fail the run if more than this share of requests failed (0.01 = 1%%)",
    )
    parser.add_argument(
        "--max-p95-ms",
        type=float,
        default=0,
        help="fail the run if the 95th percentile is above this, in ms (0: no limit)",
    )
    parser.add_argument(
        "--pg-password-file",
        default=".secrets/db_app_password",
        help="file holding the database password (PostgreSQL scenarios)",
    )


def task_tags(user_class) -> set[str]:
    tags = set()
    for task in user_class.tasks:
        tags |= getattr(task, "locust_tag_set", set())
    return tags


@events.init.add_listener
def keep_tagged_users(environment, **_kwargs):
    selected = set(getattr(environment.parsed_options, "tags", None) or [])
    if selected:
        environment.user_classes[:] = [
            user for user in environment.user_classes if task_tags(user) & selected
        ]


@events.quitting.add_listener
def check_thresholds(environment, **_kwargs):
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner):
        return  # the master (or the only process) judges the aggregated figures
    options = environment.parsed_options
    total = environment.stats.total
    p95 = total.get_response_time_percentile(0.95) or 0
    problems = []
    if total.num_requests == 0:
        problems.append("no request was made")
    if total.fail_ratio > options.max_fail_ratio:
        problems.append(
            f"{total.fail_ratio:.2%} of requests failed (limit {options.max_fail_ratio:.2%})"
        )
    if options.max_p95_ms and p95 > options.max_p95_ms:
        problems.append(f"p95 {p95:.0f} ms (limit {options.max_p95_ms:.0f} ms)")
    for problem in problems:
        log.error("threshold: %s", problem)
    if problems:
        environment.process_exit_code = 1

    cpu_warning = bool(
        runner.cpu_warning_emitted or getattr(runner, "worker_cpu_warning_emitted", False)
    )
    if getattr(options, "csv_prefix", None):
        with open(f"{options.csv_prefix}_run.json", "w", encoding="utf-8") as f:
            json.dump({"problems": problems, "cpu_warning": cpu_warning}, f, indent=2)
