"""Reading Dagster 1.13 pages: the partition list, the metadata table, the pictures. Selectors lean on what the
UI shows (titles, text, inline status colours) and at most on the readable part of a CSS-module class name
(``assetListRow``), never on its hash suffix, which changes between builds."""

from __future__ import annotations

from dataclasses import dataclass

from ml_images_tests.browser.chromium import Browser

# The partition list of an asset's Partitions tab: one row per key, its title is the key, and a dot whose inline
# background is the partition's status colour (green materialised, red failed, gray missing).
_PARTITION_ROWS_JS = """
return Array.from(document.querySelectorAll('[class*="assetListRow"]')).map(row => {
  const title = row.querySelector('[title]');
  const dot = Array.from(row.querySelectorAll('div')).find(d => (d.style.borderRadius || '') === '100%');
  const colour = dot ? (dot.style.background || dot.style.backgroundColor) : '';
  return {key: title ? title.getAttribute('title') : row.innerText.trim(), dot: colour};
});
"""

# Every two-or-more-cell table row on the page: [first cell text, last non-empty cell text] (a partition's table
# ends with an empty cell; an asset's overview puts the metadata timestamp between the key and the value).
_TABLE_ROWS_JS = """
return Array.from(document.querySelectorAll('tr')).map(tr => Array.from(tr.cells).map(c => c.innerText.trim()))
  .filter(cells => cells.length >= 2).map(cells => {
    const values = cells.slice(1).filter(text => text !== '');
    return [cells[0], values.length ? values[values.length - 1] : ''];
  });
"""

# Asset partitions: green materialised, red failed, gray missing, blue materialising. In a partitioned check's
# own Partitions view the same colours mean passed, failed (or execution failed), missing.
ASSET_STATUS = {"green": "materialized", "red": "failed", "gray": "missing", "blue": "materializing"}
COLOURS = (*ASSET_STATUS, "yellow")  # yellow: a check skipped for that partition


@dataclass(frozen=True)
class PartitionRow:
    key: str
    colour: str  # the dot's colour, one of COLOURS (or the raw CSS value when none of these)

    @property
    def status(self) -> str:
        return ASSET_STATUS.get(self.colour, self.colour)


def partition_rows(browser: Browser) -> list[PartitionRow]:
    rows = []
    for row in browser.run(_PARTITION_ROWS_JS):
        css = str(row["dot"])
        colour = next((c for c in COLOURS if f"--color-accent-{c}" in css), css)
        rows.append(PartitionRow(key=str(row["key"]), colour=colour))
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
