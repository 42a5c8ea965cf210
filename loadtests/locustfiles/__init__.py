"""Locust files of the scenarios (Locust loads them by path; the harness imports targets.py)."""
