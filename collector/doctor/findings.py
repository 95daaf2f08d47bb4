"""A finding of `vardkoll collector doctor` and the plain report an installer reads (in Swedish)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["OK", "VARNING", "FEL"]


@dataclass(frozen=True)
class Finding:
    status: Status
    area: str  # what was checked: "Broker", "Klocka", "Källa journal", ...
    text: str  # what was found
    action: str | None = None  # what to do about it (for VARNING and FEL)

    @property
    def failed(self) -> bool:
        return self.status == "FEL"


def ok(area: str, text: str) -> Finding:
    return Finding("OK", area, text)


def warning(area: str, text: str, action: str | None = None) -> Finding:
    return Finding("VARNING", area, text, action)


def error(area: str, text: str, action: str | None = None) -> Finding:
    return Finding("FEL", area, text, action)


def render(findings: list[Finding], heading: str) -> str:
    lines = [heading, ""]
    for finding in findings:
        lines.append(f"{finding.status:<8}{finding.area}: {finding.text}")
        if finding.action and finding.status != "OK":
            lines.append(f"{'':<8}Gör så här: {finding.action}")
    failures = sum(f.failed for f in findings)
    warnings = sum(f.status == "VARNING" for f in findings)
    lines.append("")
    noted = f"{warnings} {'varning' if warnings == 1 else 'varningar'}"
    if failures:
        lines.append(f"Resultat: {failures} fel, {noted}. Åtgärda felen ovan och kör kommandot igen.")
    elif warnings:
        lines.append(f"Resultat: inga fel, {noted}. Insamlaren kan köras; se över varningarna.")
    else:
        lines.append("Resultat: allt OK.")
    return "\n".join(lines) + "\n"
