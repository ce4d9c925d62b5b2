"""The Merkle tree of a closed day: one root for all of a chain's entries of that day, and the short
path that proves one entry's inclusion in it.

Leaves are the entries' 32-byte hashes in ``seq`` order; a node is ``sha256(left || right)``. A level
with an odd number of nodes **promotes** its last node unchanged to the next level, instead of hashing
it with a copy of itself as Bitcoin does: duplication lets two different leaf lists (``[a, b, c]`` and
``[a, b, c, c]``) share one root (CVE-2012-2459), promotion does not. One leaf is its own root.

The same operations exist in OpenTimestamps (``OpAppend``/``OpPrepend`` of the sibling, then
``OpSHA256``), so a path converts to a timestamp that ``ots verify`` replays (see
``archive.timestamping.path_timestamp``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

HASH_LENGTH = 32


@dataclass(frozen=True)
class PathStep:
    """One level of an inclusion path: the sibling's hash and the side it sits on."""

    side: Literal["left", "right"]
    sibling: bytes

    def apply(self, node: bytes) -> bytes:
        if self.side == "left":
            return node_hash(self.sibling, node)
        return node_hash(node, self.sibling)

    def as_dict(self) -> dict[str, str]:
        return {"side": self.side, "sibling": self.sibling.hex()}


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(left + right).digest()


def _check(leaves: Sequence[bytes]) -> None:
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    for leaf in leaves:
        if len(leaf) != HASH_LENGTH:
            raise ValueError(f"a leaf is a {HASH_LENGTH}-byte hash, got {len(leaf)} bytes")


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    out = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        out.append(level[-1])  # promoted, see the module docstring
    return out


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root over ``leaves`` (entry hashes in seq order)."""
    _check(leaves)
    level = [bytes(leaf) for leaf in leaves]
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_path(leaves: Sequence[bytes], index: int) -> list[PathStep]:
    """The siblings that lead from ``leaves[index]`` to the root, bottom-up. A promoted node has no
    sibling at its level, so paths may be shorter than ``ceil(log2(n))``."""
    _check(leaves)
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} out of range (0..{len(leaves) - 1})")
    level = [bytes(leaf) for leaf in leaves]
    path: list[PathStep] = []
    while len(level) > 1:
        if index % 2:
            path.append(PathStep("left", level[index - 1]))
        elif index + 1 < len(level):
            path.append(PathStep("right", level[index + 1]))
        level = _next_level(level)
        index //= 2
    return path


def path_root(leaf: bytes, path: Sequence[PathStep]) -> bytes:
    """Replay ``path`` from ``leaf``: equals the root when the leaf is included."""
    node = bytes(leaf)
    for step in path:
        node = step.apply(node)
    return node
