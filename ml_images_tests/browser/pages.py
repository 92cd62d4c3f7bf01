"""Reading Dagster 1.13 pages: the partition list, the metadata table, the pictures. Selectors lean on what the
UI shows (titles, text, inline status colours), not on its hashed CSS class names, which change between builds."""

from __future__ import annotations

from dataclasses import dataclass

from ml_images_tests.browser.chromium import Browser

# The partition list of an asset's Partitions tab: one row per key, its title is the key, and a dot whose inline
# background is the partition's status colour (green materialised, red failed, gray missing).
_PARTITION_ROWS_JS = """
return Array.from(document.querySelectorAll('[class*="assetListRow"]')).map(row => {
  const title = row.querySelector('[title]');
  const dot = Array.from(row.querySelectorAll('div')).find(d => (d.style.borderRadius || '') === '100%');
  return {key: title ? title.getAttribute('title') : row.innerText.trim(), dot: dot ? dot.style.background : ''};
});
"""

# Every two-or-more-cell table row on the page: [first cell text, second cell text].
_TABLE_ROWS_JS = """
return Array.from(document.querySelectorAll('tr')).map(tr => Array.from(tr.cells).map(c => c.innerText.trim()))
  .filter(cells => cells.length >= 2).map(cells => [cells[0], cells[1]]);
"""

STATUS_COLOURS = {"green": "materialized", "red": "failed", "gray": "missing", "blue": "in progress"}


@dataclass(frozen=True)
class PartitionRow:
    key: str
    status: str  # from the dot's colour: materialized, failed, missing, in progress (or the raw colour)


def partition_rows(browser: Browser) -> list[PartitionRow]:
    rows = []
    for row in browser.run(_PARTITION_ROWS_JS):
        colour = str(row["dot"])
        status = next((s for c, s in STATUS_COLOURS.items() if f"--color-accent-{c}" in colour), colour)
        rows.append(PartitionRow(key=str(row["key"]), status=status))
    return rows


def wait_for_partition_rows(browser: Browser, count: int) -> list[PartitionRow]:
    def listed(b: Browser) -> list[PartitionRow]:
        rows = partition_rows(b)
        return rows if len(rows) >= count else []

    return browser.wait(listed, what=f"{count} partition rows")


def metadata_rows(browser: Browser) -> dict[str, str]:
    """The metadata table shown on the page (a partition's detail, an asset's overview): key -> shown value."""
    return {str(k): str(v) for k, v in browser.run(_TABLE_ROWS_JS)}


def image(browser: Browser, alt: str) -> dict[str, object] | None:
    return next((i for i in browser.images() if i["alt"] == alt), None)
