"""The harness behind `make loadtest` and `make compare`: stacks, runs, calibration, reports."""
