"""Hot loops of veritensor_fast, installed as ``veritensor_fast.kernels``.

This top-level ``kernels/`` folder is mapped onto the ``veritensor_fast.kernels`` import name by
``pyproject.toml`` so that it can never collide with the unrelated ``kernels`` distribution on PyPI.

- ``hsdb``: one Hyperscan block-mode database for every rule: compile, serialise, cache, scan.
- ``entropy``: Shannon entropy of candidate tokens with numpy (never of whole buffers).
"""
