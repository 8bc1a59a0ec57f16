"""Importers of published policies and taxonomies: each returns a `Policy` (the merged model).

- `import_model_spec`: the OpenAI Model Spec's Markdown (sections, authority levels, examples).
- `import_ailuminate`: the MLCommons AILuminate v1.0 hazard taxonomy (and a prompt set's codes).
- `llama_guard_taxonomy`: Meta's Llama Guard 3 categories S1-S14.

The `*_with_report` variants also return an `ImportReport` (counts, dangling references, warnings).
`policylab.policy.writer.dump_policy_yaml` writes any of them as a policy YAML file.
"""

from policylab.policy.importers._report import ImportedPolicy, ImportReport
from policylab.policy.importers.ailuminate import (
    hazard_codes,
    import_ailuminate,
    import_ailuminate_with_report,
    llama_guard_mapping,
)
from policylab.policy.importers.llama_guard import llama_guard_taxonomy
from policylab.policy.importers.model_spec import import_model_spec, import_model_spec_with_report

__all__ = [
    "ImportReport",
    "ImportedPolicy",
    "hazard_codes",
    "import_ailuminate",
    "import_ailuminate_with_report",
    "import_model_spec",
    "import_model_spec_with_report",
    "llama_guard_mapping",
    "llama_guard_taxonomy",
]
