"""policylab: a workbench for AI model-behaviour policy.

Policy as code, evaluation of models against it, graders validated against human labels,
human labelling campaigns, monitoring of real traffic, and reports.
"""

__version__ = "0.1.0"
