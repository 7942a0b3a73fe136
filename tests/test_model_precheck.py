"""The pickle pre-check (``sniff.pickle01_may_run``) never hides what the walker finds.

GLOBAL/INST with a valid module line and an invalid name line: ``pickle.load`` imports the module before the
name lookup fails, and the walker reports a dangerous module (``os``) as a dangerous global. The pre-check used
to reject every invalid name at once, so such a file was never analysed (found by the property test in
``test_model_fastpath``, example ``cos\\n\\x00os\\n``).
"""

from __future__ import annotations

import pytest

from veritensor_fast.models.pickle_scan import PickleWalker
from veritensor_fast.models.sniff import pickle01_may_run


@pytest.mark.parametrize("data", [b"cos\n\x00os\n", b"ios\nnot a name\n", b"csubprocess\n1x\n", b"cos.path\n-\n"])
def test_dangerous_module_with_an_invalid_name_is_analysed(data: bytes) -> None:
    res = PickleWalker().analyze(data, max_streams=1)
    assert any(i.rule_id == "model.pickle.dangerous-global" for i in res.issues)  # the walker's ground truth
    assert pickle01_may_run(data)


@pytest.mark.parametrize("data", [b"config\nsome words here\n", b"include\nfoo bar\n", b"collections\n1x\n"])
def test_harmless_module_with_an_invalid_name_is_still_rejected_at_once(data: bytes) -> None:
    res = PickleWalker().analyze(data, max_streams=1)
    assert not (res.saw_global or res.saw_call or res.clean_stop)
    assert not pickle01_may_run(data)
