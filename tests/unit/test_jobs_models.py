"""The tracking mixin: table names, per-table indexes, UTC columns, domains, aggregates."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import MetaData, String, create_mock_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trackd.jobs.models import (
    AGGREGATES_TABLE,
    BaseTaskTracking,
    check_domain,
    task_tracking_aggregates,
)
from trackd.store.types import UTCDateTime


class Base(DeclarativeBase):
    pass


class ShipmentTracking(BaseTaskTracking, Base):
    __domain__ = "shipment"

    carrier: Mapped[str] = mapped_column(String(20))


class LabelTracking(BaseTaskTracking, Base):
    __tablename__ = "label_task_tracking"


def test_the_domain_names_the_table_and_the_table_names_the_domain() -> None:
    assert ShipmentTracking.__tablename__ == "shipment_task_tracking"
    assert ShipmentTracking.tracking_domain() == "shipment"
    assert LabelTracking.tracking_domain() == "label"


def test_every_table_gets_its_own_indexes() -> None:
    def indexes(model: type[BaseTaskTracking]) -> dict[str, list[str]]:
        return {i.name or "": [c.name for c in i.columns] for i in model.__table__.indexes}

    assert indexes(ShipmentTracking) == {
        "idx_shipment_task_status": ["status"],
        "idx_shipment_task_dates": ["created_at", "completed_at"],
        "idx_shipment_task_job_id": ["job_id"],
    }
    assert set(indexes(LabelTracking)) == {
        "idx_label_task_status",
        "idx_label_task_dates",
        "idx_label_task_job_id",
    }


def test_standard_columns_come_first_and_times_are_utc() -> None:
    columns = ShipmentTracking.__table__.columns
    assert [c.name for c in columns][:3] == ["id", "tenant_id", "status"]
    assert [c.name for c in columns][-1] == "carrier"
    for name in ("created_at", "updated_at", "started_at", "completed_at", "next_attempt_at"):
        assert isinstance(columns[name].type, UTCDateTime), name
    assert not columns["created_at"].nullable and columns["started_at"].nullable
    assert "metadata" in columns


def test_naive_times_are_refused_by_the_columns() -> None:
    column_type = UTCDateTime()
    with pytest.raises(ValueError, match="naive datetime"):
        column_type.process_bind_param(
            datetime(2026, 1, 1), create_mock_engine("sqlite://", print).dialect
        )


def test_the_seeds_celery_task_id_is_the_job_id() -> None:
    task = ShipmentTracking(carrier="dhl", job_id="c-1")

    assert task.celery_task_id == "c-1"


@pytest.mark.parametrize("bad", ["", "Shipment", "1st", "has-dash", "x" * 41])
def test_domains_must_fit_a_table_index_and_url(bad: str) -> None:
    with pytest.raises(ValueError, match="a tracking domain is"):
        check_domain(bad)


def test_a_model_without_a_domain_or_table_says_what_to_set() -> None:
    class Other(DeclarativeBase):
        pass

    with pytest.raises(TypeError, match="set __domain__"):
        type("Nameless", (BaseTaskTracking, Other), {"__module__": __name__})


def test_the_aggregates_table_is_added_once_to_an_apps_metadata() -> None:
    metadata = MetaData()
    first = task_tracking_aggregates(metadata)

    assert task_tracking_aggregates(metadata) is first
    assert first.name == AGGREGATES_TABLE
    assert [c.name for c in first.primary_key.columns] == ["tenant_id", "domain", "day", "status"]
