"""The cursor of ``new_eligible_products_sensor``: products requested by recent ticks, and a tick counter."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class SensorCursor:
    """Products requested recently (id → unix time) and the tick sequence number. Serialised as JSON."""

    requested: dict[int, float] = field(default_factory=dict)
    tick: int = 0

    @classmethod
    def parse(cls, raw: str | None) -> SensorCursor:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            return cls(
                requested={int(k): float(v) for k, v in data.get("requested", {}).items()},
                tick=int(data.get("tick", 0)),
            )
        except (ValueError, TypeError, AttributeError):
            # A cursor from another version is not worth failing ticks over: start afresh (the claims and the
            # back-pressure still prevent duplicate work).
            return cls()

    def pruned(self, older_than: float) -> SensorCursor:
        return SensorCursor({pid: ts for pid, ts in self.requested.items() if ts >= older_than}, self.tick)

    def dump(self) -> str:
        return json.dumps(
            {"tick": self.tick, "requested": {str(k): round(v, 1) for k, v in self.requested.items()}},
            separators=(",", ":"),
        )
