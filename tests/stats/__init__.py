"""Tests of policylab.stats (a package so its module names do not clash with tests/cli)."""
