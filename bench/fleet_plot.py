"""The fleet storm's picture: entries accepted and throttled per second, one panel per policy
side by side (`bench/fleet.py`, real or simulated)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(results: dict[str, dict[str, Any]], path: Path, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure, panels = plt.subplots(
        1, len(results), figsize=(6 * len(results), 4.5), sharey=True, squeeze=False
    )
    for axes, (policy, result) in zip(panels[0], results.items(), strict=True):
        for key, label, colour in (
            ("accepted_per_second_over_time", "accepted", "tab:green"),
            ("throttled_per_second_over_time", "throttled", "tab:red"),
        ):
            points = result[key]
            axes.plot([p[0] for p in points], [p[1] for p in points], label=label, color=colour)
        axes.axvline(result["ideal_seconds"], linestyle=":", color="grey", label="ideal")
        axes.set_title(
            f"{policy}: {result['ratio_to_ideal']}x ideal, "
            f"{100 * result['throttled_share']:.1f}% throttled"
        )
        axes.set_xlabel("seconds since the link came back")
        axes.legend()
    panels[0][0].set_ylabel("entries / s")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return str(path)
