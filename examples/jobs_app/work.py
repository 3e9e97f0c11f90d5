"""The work the tracked tasks stand for: fetch a closing price, realize a contribution.

Each handler gets its task's row, in the session of the service running it: what it writes
is committed with the task's completion, and rolled back if it fails.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from .models import ContributionRealizationTracking, EtfPrice, ETFPriceUpdateTracking, PensionEtf
from .services import ContributionTrackingService, ETFPriceUpdateService

SAMPLE_PRICES = Path(__file__).with_name("prices.csv")
UNITS = Decimal("0.000001")


class PriceFile:
    """Closing prices from a CSV file (etf_id,date,close): the application's price source."""

    def __init__(self, path: Path = SAMPLE_PRICES) -> None:
        self.name = path.name
        with path.open(newline="") as f:
            self._prices = {
                (row["etf_id"], date.fromisoformat(row["date"])): Decimal(row["close"])
                for row in csv.DictReader(f)
            }

    def close(self, etf_id: str, day: date) -> Decimal:
        try:
            return self._prices[(etf_id, day)]
        except KeyError:
            raise LookupError(f"{self.name} has no close for {etf_id} on {day}") from None


def price_updater(service: ETFPriceUpdateService, prices: PriceFile):  # type: ignore[no-untyped-def]
    async def update_etf_price(task: ETFPriceUpdateTracking) -> None:
        price = prices.close(task.etf_id, task.date)
        db = service.db
        stored = await db.get(EtfPrice, (task.etf_id, task.date))
        if stored is None:
            db.add(EtfPrice(etf_id=task.etf_id, date=task.date, price=price, source=prices.name))
        else:
            stored.price, stored.source = price, prices.name
        task.price, task.source = price, prices.name

    return update_etf_price


def contribution_processor(service: ContributionTrackingService):  # type: ignore[no-untyped-def]
    async def process_contribution(task: ContributionRealizationTracking) -> None:
        db = service.db
        pension = await db.get(PensionEtf, task.pension_id)
        if pension is None:
            raise LookupError(f"pension {task.pension_id} does not exist")
        price = (
            await db.execute(
                select(EtfPrice.price).where(
                    EtfPrice.etf_id == pension.etf_id, EtfPrice.date == task.contribution_date
                )
            )
        ).scalar_one_or_none()
        if price is None:
            # The price update for the day has not run yet: failing here retries this task
            # after a backoff, when it may have.
            raise LookupError(f"no {pension.etf_id} price for {task.contribution_date} yet")
        units = (task.amount / price).quantize(UNITS)
        task.units = units
        pension.units += units

    return process_contribution
