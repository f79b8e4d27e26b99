"""Warnings for group error rates that rest on too few people to mean much, so a reader does not
weigh a small group's FPR or FNR like a large group's."""

from __future__ import annotations

DENOMINATORS = {"fpr": ("n_negative", "people without the outcome"), "fnr": ("n_positive", "people with it")}
TAIL = 0.025  # each tail of a 95% interval


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
    if value in (0.0, 1.0):
        return _all_alike(name, value, count, people, precision)
    if max(value - interval[0], interval[1] - value) <= precision:
        return None
    return (
        f"{name} {value:.3f} rests on {count} {people}; its 95% interval {interval[0]:.3f}-{interval[1]:.3f} "
        f"reaches more than {precision:g} from it, the largest gap the gate allows, so a gap of that size to "
        "this group could be noise"
    )


def _all_alike(name: str, value: float, count: int, people: str, precision: float) -> str | None:
    """A rate of 0 or 1 comes back from every resample of its group, so its bootstrap interval is that
    point however few people it rests on; the exact (Clopper-Pearson) interval, 0 to 1 - 0.025^(1/n)
    for a rate of 0, says how far it could be."""
    reach = 1 - TAIL ** (1 / count)
    if reach <= precision:
        return None
    low, high = (0.0, reach) if value == 0 else (1 - reach, 1.0)
    return (
        f"{name} {value:.3f} rests on {count} {people}, all on one side of the threshold, so resampling "
        f"them cannot move it; its exact 95% interval {low:.3f}-{high:.3f} reaches more than {precision:g} "
        "from it, the largest gap the gate allows, so a gap of that size to this group could be noise"
    )
