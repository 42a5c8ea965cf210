"""fourtier's load tests: Locust scenarios per tier, calibration, comparisons (see README)."""
