"""MMR calculation: the four algorithms, the reference league's figures, and configs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fakes.trn_payloads import playlist_segment, profile_payload, recorded
from trackd.league.mmr import (
    VARIABLES,
    Algorithm,
    MmrConfig,
    MmrError,
    MmrInputs,
    ModeFigures,
    calculate,
    round_half_up,
)
from trackd.sources.rocket_league_stats import Mode, parse_season


def inputs(**modes: ModeFigures) -> MmrInputs:
    names = {"ones": Mode.ONES, "twos": Mode.TWOS, "threes": Mode.THREES, "fours": Mode.FOURS}
    return MmrInputs(34, {names[name]: figures for name, figures in modes.items()})


# The reference implementation's sample player.
SAMPLE = inputs(
    ones=ModeFigures(rating=1200, games=150),
    twos=ModeFigures(rating=1400, games=300),
    threes=ModeFigures(rating=1600, games=500),
    fours=ModeFigures(rating=1000, games=50),
)


def test_weighted_average() -> None:
    config = MmrConfig(weights={Mode.ONES: 0.1, Mode.TWOS: 0.3, Mode.THREES: 0.5, Mode.FOURS: 0.1})
    result = calculate(config, SAMPLE)
    # (1200*.1 + 1400*.3 + 1600*.5 + 1000*.1) / 1.0
    assert result.mmr == 1440
    assert result.algorithm is Algorithm.WEIGHTED_AVERAGE and result.season == 34


def test_default_weights_count_2v2_and_3v3_equally() -> None:
    assert calculate(MmrConfig(), SAMPLE).mmr == 1500


def test_minimum_games_leave_a_playlist_out() -> None:
    config = MmrConfig(weights={Mode.TWOS: 1, Mode.THREES: 1}, min_games={Mode.THREES: 501})
    result = calculate(config, SAMPLE)
    assert result.mmr == 1400
    assert result.parts == {"rating_2v2": 1400.0}


def test_nothing_to_count_is_no_mmr_with_a_reason() -> None:
    result = calculate(MmrConfig(min_games={Mode.TWOS: 1000, Mode.THREES: 1000}), SAMPLE)
    assert result.mmr is None
    assert result.reason == "no rating with enough games in 2v2, 3v3"
    assert calculate(MmrConfig(weights={}), SAMPLE).reason == "no playlist has a positive weight"
    unranked = inputs(twos=ModeFigures(rating=None, games=0))
    assert calculate(MmrConfig(algorithm=Algorithm.PEAK_MMR), unranked).mmr is None


def test_peak_is_the_best_season_peak_of_the_counted_playlists() -> None:
    players = inputs(
        ones=ModeFigures(rating=1900, peak=1950, games=10),
        twos=ModeFigures(rating=1400, peak=1520, games=300),
        threes=ModeFigures(rating=1600, peak=None, games=500),
    )
    result = calculate(MmrConfig(algorithm=Algorithm.PEAK_MMR), players)
    assert result.mmr == 1600  # 1v1 has no weight by default
    everything = MmrConfig(algorithm=Algorithm.PEAK_MMR, weights={mode: 1 for mode in Mode})
    assert calculate(everything, players).mmr == 1950


@pytest.mark.parametrize(
    ("twos", "threes", "expected"),
    [
        # The reference league's own figures: current, peak, games this season, games before.
        ((1164, 1333, 529, 371), (947, 1179, 51, 81), 1269),
        ((1711, 1768, 465, 132), (1274, 1308, 84, 9), 1693),
        ((1400, 1400, 300, 0), (1600, 1600, 500, 0), 1525),
    ],
)
def test_ascendancy_matches_the_reference_league(
    twos: tuple[int, int, int, int], threes: tuple[int, int, int, int], expected: int
) -> None:
    def figures(values: tuple[int, int, int, int]) -> ModeFigures:
        current, peak, games, previous = values
        return ModeFigures(rating=current, peak=peak, games=games, previous_games=previous)

    result = calculate(
        MmrConfig(algorithm=Algorithm.ASCENDANCY),
        inputs(
            twos=figures(twos), threes=figures(threes), ones=ModeFigures(rating=2500, games=900)
        ),
    )
    assert result.mmr == expected


def test_ascendancy_uses_the_real_peak_over_two_seasons() -> None:
    players = inputs(
        twos=ModeFigures(rating=1000, peak=1100, games=100, previous_games=100, previous_peak=1400)
    )
    result = calculate(MmrConfig(algorithm=Algorithm.ASCENDANCY), players)
    assert result.mmr == round_half_up(1000 * 0.25 + 1400 * 0.75)  # 1300, all games are 2v2
    assert result.parts == {"score_2v2": 1300.0, "share_2v2": 1.0}
    weighted = MmrConfig(
        algorithm=Algorithm.ASCENDANCY, ascendancy_weights={"current": 1, "peak": 1}
    )
    assert calculate(weighted, players).mmr == 1200


def test_ascendancy_without_2v2_or_3v3_games() -> None:
    players = inputs(ones=ModeFigures(rating=1500, games=40))
    result = calculate(MmrConfig(algorithm=Algorithm.ASCENDANCY), players)
    assert result.mmr is None and "no 2v2 or 3v3" in (result.reason or "")


def test_custom_formula() -> None:
    config = MmrConfig(
        algorithm=Algorithm.CUSTOM,
        formula="max(rating_2v2, rating_3v3) * 0.7 + min(peak_2v2, 2000) * 0.3 + games_3v3 / 100",
    )
    players = inputs(
        twos=ModeFigures(rating=1400, peak=1500, games=300),
        threes=ModeFigures(rating=1600, games=500),
    )
    result = calculate(config, players)
    assert result.mmr == round_half_up(1600 * 0.7 + 1500 * 0.3 + 5)
    assert set(result.parts) == {"rating_2v2", "rating_3v3", "peak_2v2", "games_3v3"}


def test_custom_formula_in_the_reference_leagues_names() -> None:
    config = MmrConfig(
        algorithm=Algorithm.CUSTOM, formula="(twos * twosGames + threes * threesGames) / totalGames"
    )
    assert calculate(config, SAMPLE).mmr == round_half_up((1400 * 300 + 1600 * 500) / 1000)


def test_custom_formula_failing_on_the_numbers() -> None:
    config = MmrConfig(algorithm=Algorithm.CUSTOM, formula="rating_2v2 / games_4v4")
    with pytest.raises(MmrError, match="division by zero"):
        calculate(config, inputs(twos=ModeFigures(rating=1400, games=3)))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"algorithm": "CUSTOM"}, "needs a formula"),
        ({"algorithm": "CUSTOM", "formula": "rating_5v5 * 2"}, "unknown name 'rating_5v5'"),
        ({"algorithm": "CUSTOM", "formula": "__import__('os')"}, "only these functions"),
        ({"algorithm": "CUSTOM", "formula": "1 +" + " 1 +" * 200 + " 1"}, "at most 500"),
        ({"algorithm": "SOMETHING"}, "algorithm"),
        ({"weights": {"2v2": -1}}, "weight of 2v2"),
        ({"weights": {"5v5": 1}}, "weights.5v5"),
        ({"min_games": {"3v3": -2}}, "minimum games of 3v3"),
        ({"weights": {"2v2": 1e308}}, "weight of 2v2 must be from 0 to 1000"),
        ({"weights": {"2v2": 1e308, "3v3": 1e308}}, "weight of 2v2"),
        ({"min_games": {"2v2": 2**70}}, "minimum games of 2v2 must be from 0 to 1000000"),
        ({"ascendancy_weights": {"current": 1e308, "peak": 1}}, "current"),
        ({"ascendancy_weights": {"current": 0, "peak": 0}}, "must not both be 0"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_configs_are_refused_when_made(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MmrConfig.model_validate(config)


def test_inputs_from_the_recorded_profile() -> None:
    latest = parse_season(recorded())
    previous = parse_season(
        profile_payload(
            [playlist_segment(11, 33, rating=2700, peak=2750, matches=800)], current_season=34
        ),
        season=33,
    )
    figures = MmrInputs.from_seasons(latest, previous)
    twos = figures.modes[Mode.TWOS]
    assert twos == ModeFigures(
        rating=2629,
        peak=2698,
        games=1534,
        previous_games=800,
        previous_peak=2750,
        all_time_peak=2772,
    )
    assert figures.modes[Mode.THREES].previous_games == 0
    result = calculate(MmrConfig(algorithm=Algorithm.ASCENDANCY), figures)
    # 2v2: 2629*.25 + 2750*.75 = 2719.75 over 2334 games; 3v3: 1534 (peak 1534) over 5 games.
    expected = (2719.75 * 2334 + 1534 * 5) / 2339
    assert result.mmr == round_half_up(expected)
    values = figures.variables()
    assert set(values) == VARIABLES
    assert values["alltime_peak_2v2"] == 2772 and values["games_prev_2v2"] == 800
    assert values["total_games"] == 62 + 1534 + 5 + 11


def test_round_half_up() -> None:
    assert [round_half_up(x) for x in (1268.5, 1269.49, 2.5, 3.5)] == [1269, 1269, 3, 4]


def test_stored_rules_from_before_the_bounds_still_give_a_finite_mmr() -> None:
    # Rules stored before weights were bounded: read back, not refused, and the average of
    # huge weights is the same as of their ratio.
    stored = MmrConfig.stored({"weights": {"2v2": 1e308, "3v3": 1e308}})
    assert calculate(stored, SAMPLE).mmr == 1500
    lopsided = MmrConfig.stored({"weights": {"2v2": 1e308, "3v3": 1.0}})
    assert calculate(lopsided, SAMPLE).mmr == 1400
    peak = MmrConfig.stored({"algorithm": "PEAK_MMR", "weights": {"3v3": 1e308}})
    assert calculate(peak, SAMPLE).mmr == 1600
    with pytest.raises(ValidationError, match="weight of 2v2"):
        MmrConfig.stored({"weights": {"2v2": -1}})


def test_figures_too_large_for_arithmetic_give_an_error_not_a_crash() -> None:
    huge = inputs(twos=ModeFigures(rating=10**400, games=3), threes=ModeFigures(rating=1, games=3))
    for config in (
        MmrConfig(),
        MmrConfig(algorithm=Algorithm.PEAK_MMR),
        MmrConfig(algorithm=Algorithm.ASCENDANCY),
        MmrConfig(algorithm=Algorithm.CUSTOM, formula="rating_2v2 + rating_3v3"),
    ):
        with pytest.raises(MmrError, match="too large"):
            calculate(config, huge)
    overflow = MmrConfig(algorithm=Algorithm.CUSTOM, formula="rating_2v2 * 1e308 * 1e308")
    with pytest.raises(MmrError, match="not a finite number"):
        calculate(overflow, SAMPLE)
