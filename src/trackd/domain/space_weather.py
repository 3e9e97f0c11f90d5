"""Space weather: reading NOAA SWPC and GFZ Potsdam payloads, and the rules built on them.

Everything here is pure (no I/O): the sources fetch, these functions read what came back and
classify it, and the solar module (later) compares consecutive readings to raise its events.

Payload shapes (see tests/fakes/data/noaa/README.md):

* Kp products: the old header-row arrays of strings, or objects; columns are matched by name.
* Time tags come as `2026-09-06T12:00:00`, `2026-07-12T14:17:00Z` or
  `2025-08-27 00:00:00.000`: all UTC, returned timezone-aware.
* Numbers may arrive as strings; a null is a gap, never a zero.

A payload that is not the expected shape raises `SpaceWeatherDataError` naming what is wrong:
no value is ever invented in its place (the original answered Kp 0 and 400 km/s on error).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeVar

KpSource = Literal["official_3h", "estimated_1m"]
_R = TypeVar("_R")

XRAY_LONG_BAND: Final = "0.1-0.8nm"
# Lower bounds of the GOES flare classes, in W/m² of the 0.1-0.8 nm band.
FLARE_CLASS_FLOORS: Final = (("X", 1e-4), ("M", 1e-5), ("C", 1e-6), ("B", 1e-7), ("A", 1e-8))
# Below G1, from NOAA's Kp descriptions: Kp < 3 quiet, 3 unsettled, 4 active.
STATUS_BELOW_STORM: Final = ("quiet", "quiet", "quiet", "unsettled", "active")
# A rtsw row's flags use this for "no flag"; it says nothing about the data.
RTSW_NO_FLAG: Final = -9999


class SpaceWeatherDataError(ValueError):
    """A payload is not in a shape trackd knows; the message says what was expected."""


# ---------------------------------------------------------------------------------------------
# Readings (native types only: the solar module stores them as JSON through `as_dict`)


@dataclass(frozen=True, slots=True)
class KpReading:
    """One official 3-hourly planetary Kp (NOAA's products file or GFZ's series).

    `time` is the start of the 3-hour interval.
    """

    time: datetime
    kp: float
    a_running: float | None = None
    station_count: int | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class KpEstimate:
    """One row of NOAA's 1-minute Kp estimate: `kp` in thirds, `kp_index` NOAA's rounding."""

    time: datetime
    kp: float
    kp_index: int
    label: str | None


@dataclass(frozen=True, slots=True)
class KpForecastRow:
    """One 3-hour interval of the Kp forecast product."""

    time: datetime
    kp: float
    observed: str
    noaa_scale: str | None


@dataclass(frozen=True, slots=True)
class XrayFlux:
    """One minute of GOES 0.1-0.8 nm flux."""

    time: datetime
    flux: float
    satellite: int | None


@dataclass(frozen=True, slots=True)
class Flare:
    """A GOES flare event; while it is in progress its max and end are None."""

    begin_time: datetime
    begin_class: str | None
    max_time: datetime | None
    max_class: str | None
    max_flux: float | None
    end_time: datetime | None
    end_class: str | None
    current_class: str | None
    satellite: int | None

    @property
    def ongoing(self) -> bool:
        return self.end_time is None

    @property
    def peak_class(self) -> str | None:
        """The strongest class seen so far: the max when known, else the current one."""
        return self.max_class or self.current_class


@dataclass(frozen=True, slots=True)
class PlasmaReading:
    """Solar wind plasma at L1 for one minute."""

    time: datetime
    speed: float | None
    density: float | None
    source: str | None


@dataclass(frozen=True, slots=True)
class MagReading:
    """Interplanetary magnetic field (GSM) at L1 for one minute, in nT."""

    time: datetime
    bz: float
    bt: float | None
    source: str | None


@dataclass(frozen=True, slots=True)
class ScaleDay:
    """NOAA scales of one day: R/S/G levels 0-5 (None when only a probability is given)."""

    day: str
    time: datetime | None
    r: int | None
    s: int | None
    g: int | None
    r_minor_prob: int | None
    r_major_prob: int | None
    s_prob: int | None


@dataclass(frozen=True, slots=True)
class StormStatus:
    """The NOAA status for a Kp, and which Kp it was decided from."""

    level: str
    g_scale: int
    kp: float
    kp_source: KpSource
    time: datetime


def as_dict(reading: Any) -> dict[str, Any]:
    """A reading as JSON-compatible values (datetimes as ISO-8601 UTC strings)."""
    return {key: _jsonable(value) for key, value in asdict(reading).items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# ---------------------------------------------------------------------------------------------
# Cells


def parse_time(value: Any) -> datetime:
    """A NOAA or GFZ time tag as an aware UTC datetime (with or without `Z`, or with a space).

    Raises:
        SpaceWeatherDataError: not a time tag.
    """
    if not isinstance(value, str) or not value.strip():
        raise SpaceWeatherDataError(f"expected a time tag, got {value!r}")
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise SpaceWeatherDataError(f"expected a time tag, got {value!r}") from None
    if parsed.tzinfo is None:
        # Every SWPC and GFZ feed is in UTC, whether or not it says so.
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _optional_time(value: Any) -> datetime | None:
    # An ongoing flare's max/end times are "Unk".
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "unk")):
        return None
    return parse_time(value)


def _number(value: Any, what: str) -> float | None:
    """A number that may arrive as a string; None for a gap."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise SpaceWeatherDataError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        if not value.strip():
            return None
        try:
            number = float(value)
        except ValueError:
            raise SpaceWeatherDataError(f"{what}: expected a number, got {value!r}") from None
    else:
        raise SpaceWeatherDataError(f"{what}: expected a number, got {value!r}")
    if not math.isfinite(number):
        raise SpaceWeatherDataError(f"{what}: expected a finite number, got {value!r}")
    return number


def _required(value: Any, what: str) -> float:
    number = _number(value, what)
    if number is None:
        raise SpaceWeatherDataError(f"{what} is missing")
    return number


def _optional_int(value: Any, what: str) -> int | None:
    number = _number(value, what)
    return None if number is None else int(number)


def _kp(value: Any, what: str = "Kp") -> float:
    kp = _required(value, what)
    if not 0 <= kp <= 9:
        raise SpaceWeatherDataError(f"{what} must be within 0..9, got {kp}")
    return kp


def rows_by_name(payload: Any, what: str) -> list[dict[str, Any]]:
    """The rows of a NOAA product as objects, whichever of its two shapes it came in.

    The old shape is a list of lists whose first row names the columns; the current one is a
    list of objects. Both are read by column name, so a reordered or added column is harmless.

    Raises:
        SpaceWeatherDataError: neither shape.
    """
    if not isinstance(payload, list):
        raise SpaceWeatherDataError(f"{what}: expected a JSON array, got {type(payload).__name__}")
    if not payload:
        return []
    first = payload[0]
    if isinstance(first, Mapping):
        if not all(isinstance(row, Mapping) for row in payload):
            raise SpaceWeatherDataError(f"{what}: mixed objects and other rows")
        return [dict(row) for row in payload]
    if isinstance(first, list):
        if not all(isinstance(name, str) for name in first):
            raise SpaceWeatherDataError(f"{what}: the first row is not a header of column names")
        rows: list[dict[str, Any]] = []
        for number, row in enumerate(payload[1:], start=1):
            if not isinstance(row, list) or len(row) != len(first):
                raise SpaceWeatherDataError(
                    f"{what}: row {number} does not have the {len(first)} columns of the header"
                )
            rows.append(dict(zip(first, row, strict=True)))
        return rows
    raise SpaceWeatherDataError(f"{what}: rows must be arrays or objects")


def _column(row: Mapping[str, Any], names: Sequence[str], what: str) -> Any:
    """The first of `names` present in `row` (one client spells `kp` as `Kp`)."""
    for name in names:
        if name in row:
            return row[name]
    raise SpaceWeatherDataError(f"{what}: no column {' or '.join(map(repr, names))}")


# ---------------------------------------------------------------------------------------------
# Kp


def parse_kp_product(payload: Any) -> list[KpReading]:
    """`/products/noaa-planetary-k-index.json`, oldest to newest, in either shape."""
    what = "noaa-planetary-k-index"
    readings = [
        KpReading(
            time=parse_time(_column(row, ("time_tag",), what)),
            kp=_kp(_column(row, ("Kp", "kp"), what)),
            a_running=_number(row.get("a_running"), "a_running"),
            station_count=_optional_int(row.get("station_count"), "station_count"),
        )
        for row in rows_by_name(payload, what)
    ]
    return sorted(readings, key=lambda reading: reading.time)


def parse_kp_forecast(payload: Any) -> list[KpForecastRow]:
    """`/products/noaa-planetary-k-index-forecast.json`, in either shape."""
    what = "noaa-planetary-k-index-forecast"
    rows: list[KpForecastRow] = []
    for row in rows_by_name(payload, what):
        scale = row.get("noaa_scale")
        if scale is not None and not isinstance(scale, str):
            raise SpaceWeatherDataError(f"{what}: noaa_scale must be a string or null")
        rows.append(
            KpForecastRow(
                time=parse_time(_column(row, ("time_tag",), what)),
                kp=_kp(_column(row, ("kp", "Kp"), what)),
                observed=str(_column(row, ("observed",), what)),
                noaa_scale=scale,
            )
        )
    return sorted(rows, key=lambda row: row.time)


def parse_kp_1m(payload: Any) -> list[KpEstimate]:
    """`/json/planetary_k_index_1m.json`, oldest to newest."""
    what = "planetary_k_index_1m"
    estimates: list[KpEstimate] = []
    for row in rows_by_name(payload, what):
        label = row.get("kp")
        estimates.append(
            KpEstimate(
                time=parse_time(_column(row, ("time_tag",), what)),
                kp=_kp(_column(row, ("estimated_kp",), what), "estimated_kp"),
                kp_index=int(_kp(_column(row, ("kp_index",), what), "kp_index")),
                label=label if isinstance(label, str) else None,
            )
        )
    return sorted(estimates, key=lambda estimate: estimate.time)


def parse_gfz_kp(payload: Any) -> list[KpReading]:
    """GFZ Potsdam's Kp JSON (`datetime`, `Kp`, `status` parallel arrays), oldest first.

    An interval with no value yet is simply absent; a period with nothing has empty arrays.
    """
    what = "GFZ Kp"
    if not isinstance(payload, Mapping):
        raise SpaceWeatherDataError(f"{what}: expected a JSON object")
    times, values = payload.get("datetime"), payload.get("Kp")
    statuses = payload.get("status")
    if not isinstance(times, list) or not isinstance(values, list):
        raise SpaceWeatherDataError(f"{what}: expected `datetime` and `Kp` arrays")
    if statuses is None:
        statuses = [None] * len(times)
    if not isinstance(statuses, list) or not len(times) == len(values) == len(statuses):
        raise SpaceWeatherDataError(f"{what}: `datetime`, `Kp` and `status` differ in length")
    readings = [
        KpReading(time=parse_time(time), kp=_kp(kp), status=str(status) if status else None)
        for time, kp, status in zip(times, values, statuses, strict=True)
    ]
    return sorted(readings, key=lambda reading: reading.time)


def kp_thirds(kp: float) -> int:
    """Kp in thirds of a unit (5- = 14, 5o = 15, 5+ = 16): feeds round 4.667 as 4.67."""
    return round(kp * 3)


def g_scale(kp: float) -> int:
    """NOAA's G scale for a Kp: G1..G5 = Kp 5..9, so 5- (4.67) is not a storm and 9- (8.67)
    is G4, not G5; 0 below G1."""
    return max(0, kp_thirds(kp) // 3 - 4)


def status_level(kp: float) -> str:
    """`quiet` (Kp < 3), `unsettled` (3), `active` (4), then `G1`..`G5`."""
    storm = g_scale(kp)
    if storm:
        return f"G{storm}"
    return STATUS_BELOW_STORM[kp_thirds(kp) // 3]


def storm_status(official: KpReading | None, estimate: KpEstimate | None) -> StormStatus | None:
    """The status now, from the 1-minute estimate when there is one, else the official Kp.

    The estimate is minutes old where the official value is hours old, so it is the one a
    storm flag should follow; it is read in thirds (`estimated_kp`), not NOAA's rounded
    `kp_index`, which would call a 5- a G1. The answer says which Kp was used.
    """
    source: KpSource
    if estimate is not None and (official is None or estimate.time >= official.time):
        kp, source, time = estimate.kp, "estimated_1m", estimate.time
    elif official is not None:
        kp, source, time = official.kp, "official_3h", official.time
    else:
        return None
    return StormStatus(status_level(kp), g_scale(kp), kp, source, time)


# ---------------------------------------------------------------------------------------------
# X-rays and flares


def flare_class(flux: float) -> str:
    """The GOES class of a 0.1-0.8 nm flux: letter and multiplier, e.g. 1.6234e-05 → `M1.6`.

    A<1e-7≤B<1e-6≤C<1e-5≤M<1e-4≤X W/m²; the number is flux over the class's floor, rounded
    down to a tenth (so a flux just under the next floor never reads as "10.0").

    Raises:
        SpaceWeatherDataError: not a positive finite flux.
    """
    if not math.isfinite(flux) or flux <= 0:
        raise SpaceWeatherDataError(f"an X-ray flux must be positive, got {flux!r}")
    for letter, floor in FLARE_CLASS_FLOORS:
        if flux >= floor or letter == "A":
            # The tiny nudge keeps 1.6e-05 / 1e-05 (=1.5999999…) from truncating to 1.5.
            tenths = math.floor(flux / floor * 10 + 1e-9)
            return f"{letter}{tenths / 10:.1f}"
    raise AssertionError("unreachable")  # pragma: no cover


def class_flux(name: str) -> float:
    """The flux a class name stands for (`M1.6` → 1.6e-05), to compare classes.

    Raises:
        SpaceWeatherDataError: not a class name.
    """
    floors = dict(FLARE_CLASS_FLOORS)
    text = name.strip().upper() if isinstance(name, str) else ""
    if len(text) < 2 or text[0] not in floors:
        raise SpaceWeatherDataError(f"expected a flare class like 'M1.6', got {name!r}")
    try:
        multiplier = float(text[1:])
    except ValueError:
        raise SpaceWeatherDataError(f"expected a flare class like 'M1.6', got {name!r}") from None
    return floors[text[0]] * multiplier


def parse_xrays(payload: Any) -> list[XrayFlux]:
    """The 0.1-0.8 nm rows of `/json/goes/primary/xrays-*.json` (two rows a minute), oldest
    first; a row without a flux is a gap and is left out."""
    what = "GOES xrays"
    readings: list[XrayFlux] = []
    for row in rows_by_name(payload, what):
        if _column(row, ("energy",), what) != XRAY_LONG_BAND:
            continue
        flux = _number(row.get("flux"), "flux")
        if flux is None or flux <= 0:
            continue
        satellite = _optional_int(row.get("satellite"), "satellite")
        readings.append(XrayFlux(parse_time(_column(row, ("time_tag",), what)), flux, satellite))
    return sorted(readings, key=lambda reading: reading.time)


def xray_peak(
    readings: Sequence[XrayFlux], *, window: timedelta = timedelta(hours=1)
) -> dict[str, Any] | None:
    """The strongest flux of the last `window` before the newest reading, with its class."""
    if not readings:
        return None
    newest = max(reading.time for reading in readings)
    recent = [reading for reading in readings if reading.time > newest - window]
    peak = max(recent, key=lambda reading: reading.flux)
    return {
        "class": flare_class(peak.flux),
        "flux": peak.flux,
        "time": peak.time.isoformat(),
        "window_start": (newest - window).isoformat(),
        "window_end": newest.isoformat(),
        "satellite": peak.satellite,
    }


def parse_flare(row: Any) -> Flare:
    """One flare object of `xray-flares-latest.json` or `xray-flares-7-day.json`."""
    what = "GOES flare"
    if not isinstance(row, Mapping):
        raise SpaceWeatherDataError(f"{what}: expected an object")

    def text(name: str) -> str | None:
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            raise SpaceWeatherDataError(f"{what}: {name} must be a string or null")
        return value or None

    return Flare(
        begin_time=parse_time(_column(row, ("begin_time",), what)),
        begin_class=text("begin_class"),
        max_time=_optional_time(row.get("max_time")),
        max_class=text("max_class"),
        max_flux=_number(row.get("max_xrlong"), "max_xrlong"),
        end_time=_optional_time(row.get("end_time")),
        end_class=text("end_class"),
        current_class=text("current_class"),
        satellite=_optional_int(row.get("satellite"), "satellite"),
    )


def parse_latest_flare(payload: Any) -> Flare | None:
    """`xray-flares-latest.json`: an array of one flare (none when empty)."""
    if not isinstance(payload, list):
        raise SpaceWeatherDataError("xray-flares-latest: expected a JSON array")
    return parse_flare(payload[-1]) if payload else None


def parse_flares(payload: Any) -> list[Flare]:
    """`xray-flares-7-day.json`: discrete events, oldest first."""
    if not isinstance(payload, list):
        raise SpaceWeatherDataError("xray-flares-7-day: expected a JSON array")
    return sorted((parse_flare(row) for row in payload), key=lambda flare: flare.begin_time)


def flare_dict(flare: Flare) -> dict[str, Any]:
    """A flare as stored in a snapshot, with `ongoing` and `peak_class`."""
    return {**as_dict(flare), "ongoing": flare.ongoing, "peak_class": flare.peak_class}


# ---------------------------------------------------------------------------------------------
# NOAA scales


def parse_scales(payload: Any) -> dict[str, ScaleDay]:
    """`/products/noaa-scales.json`: days keyed "-1" (yesterday), "0" (now), "1".."3"."""
    what = "noaa-scales"
    if not isinstance(payload, Mapping):
        raise SpaceWeatherDataError(f"{what}: expected a JSON object keyed by day")
    days: dict[str, ScaleDay] = {}
    for key, day in payload.items():
        if not isinstance(day, Mapping):
            raise SpaceWeatherDataError(f"{what}: day {key!r} is not an object")
        r, s, g = (_scale_part(day, letter, what) for letter in "RSG")
        stamp = day.get("DateStamp")
        clock = day.get("TimeStamp")
        when = parse_time(f"{stamp}T{clock}") if stamp and clock else None
        days[str(key)] = ScaleDay(
            day=str(key),
            time=when,
            r=_level(r.get("Scale"), f"{key}.R.Scale"),
            s=_level(s.get("Scale"), f"{key}.S.Scale"),
            g=_level(g.get("Scale"), f"{key}.G.Scale"),
            r_minor_prob=_optional_int(r.get("MinorProb"), f"{key}.R.MinorProb"),
            r_major_prob=_optional_int(r.get("MajorProb"), f"{key}.R.MajorProb"),
            s_prob=_optional_int(s.get("Prob"), f"{key}.S.Prob"),
        )
    return days


def _scale_part(day: Mapping[str, Any], letter: str, what: str) -> Mapping[str, Any]:
    part = day.get(letter, {})
    if part is None:
        return {}
    if not isinstance(part, Mapping):
        raise SpaceWeatherDataError(f"{what}: {letter} is not an object")
    return part


def _level(value: Any, what: str) -> int | None:
    level = _optional_int(value, what)
    if level is not None and not 0 <= level <= 5:
        raise SpaceWeatherDataError(f"{what} must be within 0..5, got {level}")
    return level


# ---------------------------------------------------------------------------------------------
# Solar wind


def _newest(rows: list[dict[str, Any]], read: Callable[[dict[str, Any]], _R | None]) -> _R | None:
    """The first reading, newest row first, that `read` finds data in (a null is a gap)."""
    for row in sorted(rows, key=lambda row: parse_time(row.get("time_tag")), reverse=True):
        reading = read(row)
        if reading is not None:
            return reading
    return None


def _rtsw_rows(payload: Any, what: str) -> list[dict[str, Any]]:
    """The active spacecraft's rows of a rtsw feed of good quality (one row per spacecraft a
    minute, exactly one of them active); the flags' -9999 means "no flag" and is ignored."""
    return [
        row
        for row in rows_by_name(payload, what)
        if row.get("active") is True and row.get("overall_quality") in (0, None)
    ]


def _plasma(row: dict[str, Any], speed: str, density: str) -> PlasmaReading | None:
    values = (_number(row.get(speed), speed), _number(row.get(density), density))
    if values == (None, None):
        return None
    source = row.get("source")
    return PlasmaReading(parse_time(row["time_tag"]), *values, source if source else None)


def _mag(row: dict[str, Any]) -> MagReading | None:
    bz = _number(row.get("bz_gsm"), "bz_gsm")
    if bz is None:
        return None
    source = row.get("source")
    return MagReading(
        parse_time(row["time_tag"]), bz, _number(row.get("bt"), "bt"), source if source else None
    )


def parse_rtsw_wind(payload: Any) -> PlasmaReading | None:
    """The newest usable plasma reading of `/json/rtsw/rtsw_wind_1m.json` (only the `active`
    spacecraft counts). None when no row has data."""
    rows = _rtsw_rows(payload, "rtsw_wind_1m")
    return _newest(rows, lambda row: _plasma(row, "proton_speed", "proton_density"))


def parse_rtsw_mag(payload: Any) -> MagReading | None:
    """The newest usable field reading of `/json/rtsw/rtsw_mag_1m.json`. None when no row
    has a Bz."""
    return _newest(_rtsw_rows(payload, "rtsw_mag_1m"), _mag)


def parse_legacy_plasma(payload: Any) -> PlasmaReading | None:
    """The newest row with data of `/products/solar-wind/plasma-*.json` (string cells)."""
    rows = rows_by_name(payload, "solar-wind plasma")
    return _newest(rows, lambda row: _plasma(row, "speed", "density"))


def parse_legacy_mag(payload: Any) -> MagReading | None:
    """The newest row with a Bz of `/products/solar-wind/mag-*.json` (string cells)."""
    return _newest(rows_by_name(payload, "solar-wind mag"), _mag)


# ---------------------------------------------------------------------------------------------
# Freshness and change detection (thresholds are passed in: they come from module config)


def staleness(as_of: datetime, now: datetime, max_age: timedelta) -> dict[str, Any]:
    """Whether a reading taken at `as_of` is stale at `now`, and its age in seconds.

    The last good reading is always shown; this says how much to trust it.
    """
    if as_of.tzinfo is None or now.tzinfo is None:
        raise ValueError("as_of and now must be timezone-aware")
    age = (now - as_of).total_seconds()
    return {"stale": age > max_age.total_seconds(), "age_seconds": max(0.0, age)}


def storm_level_changed(previous: str | None, current: str | None) -> bool:
    """Whether the status level (`quiet`, …, `G5`) moved between two snapshots; an unknown
    side (a failed feed) is no change, so a gap does not raise a false alarm."""
    return previous is not None and current is not None and previous != current


def bz_turned_south(previous: float | None, current: float | None, threshold: float) -> bool:
    """Whether Bz crossed from above `threshold` (a negative nT, e.g. -10) to at or below it."""
    if previous is None or current is None:
        return False
    return previous > threshold >= current


def wind_crossing(
    previous: float | None, current: float | None, threshold: float
) -> Literal["up", "down"] | None:
    """`up` when the wind speed rose to or past `threshold` km/s, `down` when it fell below."""
    if previous is None or current is None:
        return None
    if previous < threshold <= current:
        return "up"
    if current < threshold <= previous:
        return "down"
    return None


def new_major_flare(
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any] | None,
    minimum_class: str = "M1.0",
) -> bool:
    """Whether `current` (a `flare_dict`) is a flare at or above `minimum_class` that was not
    already announced as such in `previous` (same begin time, and already that strong)."""
    if current is None or not current.get("peak_class"):
        return False
    floor = class_flux(minimum_class)
    if class_flux(str(current["peak_class"])) < floor:
        return False
    if previous is None or previous.get("begin_time") != current.get("begin_time"):
        return True
    before = previous.get("peak_class")
    return not before or class_flux(str(before)) < floor


def solar_events(
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    *,
    bz_south_nt: float,
    wind_speed_kms: float,
    flare_min_class: str,
) -> list[dict[str, Any]]:
    """The events between two consecutive `noaa_swpc` snapshots' data, oldest rule first.

    Each is `{"type", ...details}`: `storm_level_changed` (from, to, kp, kp_source),
    `bz_south` (bz, threshold), `wind_speed_crossed` (direction, speed, threshold) and
    `major_flare` (the flare). A part missing on either side raises nothing.
    """
    before: Mapping[str, Any] = previous or {}
    events: list[dict[str, Any]] = []
    old_status, new_status = _part(before, "status"), _part(current, "status")
    if storm_level_changed(old_status.get("level"), new_status.get("level")):
        events.append(
            {
                "type": "storm_level_changed",
                "from": old_status["level"],
                "to": new_status["level"],
                "kp": new_status.get("kp"),
                "kp_source": new_status.get("kp_source"),
            }
        )
    new_bz = _part(current, "mag").get("bz")
    if bz_turned_south(_part(before, "mag").get("bz"), new_bz, bz_south_nt):
        events.append({"type": "bz_south", "bz": new_bz, "threshold": bz_south_nt})
    new_speed = _part(current, "wind").get("speed")
    crossing = wind_crossing(_part(before, "wind").get("speed"), new_speed, wind_speed_kms)
    if crossing is not None:
        events.append(
            {
                "type": "wind_speed_crossed",
                "direction": crossing,
                "speed": new_speed,
                "threshold": wind_speed_kms,
            }
        )
    flare = current.get("flare")
    if new_major_flare(before.get("flare"), flare, flare_min_class):
        events.append({"type": "major_flare", "flare": flare})
    return events


def _part(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    part = data.get(name)
    return part if isinstance(part, Mapping) else {}
