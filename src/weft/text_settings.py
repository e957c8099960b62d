"""Where the wording of member-facing texts comes from: WEFT_TEMPLATE_<KIND> variables and <kind>.txt files in
WEFT_TEMPLATES_DIR, each checked against the kinds and placeholders of weft.application.replies."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from weft.application.replies import check_template, text_kinds

TEMPLATE_PREFIX = "WEFT_TEMPLATE_"


def read_templates(env: Mapping[str, str]) -> dict[str, str]:
    """The overridden texts: `<kind>.txt` files in WEFT_TEMPLATES_DIR, then WEFT_TEMPLATE_<KIND> (which wins);
    WEFT_MONTHLY_MESSAGE is the older name of WEFT_TEMPLATE_MONTHLY_CARE. Each is checked here, so a typo stops
    the service at start with the variable or file named."""
    found: dict[str, tuple[str, str]] = {}
    directory = env.get("WEFT_TEMPLATES_DIR", "").strip()
    if directory:
        found.update(_template_files(Path(directory)))
    if env.get("WEFT_MONTHLY_MESSAGE", "").strip():
        found["monthly_care"] = ("WEFT_MONTHLY_MESSAGE", env["WEFT_MONTHLY_MESSAGE"].strip())
    kinds = text_kinds()
    for name, value in env.items():
        if name.startswith(TEMPLATE_PREFIX) and value.strip():  # empty is unset, as for every other setting
            kind = name.removeprefix(TEMPLATE_PREFIX).lower()
            if kind not in kinds:
                raise ValueError(f"{name} names no text Weft sends (the README lists the kinds)")
            found[kind] = (name, value.strip())
    for kind, (source, text) in found.items():
        try:
            check_template(kind, text)
        except ValueError as exc:
            raise ValueError(f"{source} {exc}") from None
    return {kind: text for kind, (_, text) in found.items()}


def _template_files(directory: Path) -> dict[str, tuple[str, str]]:
    if not directory.is_dir():
        raise ValueError(f"WEFT_TEMPLATES_DIR must be a directory, not {str(directory)!r}")
    kinds = text_kinds()
    found = {}
    for file in sorted(directory.glob("*.txt")):
        if file.stem not in kinds:
            raise ValueError(f"WEFT_TEMPLATES_DIR: {file.name} names no text Weft sends (the README lists the kinds)")
        try:
            text = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"WEFT_TEMPLATES_DIR: {file.name} cannot be read as UTF-8 text ({exc})") from None
        found[file.stem] = (f"WEFT_TEMPLATES_DIR: {file.name}", text)
    return found
