"""Row blocks: the reference attacks process many rows a few MiB at a time.

A row's score depends on that row and statistics fitted beforehand, so blocks of rows give
the bits of one pass while their temporaries stay small whatever the number of rows.
"""

from __future__ import annotations

__all__ = ["BLOCK_VALUES", "row_blocks"]

#: reference values per row block where rows are processed in blocks (4 MiB of float64):
#: small enough for the cache, large enough that the per-block overhead vanishes
BLOCK_VALUES = 1 << 19


def row_blocks(n: int, width: int) -> list[tuple[int, int]]:
    """Bounds ``(i, j)`` of blocks of about ``BLOCK_VALUES`` values over ``n`` rows of
    ``width`` values. No block has a single row unless ``n`` is 1: a one-row block is
    row-major whatever its array's layout, which would change the order of its sums."""
    step = max(2, BLOCK_VALUES // max(width, 1))
    starts = list(range(0, n, step))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()  # the last row joins the block before it
    return list(zip(starts, [*starts[1:], n][: len(starts)], strict=True))
