"""A strict reader of the Prometheus text exposition format 0.0.4, for the tests: it raises on
anything a Prometheus server would reject (a sample before its TYPE, a malformed label, a
histogram whose buckets are not cumulative or do not end at +Inf = _count)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')
SAMPLE = re.compile(rf"({NAME})(\{{.*\}})? (\S+)(?: (-?\d+))?")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class FormatError(AssertionError):
    pass


@dataclass
class Family:
    name: str
    type: str
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def _labels(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    inner = text[1:-1]
    labels: dict[str, str] = {}
    position = 0
    while position < len(inner):
        match = LABEL.match(inner, position)
        if match is None:
            raise FormatError(f"bad labels: {text}")
        name, value = match.group(1), match.group(2)
        if name in labels:
            raise FormatError(f"label {name} twice in {text}")
        labels[name] = value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        position = match.end()
        if position < len(inner):
            if inner[position] != ",":
                raise FormatError(f"bad labels: {text}")
            position += 1
    return labels


def _value(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    return float(text)


def parse(text: str) -> dict[str, Family]:
    if not text.endswith("\n"):
        raise FormatError("the exposition must end with a newline")
    families: dict[str, Family] = {}
    helps: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            if name in helps:
                raise FormatError(f"HELP twice for {name}")
            helps[name] = help_text
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            if kind not in TYPES or name in families:
                raise FormatError(f"bad or repeated TYPE line: {line}")
            families[name] = Family(name, kind, helps.get(name, ""))
            continue
        if line.startswith("#"):
            continue
        match = SAMPLE.fullmatch(line)
        if match is None:
            raise FormatError(f"bad sample line: {line!r}")
        sample_name, labels, value = match.group(1), _labels(match.group(2)), _value(match.group(3))
        family = _family_of(families, sample_name)
        if family is None:
            raise FormatError(f"sample {sample_name} before (or without) its TYPE line")
        family.samples.append((sample_name, labels, value))
    for family in families.values():
        if family.type == "histogram":
            _check_histogram(family)
    return families


def _family_of(families: dict[str, Family], sample: str) -> Family | None:
    if sample in families:
        return families[sample]
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample.removesuffix(suffix)
        if base != sample and base in families and families[base].type in ("histogram", "summary"):
            return families[base]
    return None


def _check_histogram(family: Family) -> None:
    series: dict[tuple[tuple[str, str], ...], dict[str, list]] = {}
    for name, labels, value in family.samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        entry = series.setdefault(key, {"buckets": [], "count": [], "sum": []})
        if name.endswith("_bucket"):
            entry["buckets"].append((_value(labels["le"]), value))
        elif name.endswith("_count"):
            entry["count"].append(value)
        elif name.endswith("_sum"):
            entry["sum"].append(value)
        else:
            raise FormatError(f"histogram {family.name} has a plain sample {name}")
    for key, entry in series.items():
        buckets = entry["buckets"]
        if not buckets or buckets[-1][0] != math.inf:
            raise FormatError(f"{family.name}{key}: buckets must end with le=+Inf")
        bounds = [bound for bound, _ in buckets]
        counts = [count for _, count in buckets]
        if bounds != sorted(bounds) or counts != sorted(counts):
            raise FormatError(f"{family.name}{key}: buckets are not cumulative")
        if entry["count"] != [buckets[-1][1]] or len(entry["sum"]) != 1:
            raise FormatError(f"{family.name}{key}: _count must equal the +Inf bucket, with one _sum")


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels (0 when absent: counters start at zero)."""
    family = _family_of(families, name)
    if family is None:
        return 0.0
    for sample_name, sample_labels, sample_value in family.samples:
        if sample_name == name and sample_labels == labels:
            return sample_value
    return 0.0
