"""Warnings for group error rates that rest on too few people to mean much, so a reader does not
weigh a small group's FPR or FNR like a large group's."""

from __future__ import annotations

DENOMINATORS = {"fpr": ("n_negative", "people without the outcome"), "fnr": ("n_positive", "people with it")}


def small_group_warnings(table: dict, precision: float) -> list[dict]:
    """One warning per group and rate whose 95% interval reaches further than `precision` from the
    rate (the spec's max_fpr_gap: a gap of the size the gate allows could then be noise), or that
    has no rate or no interval. Reads the table's per-group `intervals`."""
    warnings = []
    for group, row in table["groups"].items():
        for rate, (size, people) in DENOMINATORS.items():
            interval = table["intervals"]["groups"].get(group, {}).get(rate)
            text = _problem(rate, row[rate], row[size], people, interval, precision)
            if text is None:
                continue
            if group in table.get("left_out", {}).get(rate, []):
                text += f" (left out of the {rate.upper()} gap: under {table['min_group_size']})"
            warnings.append(
                {
                    "group": group,
                    "rate": rate,
                    "count": row[size],
                    "interval": interval,
                    "message": f"{group}: {text}",
                }
            )
    return warnings


def _problem(
    rate: str, value: float | None, count: int, people: str, interval: list[float] | None, precision: float
) -> str | None:
    name = rate.upper()
    if value is None or interval is None:
        return f"no {people}, so no {name}" if count == 0 else f"no interval for its {name}"
    if max(value - interval[0], interval[1] - value) <= precision:
        return None
    return (
        f"{name} {value:.3f} rests on {count} {people}; its 95% interval {interval[0]:.3f}-{interval[1]:.3f} "
        f"reaches more than {precision:g} from it, the largest gap the gate allows, so a gap of that size to "
        "this group could be noise"
    )
