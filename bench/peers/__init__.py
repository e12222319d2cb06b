"""The peers bench.suite compares against: run with bench/.peers-venv's Python only."""
