"""Claims 1 and 3 (paper Fig. 1, Table 1): random subsets suffice; DR(0.9)."""

from __future__ import annotations
