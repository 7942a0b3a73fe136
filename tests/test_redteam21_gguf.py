"""redteam21: GGUF chat templates that build their dunder names at render time (CVE-2024-34359 class:
llama-cpp-python rendered ``tokenizer.chat_template`` in an unsandboxed Jinja environment).

Jinja unescapes ``\\x5f``, ``\\u005f``, ``\\N{LOW LINE}`` and octal escapes in string literals and joins strings
with ``~``, ``+``, ``*`` and ``|join``, so ``cycler["\\x5f\\x5finit\\x5f\\x5f"]`` reaches ``__init__`` with no
dunder in the text. On 4863df0 every template below gave no finding (the check searched the raw text only).
The benign ones are the shapes real templates use (``replace('_', ' ')``, ``'call_' ~ loop.index``, ``\\n``).
"""

from __future__ import annotations

import struct

import pytest

from veritensor_fast.models import analyze


def _gstr(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _gguf(template: str) -> bytes:
    kv = [("general.architecture", 8, _gstr("llama")), ("tokenizer.chat_template", 8, _gstr(template))]
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for k, t, v in kv:
        out += _gstr(k) + struct.pack("<I", t) + v
    return out + b"\x00" * (-len(out) % 32)


HOSTILE = [
    r'{{ cycler["\x5f\x5finit\x5f\x5f"]["\x5f\x5fglobals\x5f\x5f"]["o"~"s"]["po"~"pen"]("id").read() }}',
    r'{{ cycler["\u005f\u005finit\u005f\u005f"] }}',
    r'{{ cycler["\137\137init\137\137"] }}',
    r'{{ cycler["\N{LOW LINE}\N{LOW LINE}init\N{LOW LINE}\N{LOW LINE}"] }}',
    '{% set u = "_"*2 %}{{ cycler[u~"init"~u][u~"globals"~u] }}',
    '{% set u = "_" ~ "_" %}{{ cycler[u~"init"~u] }}',
    '{{ cycler["__in"~"it__"]["__glo" + "bals__"] }}',
    '{{ cycler[("_","_","init","_","_")|join] }}',
    '{{ cycler[["__","init","__"]|join] }}',
    '{{ cycler["%c%cinit%c%c"|format(95,95,95,95)] }}',
    '{% set u = "_" %}{{ cycler[u~u~"init"~u~u] }}',
    '{{ cycler["_" + "_init_" + "_"] }}',
    r'{{ cycler["\x5f_in" ~ "it_\x5f"] }}',
    '{{ cycler["o" ~ "s"] }}{{ x["po" ~ "pen"]("id") }}',
]
BENIGN = [
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + '</s>' }}{% endfor %}",
    "{{ m['content'] | replace('_', ' ') }}{%- set name = tool.name | replace('_', '-') %}",
    "{{ 'call_' ~ loop.index }}{{ parts | join('_') }}{{ tool.name.split('_')[0] }}",
    "{{ '\\u003c|im_start|\\u003e' + message['role'] }}{{ raise_exception('Roles must alternate') }}",
    "{{ a ~ '_' if b }}{{ '__SYS__' + system }}{{ '<__media__>' }}{{ 'Price: 50%c' }}",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_template_building_dunder_names_is_critical(template: str) -> None:
    issues = analyze(_gguf(template), "m.gguf")
    assert [(i.rule_id, i.severity) for i in issues] == [("model.gguf.template", "critical")], issues


@pytest.mark.parametrize("template", BENIGN)
def test_real_template_shapes_stay_quiet(template: str) -> None:
    assert analyze(_gguf(template), "m.gguf") == []
