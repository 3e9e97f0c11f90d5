"""Angles on the ecliptic: normalising, differences and the twelve tropical signs."""

from __future__ import annotations

import math
from dataclasses import dataclass

SIGNS: tuple[str, ...] = (
    "aries",
    "taurus",
    "gemini",
    "cancer",
    "leo",
    "virgo",
    "libra",
    "scorpio",
    "sagittarius",
    "capricorn",
    "aquarius",
    "pisces",
)


@dataclass(frozen=True, slots=True)
class ZodiacPlace:
    """Where a longitude falls in the tropical zodiac.

    Attributes:
        sign: the sign's name, lower case ("aries" … "pisces").
        sign_index: 0 for Aries … 11 for Pisces, floor(longitude / 30).
        degree: degrees into the sign, in [0, 30).
    """

    sign: str
    sign_index: int
    degree: float


def normalize(angle: float) -> float:
    """The angle in degrees brought into [0, 360)."""
    wrapped = angle % 360.0
    # -1e-17 % 360 rounds to 360.0 in floating point; 360 is 0 on a circle.
    return 0.0 if wrapped >= 360.0 else wrapped


def signed_difference(a: float, b: float) -> float:
    """The shortest turn from b to a in degrees, in [-180, 180)."""
    return (a - b + 180.0) % 360.0 - 180.0


def separation(a: float, b: float) -> float:
    """The angle between two longitudes in degrees, in [0, 180]."""
    return abs(signed_difference(a, b))


def zodiac_place(longitude: float) -> ZodiacPlace:
    """The sign and degree of an ecliptic longitude (degrees, any range)."""
    lon = normalize(longitude)
    index = min(math.floor(lon / 30.0), 11)
    return ZodiacPlace(sign=SIGNS[index], sign_index=index, degree=lon - 30.0 * index)
