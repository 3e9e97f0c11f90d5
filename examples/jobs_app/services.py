"""The domain services: the seed's examples on top of BaseTaskTrackingService."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from trackd.jobs.service import BaseTaskTrackingService

from .models import ContributionRealizationTracking, ETFPriceUpdateTracking


class ETFPriceUpdateService(BaseTaskTrackingService[ETFPriceUpdateTracking]):
    model = ETFPriceUpdateTracking

    async def create_price_update(self, etf_id: str, day: date) -> ETFPriceUpdateTracking:
        return await self.create_tracking(etf_id=etf_id, date=day)


class ContributionTrackingService(BaseTaskTrackingService[ContributionRealizationTracking]):
    model = ContributionRealizationTracking

    async def create_contribution_tracking(
        self, pension_id: int, amount: Decimal, day: date
    ) -> ContributionRealizationTracking:
        return await self.create_tracking(
            pension_id=pension_id, contribution_date=day, amount=amount, currency="EUR"
        )
