"""Hostile names never break or inject generated code."""

from __future__ import annotations

import ast

import pytest

from mmconv.emitters.codegen import CodeWriter, Namer, literal, sanitize

HOSTILE = [
    "conv.1", "conv-1", "1conv", "class", "def", "import os", "a'b", 'a"b', "x\ny",
    "__import__('os').system('echo pwned')", "", "  ", "self", "torch", "résumé", "名前",
    "match", "print", "a\\b", "#comment", "None",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_sanitized_names_are_plain_identifiers(name: str) -> None:
    ident = sanitize(name)
    assert ident.isidentifier()
    assert not __import__("keyword").iskeyword(ident)
    tree = ast.parse(f"{ident} = 1")
    assert isinstance(tree.body[0], ast.Assign)


def test_namer_unique_and_stable() -> None:
    namer = Namer()
    idents = [namer(n) for n in HOSTILE]
    assert len(set(idents)) == len(HOSTILE)
    assert [namer(n) for n in HOSTILE] == idents
    assert namer("conv.1") == "conv_1" and namer("conv-1") == "conv_1_2"


@pytest.mark.parametrize("value", [*HOSTILE, 1.5, float("inf"), -float("inf"), (1, 2), (3,),
                                   [1.0, 2.0], True, None])
def test_literals_round_trip(value: object) -> None:
    assert eval(literal(value), {}) == value


def test_nan_literal() -> None:
    x = eval(literal(float("nan")), {})
    assert x != x


def test_code_writer_refuses_line_breaks() -> None:
    w = CodeWriter()
    w.line("def f():")
    with w.indent():
        w.line("return 1")
    assert w.text() == "def f():\n    return 1\n"
    with pytest.raises(ValueError):
        w.line("a\nb")
