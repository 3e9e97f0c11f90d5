"""`python -m jobs_app migrate|demo|serve|revision` (run from the examples/ directory).

python -m jobs_app demo --database-url sqlite+aiosqlite:///./jobs_app.db
python -m jobs_app demo ... --trackd-url http://127.0.0.1:8000 --token "$TOKEN"
python -m jobs_app serve --database-url ... --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.jobs.events import HttpEventPublisher, JobEventPublisher
from trackd.jobs.runner import run_due
from trackd.store.engine import create_engine, session_factory

from .app import create_app, service_options
from .migrate import revision, upgrade
from .models import Etf, PensionEtf
from .services import ContributionTrackingService, ETFPriceUpdateService
from .work import PriceFile, contribution_processor, price_updater

MONDAY, TUESDAY, WEDNESDAY = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The application's own reference data: two ETFs and two pension plans."""
    async with sessions() as db:
        if (await db.execute(select(Etf.id))).first() is None:
            db.add_all(
                [
                    Etf(id="VWCE", name="Vanguard FTSE All-World UCITS ETF (Acc)"),
                    Etf(id="EUNL", name="iShares Core MSCI World UCITS ETF (Acc)"),
                ]
            )
            await db.flush()
            db.add_all(
                [
                    PensionEtf(id=1, etf_id="VWCE", owner="alice", units=Decimal(0)),
                    PensionEtf(id=2, etf_id="EUNL", owner="bob", units=Decimal(0)),
                ]
            )
            await db.commit()


async def demo(database_url: str, publisher: JobEventPublisher | None) -> None:
    await upgrade(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    options = service_options(publisher)
    try:
        await seed(sessions)
        async with sessions() as db_prices, sessions() as db_contrib:
            prices = ETFPriceUpdateService(db_prices, **options)
            contributions = ContributionTrackingService(db_contrib, **options)
            # Contributions first: their prices are not there yet, so they fail and retry.
            alice = await contributions.create_chain(
                [
                    {"pension_id": 1, "contribution_date": MONDAY, "amount": Decimal("250.00")},
                    {"pension_id": 1, "contribution_date": TUESDAY, "amount": Decimal("250.00")},
                ]
            )
            bob = await contributions.create_contribution_tracking(2, Decimal("100.00"), MONDAY)
            for etf in ("VWCE", "EUNL"):
                for day in (MONDAY, TUESDAY):
                    await prices.create_price_update(etf, day)
            missing = await prices.create_tracking(etf_id="VWCE", date=WEDNESDAY, max_attempts=2)
            update = price_updater(prices, PriceFile())
            realize = contribution_processor(contributions)
            for _ in range(40):
                ran = await run_due(contributions, realize)
                ran_prices = await run_due(prices, update)
                open_tasks = len(await contributions.crud.get_active_tasks(db_contrib)) + len(
                    await prices.crud.get_active_tasks(db_prices)
                )
                await db_contrib.commit()
                await db_prices.commit()
                if not open_tasks:
                    break
                if not (ran.ran or ran_prices.ran):
                    await asyncio.sleep(0.1)  # the retries are not due yet
            print("domain            id  status     attempts  result")
            for task in [*alice, bob]:
                row = await contributions.get_status(task.id)
                print(
                    f"contribution  {row.id:>6}  {row.status:<9}  {row.attempts:>8}  "
                    f"{row.units} units for {row.amount} {row.currency}"
                )
            for row in await prices.crud.get_page(db_prices):
                result = f"{row.etf_id} {row.date}: {row.price or row.error_message}"
                print(
                    f"etf_price_update  {row.id:>2}  {row.status:<9}  {row.attempts:>8}  {result}"
                )
            gone = await prices.get_status(missing.id)
            print(f"missing price left {gone.status} after {gone.attempts} attempts")
    finally:
        await engine.dispose()
        if isinstance(publisher, HttpEventPublisher):
            await publisher.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m jobs_app")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("migrate", "demo", "serve"):
        cmd = commands.add_parser(name)
        cmd.add_argument("--database-url", default="sqlite+aiosqlite:///./jobs_app.db")
        if name != "migrate":
            cmd.add_argument("--trackd-url", help="send the status changes to this trackd")
            cmd.add_argument("--token", help="a trackd service token (trackd token create)")
        if name == "serve":
            cmd.add_argument("--port", type=int, default=8001)
    rev = commands.add_parser("revision")
    rev.add_argument("message")
    rev.add_argument("--rev-id", required=True)
    args = parser.parse_args()
    publisher = None
    if getattr(args, "trackd_url", None):
        if not args.token:
            parser.error("--trackd-url needs --token")
        publisher = HttpEventPublisher(args.trackd_url, args.token)
    if args.command == "migrate":
        asyncio.run(upgrade(args.database_url))
    elif args.command == "demo":
        asyncio.run(demo(args.database_url, publisher))
    elif args.command == "serve":
        import uvicorn

        asyncio.run(upgrade(args.database_url))
        uvicorn.run(create_app(args.database_url, publisher), host="127.0.0.1", port=args.port)
    else:
        asyncio.run(revision(args.message, args.rev_id))


if __name__ == "__main__":
    main()
