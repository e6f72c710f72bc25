"""Data: readers for real formats, protocols, transforms, input validation."""

from .arrays import as_array
from .protocols import PROTOCOLS, Split, Subset, contamination, ood, one_anomalous, one_class

__all__ = ["as_array", "PROTOCOLS", "Split", "Subset", "contamination", "ood", "one_anomalous", "one_class"]
