"""Deployment monitoring: log ingestion (redacted), grading at scale, drift alerts, taxonomy
discovery, eval coverage of real traffic, red-team triage and policy impact.

This layer works on values and frames; `policylab.store.monitor` holds the SQL.
"""
