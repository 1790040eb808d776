"""What a results tree was measured on: dataset, split, videos, and whether the DAVIS-C paper's columns apply.

The unit records say it (``harness.run`` writes ``dataset`` and ``split`` into every unit of a benchmark
other than DAVIS-2017, read by ``harness.protocols``; a DAVIS-2017 unit has neither field), so this reads one
unit file per method and never the data itself. The DAVIS-C paper's tables (Bertrand et al., NeurIPS 2023)
are on DAVIS-2017 val and its corrupted copy: a method measured on anything else is never put next to them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from leaderboard.paper import DAVIS17_VAL
from leaderboard.results import Results

__all__ = ["Benchmark", "describe_benchmark", "DATASET_TITLES", "PAPER_BENCHMARK"]

#: reader names (``davis_c.datasets``) -> the names papers use; an unknown reader is shown by its own name.
DATASET_TITLES = {"davis2017": "DAVIS-2017", "davis2016": "DAVIS-2016", "youtube-vos": "YouTube-VOS",
                  "mose": "MOSE", "lvos": "LVOS", "sav": "SA-V"}
#: the benchmark of the DAVIS-C paper's Tables 1-3.
PAPER_BENCHMARK = ("davis2017", "val")


@dataclass
class Benchmark:
    """The dataset(s) of a results tree, as the header of the report names them."""

    datasets: dict[str, tuple[str, str]]  # method -> (reader name, split)
    videos: list[str]
    corrupted: bool  # any <strength>/<corruption> variant
    n_variants: int
    n_corrupted: int
    split_recorded: bool = True
    paper_methods: list[str] = field(default_factory=list)  # methods measured on the paper's benchmark

    @property
    def names(self) -> list[str]:
        return sorted({d for d, _ in self.datasets.values()})

    @property
    def splits(self) -> list[str]:
        return sorted({s for _, s in self.datasets.values()})

    @property
    def base_title(self) -> str:
        return " + ".join(DATASET_TITLES.get(n, n) for n in self.names) or "DAVIS-2017"

    @property
    def title(self) -> str:
        """``DAVIS-2016-C`` for a corrupted build, ``DAVIS-2017`` for clean-only runs."""
        if len(self.names) > 1:
            return self.base_title + (" (-C)" if self.corrupted else "")
        return self.base_title + ("-C" if self.corrupted else "")

    @property
    def paper_applies(self) -> bool:
        return bool(self.paper_methods)

    def dataset_line(self) -> str:
        parts = []
        for name in self.names:
            methods = sorted(m for m, (d, _) in self.datasets.items() if d == name)
            parts.append(f"{DATASET_TITLES.get(name, name)} ({name})"
                         + (f": {', '.join(methods)}" if len(self.names) > 1 else ""))
        line = "; ".join(parts)
        if self.corrupted:
            line += ", with its corrupted variants (a \"-C\" build)"
        return line

    def split_line(self) -> str:
        known = [s for s in self.splits if s != "unknown"]
        text = ", ".join(known) if known else "not recorded"
        if not self.split_recorded:
            text += (" (DAVIS-2017 units do not record their split; every video is a DAVIS-2017 val video)"
                     if self.splits == ["val"] else
                     " (DAVIS-2017 units do not record their split, and not every video is a DAVIS-2017 val video)")
        return text

    @property
    def where(self) -> str:
        """``DAVIS-2016 val``; ``DAVIS-2017 (videos outside val)`` when the split is unknown."""
        known = [s for s in self.splits if s != "unknown"]
        if not known:
            return f"{self.base_title} (videos outside DAVIS-2017 val)"
        return f"{self.base_title} {', '.join(known)}"

    def variants_line(self) -> str:
        clean = self.n_variants - self.n_corrupted
        return (f"{self.n_variants}: " + ("clean + " if clean else "")
                + f"{self.n_corrupted} corrupted (<strength>/<corruption>)")

    def paper_line(self) -> str:
        if not self.paper_methods:
            return (f"none: the DAVIS-C paper's tables (Bertrand et al., NeurIPS 2023) are on DAVIS-2017 val; "
                    f"this tree is on {self.where}, so no published number is "
                    "compared and the summary columns are this benchmark's own")
        others = sorted(set(self.datasets) - set(self.paper_methods))
        text = ("the DAVIS-C paper's Tables 1-3 (Bertrand et al., NeurIPS 2023; DAVIS-2017 val and its "
                "corrupted variants)")
        if len(self.videos) != len(DAVIS17_VAL) or set(self.videos) != set(DAVIS17_VAL):
            text += f"; ours on {len(self.videos)} of the 30 val videos, the paper on all 30"
        if others:
            text += f"; not compared (another benchmark): {', '.join(others)}"
        return text


def _unit_dataset(path: str) -> tuple[str | None, str | None]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    return data.get("dataset"), data.get("split")


def describe_benchmark(results: Results, videos: list[str], variants: list[str]) -> Benchmark:
    """Read the dataset and split of each method from its first readable unit file."""
    datasets: dict[str, tuple[str, str]] = {}
    recorded = True
    for method, g in results.units.groupby("method", sort=True):
        ok = g[g.status == "ok"]
        name, split = _unit_dataset(str((ok if len(ok) else g).path.iloc[0]))
        if name is None:  # DAVIS-2017 units carry no dataset field
            name = "davis2017"
            vids = set(g.video)
            recorded = False
            split = "val" if vids <= set(DAVIS17_VAL) else "unknown"
        datasets[str(method)] = (str(name), str(split or "unknown"))
    corrupted = [v for v in variants if v != "clean"]
    paper = sorted(m for m, ds in datasets.items() if ds == PAPER_BENCHMARK)
    return Benchmark(datasets=datasets, videos=list(videos), corrupted=bool(corrupted), n_variants=len(variants),
                     n_corrupted=len(corrupted), split_recorded=recorded, paper_methods=paper)
