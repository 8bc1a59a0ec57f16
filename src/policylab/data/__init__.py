"""Eval items: the record, reading files, mapping columns onto items, de-duplication.

This layer knows nothing of the store: `policylab.store.items` persists what it produces.
"""

from policylab.data.items import TRANSCRIPT_TAG, ItemRecord

__all__ = ["TRANSCRIPT_TAG", "ItemRecord"]
