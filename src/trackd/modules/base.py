"""What a module is (seed 001): a named piece of trackd's cosmic tracking with a typed config.

A module says who it is (`name`, `layer`, `version`, `description`), what its configuration
looks like (`config_model`, a pydantic model whose defaults are the configuration until an
admin stores another), which bus topics it listens to (`subscriptions`), and what it adds to a
user's synthesis (`contribute_to_synthesis`). Its configuration is never hard-coded: it is
read from the database (`trackd.modules.config`) and handed to the module with each call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

Layer = Literal["calculation", "tracking", "intelligence"]
LAYERS: tuple[Layer, ...] = ("calculation", "tracking", "intelligence")


class ModuleConfig(BaseModel):
    """Base of module config models: an unknown key is an error, not silently ignored (a
    misspelt threshold would otherwise leave the default in force)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TrackingConfig(ModuleConfig):
    """Base of the tracking modules' configs: how long their history is kept."""

    history_days: int = Field(
        default=180, ge=1, le=36_500, description="History entries older than this are pruned."
    )
    history_keep: int = Field(
        default=10_000, ge=1, le=1_000_000, description="At most this many entries are kept."
    )


ConfigT = TypeVar("ConfigT", bound=ModuleConfig)


@dataclass(frozen=True, slots=True)
class TrackingHistory:
    """Where a tracking module's history lives: the snapshot histories of `source`.

    A history shared by every user of a tenant (space weather, the Moon) has one `subject`;
    a personal one (`subject` None) is kept per user, its subject the user's id.
    """

    key: str
    source: str
    subject: str | None = None

    @property
    def per_user(self) -> bool:
        return self.subject is None

    def subject_for(self, user: str | None) -> str:
        """The history's subject for `user` (ignored for a shared history).

        Raises:
            ValueError: a personal history asked for without a user.
        """
        if self.subject is not None:
            return self.subject
        if not user:
            raise ValueError(f"the {self.key} history is per user: name the user")
        return user


class ContributionMetadata(BaseModel):
    confidence: float = Field(ge=0.0, le=1.0, description="0: nothing known; 1: certain.")
    as_of: datetime | None = Field(description="When what `data` shows was true (UTC).")


class Contribution(BaseModel):
    """What one module adds to a user's synthesis; only native JSON values in `data`."""

    module: str
    layer: Layer
    data: dict[str, Any]
    insights: list[str]
    metadata: ContributionMetadata


@dataclass(frozen=True, slots=True)
class SynthesisContext(Generic[ConfigT]):
    """What a module is given to contribute: a session on the store, its effective config
    for the tenant, and the instant to answer for."""

    session: AsyncSession
    config: ConfigT
    now: datetime


class Module(ABC, Generic[ConfigT]):
    """Base of every module; subclasses set the class attributes and the contribution."""

    name: ClassVar[str]
    layer: ClassVar[Layer]
    version: ClassVar[str]
    description: ClassVar[str]
    # Bus topics the module's handlers consume (none: it only answers reads).
    subscriptions: ClassVar[tuple[str, ...]] = ()
    # The key of the per-user history it keeps (e.g. "transit_tracking"), or None.
    history_key: ClassVar[str | None] = None
    config_model: type[ConfigT]
    # Tracking modules: the snapshot history they keep and read (None: no history).
    history: ClassVar[TrackingHistory | None] = None
    # Seconds between the polls of the history's source a tenant's schedule makes (None: the
    # module schedules nothing itself).
    poll_every: ClassVar[float | None] = None

    def poll_target(self, config: ConfigT) -> dict[str, Any]:
        """The target of the scheduled polls for a tenant running with `config`."""
        return {}

    def default_config(self) -> ConfigT:
        return self.config_model()

    def parse_config(self, raw: dict[str, Any]) -> ConfigT:
        """`raw` validated against the module's model.

        Raises:
            pydantic.ValidationError: a value is wrong; its errors name the field.
        """
        return self.config_model.model_validate(raw)

    @abstractmethod
    async def contribute_to_synthesis(
        self, tenant: str, user: str | None, context: SynthesisContext[ConfigT]
    ) -> Contribution:
        """What this module knows now for `user` of `tenant` (None: what is the same for
        every user)."""

    def judge(
        self, previous: dict[str, Any] | None, current: dict[str, Any], config: ConfigT
    ) -> list[dict[str, Any]]:
        """The events between two consecutive entries of this module's history, each
        `{"type": ..., "summary": "in words", ...details}`; none by default."""
        return []

    def contribution(
        self,
        data: dict[str, Any],
        insights: list[str],
        *,
        confidence: float,
        as_of: datetime | None,
    ) -> Contribution:
        """A contribution signed with this module's name and layer."""
        return Contribution(
            module=self.name,
            layer=self.layer,
            data=data,
            insights=insights,
            metadata=ContributionMetadata(confidence=confidence, as_of=as_of),
        )
