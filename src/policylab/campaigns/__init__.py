"""Human data: label schemas from a policy, gold sets, consensus, and exports.

The queue, qualification and adjudication live in the store (`policylab.store.campaigns`,
`policylab.store.labelling`, `policylab.store.adjudication`), since they are transactions.
"""

from policylab.campaigns.consensus import Consensus, LabelView, consensus
from policylab.campaigns.exports import FinalRecord
from policylab.campaigns.gold import (
    GoldAnswer,
    GoldSample,
    informative_items,
    read_gold,
    select_gold_set,
    stratified_sample,
)
from policylab.campaigns.schema import LabelInput, LabelSchema, derive_schema

__all__ = [
    "Consensus",
    "FinalRecord",
    "GoldAnswer",
    "GoldSample",
    "LabelInput",
    "LabelSchema",
    "LabelView",
    "consensus",
    "derive_schema",
    "informative_items",
    "read_gold",
    "select_gold_set",
    "stratified_sample",
]
