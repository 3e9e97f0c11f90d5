"""User formulas: what they may say, what they compute, and how they fail."""

from __future__ import annotations

import re

import pytest

from trackd.domain.formula import MAX_LENGTH, FormulaError, compile_formula

NAMES = {"a", "b", "rating_2v2", "games_3v3"}
VALUES = {"a": 10.0, "b": 4.0, "rating_2v2": 1500.0, "games_3v3": 120.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a + b * 2", 18.0),
        ("(a + b) * 2", 28.0),
        ("a / b", 2.5),
        ("a // b", 2.0),
        ("a % b", 2.0),
        ("b ** 2", 16.0),
        ("-a + +b", -6.0),
        ("min(a, b, 3)", 3.0),
        ("max(a)", 10.0),
        ("abs(b - a)", 6.0),
        ("round(2.5)", 3.0),
        ("round(-2.5)", -3.0),
        ("round(a / 3, 2)", 3.33),
        ("floor(a / 3)", 3.0),
        ("ceil(a / 3)", 4.0),
        ("sqrt(b)", 2.0),
        ("clamp(rating_2v2, 0, 1200)", 1200.0),
        ("rating_2v2 * 0.8 + games_3v3", 1320.0),
        ("1e3 + 0.5", 1000.5),
        ("  a  ", 10.0),
    ],
)
def test_arithmetic(text: str, expected: float) -> None:
    assert compile_formula(text, NAMES).evaluate(VALUES) == pytest.approx(expected)


def test_names_used_are_recorded() -> None:
    assert compile_formula("max(a, rating_2v2) + 1", NAMES).names == {"a", "rating_2v2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a +", "not valid"),
        (
            "c + 1",
            re.escape("unknown name 'c'; known names: a, b, games_3v3, rating_2v2 (column 1)"),
        ),
        ("a + __import__('os').system('x')", "only these functions may be called"),
        ("a.real", "attribute access"),
        ("[a][0]", "indexing"),
        ("a if b else 1", "if/else"),
        ("a > b", "a comparison"),
        ("a and b", "and/or"),
        ("'1' + a", "is not a number"),
        ("True + a", "is not a number"),
        ("1j", "is not a number"),
        ("lambda: 1", "a lambda"),
        ("(x := 1)", "an assignment"),
        ("a << 2", re.escape("only + - * / // % **")),
        ("~a", re.escape("only + and -")),
        ("max", "max is a function; call it as max(...)"),
        ("min()", "min takes 1 or more arguments, got 0"),
        ("abs(a, b)", "abs takes 1 argument, got 2"),
        ("round(a, 1, 2)", "round takes 1 to 2 arguments, got 3"),
        ("max(*a)", "plain arguments only"),
        ("round(a, ndigits=1)", "plain arguments only"),
        ("a" + " + a" * 300, f"at most {MAX_LENGTH}"),
        ("-" * 490 + "a", "more than 200 parts"),
        ("(" * 240 + "a" + ")" * 240, "too many nested parentheses"),
        ("+".join(["a"] * 240), "more than 200 parts"),
        ("a\x00", "not valid|null character"),
    ],
)
def test_refused_formulas(text: str, message: str) -> None:
    with pytest.raises(FormulaError, match=message):
        compile_formula(text, NAMES)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a / (b - 4)", "division by zero"),
        ("a // (b - 4)", "division by zero"),
        ("a % (b - 4)", "division by zero"),
        ("10 ** 16 ** 2", r"exponents are limited"),
        ("(1e300 * 1e300) - (1e300 * 1e300)", "not a finite number"),
        ("floor((1e300 * 1e300) - (1e300 * 1e300))", "not a finite number"),
        ("1e300 ** 16", "out of range"),
        ("9" * 400 + " + a", "out of range"),
        ("(0 - b) ** 0.5", "fractional power"),
        ("(b - 4) ** -1", r"division by zero \(zero to a negative power\)"),
        ("round(a, 1e300 * 1e300)", "out of range"),
        ("1e308 // 1e-308", "not a finite number"),
        ("sqrt(a - 20)", "sqrt of a negative number"),
        ("round(a, 0.5)", "whole number of digits"),
        ("clamp(a, 5, 1)", "lower bound is above"),
    ],
)
def test_evaluation_errors(text: str, message: str) -> None:
    formula = compile_formula(text, NAMES)
    with pytest.raises(FormulaError, match=message):
        formula.evaluate(VALUES)


def test_a_missing_value_is_named() -> None:
    with pytest.raises(FormulaError, match="no value for b"):
        compile_formula("a + b", NAMES).evaluate({"a": 1.0})
