"""A small policy for the data tests: two domains, one with a subcategory, three behaviours."""

from __future__ import annotations

from pathlib import Path

import pytest

from policylab.policy.loader import load_policy
from policylab.policy.schema import Policy

POLICY = """\
id: mini
version: 1.0.0
title: Mini policy
scope: A policy small enough to reason about in a test.
owners: [{name: Ann Example}]
categories:
  - id: CYB
    title: Cybersecurity
    description: Intrusion and malware.
    severity: high
    expected_behavior: refuse
  - id: CYB.1
    title: Explaining attacks
    description: How attack classes work, for defenders.
    severity: low
    expected_behavior: comply
  - id: ADV
    title: Specialised advice
    description: Health, law and money.
    severity: medium
    expected_behavior: partial
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return path


@pytest.fixture
def policy(policy_file: Path) -> Policy:
    return load_policy(policy_file).policy
