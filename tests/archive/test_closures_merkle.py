"""The Merkle tree of daily closures, and its conversion to an OpenTimestamps path (no database)."""

from __future__ import annotations

import hashlib

import pytest
from opentimestamps.core.notary import PendingAttestation
from opentimestamps.core.op import OpAppend, OpPrepend, OpSHA256
from opentimestamps.core.timestamp import Timestamp

from archive.merkle import PathStep, merkle_path, merkle_root, node_hash, path_root
from archive.timestamping import dump, load, path_timestamp


def leaf(i: int) -> bytes:
    return hashlib.sha256(f"entry {i}".encode()).digest()


def reference_root(leaves: list[bytes]) -> bytes:
    """Independent, recursive definition: the left subtree holds the largest power of two below n
    leaves, the rest is the right subtree (what pairing left to right with promotion produces)."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(reference_root(leaves[:split]) + reference_root(leaves[split:])).digest()


def test_one_leaf_is_its_own_root() -> None:
    assert merkle_root([leaf(0)]) == leaf(0)
    assert merkle_path([leaf(0)], 0) == []


def test_two_leaves() -> None:
    a, b = leaf(0), leaf(1)
    assert merkle_root([a, b]) == hashlib.sha256(a + b).digest()
    assert merkle_path([a, b], 0) == [PathStep("right", b)]
    assert merkle_path([a, b], 1) == [PathStep("left", a)]


def test_three_leaves_promote_the_odd_one() -> None:
    a, b, c = leaf(0), leaf(1), leaf(2)
    assert merkle_root([a, b, c]) == node_hash(node_hash(a, b), c)
    # Not Bitcoin's duplication: [a, b, c] and [a, b, c, c] must not share a root (CVE-2012-2459).
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])
    assert merkle_path([a, b, c], 2) == [PathStep("left", node_hash(a, b))]
    assert merkle_path([a, b, c], 0) == [PathStep("right", b), PathStep("right", c)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 9, 1000])
def test_every_path_leads_to_the_root(count: int) -> None:
    leaves = [leaf(i) for i in range(count)]
    root = merkle_root(leaves)
    assert root == reference_root(leaves)
    for index in range(count):
        path = merkle_path(leaves, index)
        assert path_root(leaves[index], path) == root
        assert len(path) <= max(1, (count - 1).bit_length())
    if count > 1:
        assert path_root(leaf(count + 1), merkle_path(leaves, 0)) != root


def test_1000_leaves_known_shape() -> None:
    leaves = [leaf(i) for i in range(1000)]
    # 1000 = 512 + 256 + 128 + 64 + 32 + 8: leaf 0 climbs 9 levels of the 512 subtree then meets the
    # rest; leaf 999 climbs its 8-leaf subtree (3) then meets the 32, 64, 128, 256 and 512 ones (5).
    assert len(merkle_path(leaves, 0)) == 10
    assert len(merkle_path(leaves, 999)) == 8


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        merkle_root([])
    with pytest.raises(ValueError):
        merkle_root([b"short"])
    with pytest.raises(IndexError):
        merkle_path([leaf(0)], 1)


def test_path_becomes_opentimestamps_operations() -> None:
    leaves = [leaf(i) for i in range(5)]
    root = merkle_root(leaves)
    root_timestamp = Timestamp(root)
    root_timestamp.attestations.add(PendingAttestation("http://127.0.0.1:1"))
    for index in range(5):
        path = merkle_path(leaves, index)
        stamp = path_timestamp(leaves[index], path, root_timestamp)
        # Replay the operations by hand: append/prepend the sibling, then SHA256, down to the root.
        node, msg = stamp, leaves[index]
        for step in path:
            (op,) = node.ops.keys()
            assert op == (OpPrepend(step.sibling) if step.side == "left" else OpAppend(step.sibling))
            node = node.ops[op]
            (op,) = node.ops.keys()
            assert op == OpSHA256()
            node = node.ops[op]
            msg = step.apply(msg)
            assert node.msg == msg
        assert node.msg == root
        assert [m for m, _att in stamp.all_attestations()] == [root]
        detached = load(dump(stamp))
        assert detached.file_digest == leaves[index]
    with pytest.raises(ValueError):
        path_timestamp(leaves[0], merkle_path(leaves, 1), root_timestamp)
