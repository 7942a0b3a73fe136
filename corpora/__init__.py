"""Deterministic corpus generators (monorepo, giant notebook, model zoo) with ground truth, for tests and bench/.

Run them as modules from the repository root, e.g. ``python -m corpora.gen_monorepo --size-mb 500``.
"""
