"""Summarise a py-spy raw profile (bench/results/weft-profile.txt): where the sampled time goes, by function
(inclusive, and self: the innermost frame).

Usage: .venv/bin/python bench/profile_summary.py [bench/results/weft-profile.txt] [--top 30]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE_NUMBER = re.compile(r":\d+\)$")


def read_samples(path: Path) -> list[tuple[list[str], int]]:
    """(frames outermost first, sample count) per line of py-spy's raw (collapsed stack) format."""
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            samples.append(([_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")], int(count)))
    return samples


def inclusive(samples: list[tuple[list[str], int]], keep: str) -> Counter[str]:
    """Samples spent in (or under) each function whose frame contains `keep`."""
    totals: Counter[str] = Counter()
    for frames, count in samples:
        for frame in {frame for frame in frames if keep in frame}:
            totals[frame] += count
    return totals


def innermost(samples: list[tuple[list[str], int]]) -> Counter[str]:
    """Samples whose innermost frame is each function: its own (self) time."""
    totals: Counter[str] = Counter()
    for frames, count in samples:
        totals[frames[-1]] += count
    return totals


def print_table(title: str, totals: Counter[str], total: int, top: int) -> None:
    print(title)
    for frame, count in totals.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame[:140]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", nargs="?", type=Path, default=Path(__file__).parent / "results/weft-profile.txt")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    samples = read_samples(args.profile)
    total = sum(count for _, count in samples)
    print(f"{total} samples")
    print_table("weft functions (inclusive):", inclusive(samples, "(weft/"), total, args.top)
    print_table("all functions (inclusive):", inclusive(samples, ""), total, args.top)
    print_table("all functions (self):", innermost(samples), total, args.top)


if __name__ == "__main__":
    main()
