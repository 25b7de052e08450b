"""The avatar cache: prepared reference photos by id, bounded, least recently used first out.

An avatar's id is derived from the photo's pixels, so uploading the same photo twice returns the
same id without preparing it again. An avatar in use by a stream is released only when the last
stream using it ends.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inference.errors import NotFound


@dataclass
class Avatar:
    id: str
    width: int
    height: int
    state: Any
    created: float = field(default_factory=time.time)
    users: int = 0
    evicted: bool = False

    def describe(self) -> dict[str, Any]:
        return {"avatar_id": self.id, "width": self.width, "height": self.height, "created": self.created,
                "streams": self.users}


def avatar_id(image: np.ndarray) -> str:
    """A stable id from the decoded pixels (orientation applied)."""
    digest = hashlib.sha256(np.ascontiguousarray(image).data)
    digest.update(str(image.shape).encode())
    return "av_" + digest.hexdigest()[:24]


class AvatarCache:
    """Bounded LRU of prepared avatars; `release` frees backend state of evicted ones."""

    def __init__(self, capacity: int, release: Callable[[Any], None]):
        self.capacity = capacity
        self.release = release
        self.items: OrderedDict[str, Avatar] = OrderedDict()

    def get(self, avatar_id: str) -> Avatar:
        avatar = self.items.get(avatar_id)
        if avatar is None:
            raise NotFound(f"no avatar {avatar_id!r}", "upload the photo again with POST /v1/avatars")
        self.items.move_to_end(avatar_id)
        return avatar

    def put(self, avatar: Avatar) -> Avatar:
        """Insert (or return the existing avatar with the same id) and evict beyond capacity."""
        if avatar.id in self.items:
            return self.get(avatar.id)
        self.items[avatar.id] = avatar
        while len(self.items) > self.capacity:
            _, oldest = self.items.popitem(last=False)
            self._evict(oldest)
        return avatar

    def delete(self, avatar_id: str) -> None:
        avatar = self.get(avatar_id)
        del self.items[avatar_id]
        self._evict(avatar)

    def acquire(self, avatar: Avatar) -> None:
        avatar.users += 1

    def done(self, avatar: Avatar) -> None:
        """A stream stopped using `avatar`; free it if it was evicted meanwhile."""
        avatar.users -= 1
        if avatar.evicted and avatar.users == 0:
            self.release(avatar.state)

    def list(self) -> list[dict[str, Any]]:
        return [avatar.describe() for avatar in self.items.values()]

    def _evict(self, avatar: Avatar) -> None:
        avatar.evicted = True
        if avatar.users == 0:
            self.release(avatar.state)
