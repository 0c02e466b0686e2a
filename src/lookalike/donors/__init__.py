"""Donors: the faces a lookalike borrows its identity from, and how one is chosen for a face.

- :mod:`~lookalike.donors.pool`: donors as rows of embeddings and attributes, ranked for a face by
  perceptual similarity (PerFace) under compatibility rules (gender, child/adult, age, skin, ethnicity,
  pose, mouth);
- :mod:`~lookalike.donors.bank`: the bank the pool views, with each donor's aligned crop and landmarks,
  built from a folder of faces (``lookalike donors build``);
- :mod:`~lookalike.donors.prototypes`: k-anonymous averages, for banks built from photos of real people;
- :mod:`~lookalike.donors.canonical`: the canonical frame donor crops are cut in;
- :mod:`~lookalike.donors.choice`: the donors the lookalike loop tries for one face, strict first.
"""

from lookalike.donors.bank import DEFAULT_BANK, BuildReport, DonorBank, default_bank
from lookalike.donors.choice import choose_donors, reported_gaps
from lookalike.donors.pool import ETHNICITIES, Compatibility, Donor, DonorPool, select_donors

__all__ = [
    "DEFAULT_BANK",
    "ETHNICITIES",
    "BuildReport",
    "Compatibility",
    "Donor",
    "DonorBank",
    "DonorPool",
    "choose_donors",
    "default_bank",
    "reported_gaps",
    "select_donors",
]
