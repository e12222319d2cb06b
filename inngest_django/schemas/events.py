"""The Event wire shape: what users send and what handlers receive."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Event(BaseModel):
    """An event: a name, a JSON object of data, an optional producer id and a timestamp in ms."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    data: Any = Field(default_factory=dict)
    id: str = ""
    ts: int = 0

    @field_validator("data", mode="before")
    @classmethod
    def _null_data_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object that CEL expressions and system events see."""
        data = self.data.model_dump(mode="json") if isinstance(self.data, BaseModel) else self.data
        return {"name": self.name, "data": data, "id": self.id, "ts": self.ts}
