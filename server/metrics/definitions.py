"""The four figures and the words around them as clinic staff read them, in Swedish: one source for the
pages' help (`/hjalp/...`) and for section 8 of docs/metrics.md, which is generated from it
(`python -m vardkoll.server.metrics.definitions --write docs/metrics.md`; a test fails when the two
differ). Targets, versions and the small-figure limit are read from the code, never written out here.

The exact rules are in the code beside this module and in English in docs/metrics.md sections 1-7; these
texts say the same in plain words and must change with them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .config import DEFAULT_TARGETS, DEFINITION_VERSIONS
from .figures import SMALL_N


@dataclass(frozen=True)
class Definition:
    metric: str
    name: str  # as the pages title it
    national: str  # the national definition (or why there is none), in plain Swedish
    counted: tuple[str, ...]  # how vardkoll counts it: denominator, numerator, what is left out
    under_target: str  # what a clinic can do when the figure is under its target (or low)

    @property
    def version(self) -> int:
        return DEFINITION_VERSIONS[self.metric]

    @property
    def default_target(self) -> float | None:
        return DEFAULT_TARGETS[self.metric]


@dataclass(frozen=True)
class Term:
    key: str  # an anchor on the help pages: /hjalp/klinikvy#litet-underlag
    name: str
    meaning: str


# In the order the pages show them (METRICS is alphabetical).
DEFINITIONS: dict[str, Definition] = {
    d.metric: d
    for d in (
        Definition(
            "telephone",
            "Telefontillgänglighet (kontakt samma dag)",
            "Andelen inkommande samtal om rådgivning eller bokning, under telefontiden, som fick kontakt med "
            "vårdcentralen samma dag: samtalet besvarades direkt, eller vårdcentralen ringde tillbaka samma dag. "
            "Det är vårdgarantins ”0” i den nationella uppföljningen (Väntetider i vården).",
            (
                "Nämnare: samtal som kom in i kön eller i återuppringningssystemet en dag i perioden (har enheten "
                "telefontider inlagda räknas bara samtal inom dem).",
                "Täljare: de av dem som besvarades eller ringdes tillbaka samma dag som de kom in. En återuppringning "
                "där patienten inte nåddes räknas som kontakt, om inte regionen har bestämt annat.",
                "Avvisade samtal (kön var full eller stängd) kom aldrig in i kön och finns inte i nämnaren. De visas för sig, och i den strikta andelen.",
            ),
            "Titta på samtalen per timme: när kommer de, och när fylls kön? Lägg bemanning och "
            "återuppringningstider där topparna är, och se till att bokade återuppringningar görs samma dag. "
            "Många avvisade samtal betyder att kön är för liten eller stängs för tidigt.",
        ),
        Definition(
            "assessment",
            "Medicinsk bedömning inom 3 dagar",
            "Andelen ärenden där patienten fick en medicinsk bedömning av legitimerad personal inom tre dagar från "
            "den dag hen sökte vårdcentralen för ett nytt eller förvärrat besvär (vårdgarantins ”3”). Kontaktdagen "
            "är dag 0, och en bedömning senast dag 3 är i tid. Sedan 1 juli 2022 gäller garantin patienter som är "
            "listade på vårdcentralen.",
            (
                "Nämnare: ärenden som fick sin första bedömning en dag i perioden (avslutade ärenden, som i den nationella rapporteringen).",
                "Täljare: de av dem som bedömdes senast dag 3.",
                "Utanför måttet: patienter som inte är listade, ärenden där patienten själv valt att vänta eller "
                "väntan är medicinskt motiverad, och ärenden som avslutats utan bedömning.",
                "Öppna ärenden visas för sig: försenade (gränsen har passerats; de blir för sena när de bedöms) och "
                "de som riskerar att passera gränsen inom 24 timmar.",
            ),
            "Börja med listan ”Bedöm före gränsen” i Klinikvy: de ärendena hinner fortfarande bli bedömda i tid. "
            "Försenade ärenden bör bedömas så snart som möjligt; de räknas som för sena, men patienten väntar "
            "fortfarande. Återkommer förseningarna samma veckodagar, se över bemanningen de dagarna.",
        ),
        Definition(
            "fixed_doctor",
            "Fast läkarkontakt",
            "Andelen listade patienter som har en namngiven fast läkare (fast läkarkontakt). Det förvalda målet är det nationella målet för andelen.",
            (
                "Från listningssystemets senaste dagliga uppgift till och med periodens sista dag: täljare = "
                "listade patienter med namngiven fast läkare, nämnare = listade patienter.",
                "Riktmärke för kapacitet: högst 1 100 listade patienter per fast läkare (se snittet per läkare).",
            ),
            "Jämför snittet listade per läkare med riktmärket 1 100. Fler läkare med eget listningsansvar, eller "
            "att fördela patienter som saknar namngiven läkare, höjer andelen.",
        ),
        Definition(
            "continuity",
            "Kontinuitet hos fast läkare",
            "Hur ofta patienterna faktiskt träffar sin fasta läkare. Någon nationell definition finns inte: att ha "
            "en fast läkare säger lite om att man träffar den, så båda mäts.",
            (
                "Nämnare: läkarbesök i perioden av listade patienter som har en fast läkare.",
                "Täljare: de besök där patienten träffade just sin fasta läkare.",
                "Kontinuitetsindex (COC) från 0 (en ny läkare varje gång) till 1 (alltid samma läkare), i snitt över "
                "patienter med minst 3 läkarbesök de senaste 18 månaderna.",
            ),
            "Det finns inget förvalt mål: jämför med enhetens egen utgångsnivå (målet är 20 procent bättre). Boka "
            "i första hand patientens fasta läkare, även för återbesök och förnyade recept.",
        ),
    )
}

TERMS: tuple[Term, ...] = (
    Term(
        "strikt-andel",
        "Strikt andel (räknat med de avvisade samtalen)",
        "Samma täljare som telefontillgängligheten, men med de avvisade samtalen i nämnaren: täljare / (nämnare "
        "+ avvisade). Den visar den dolda kön som den nationella siffran missar.",
    ),
    Term(
        "litet-underlag",
        "Litet underlag",
        f"Färre än {SMALL_N} i nämnaren. Ett enda samtal eller ärende flyttar då andelen mycket: tolka den med "
        "försiktighet. Siffran visas här men tas bort ur offentliga sammanställningar.",
    ),
    Term(
        "ingen-data",
        "Ingen data",
        "Inga händelser har kommit in för enheten. Det betyder inte att målet klaras, utan att vi inte vet. "
        "Se efter i Installationsvy om enhetens insamlare hörs av.",
    ),
    Term(
        "definitionsversion",
        "Definitionsversion",
        "Varje siffra anger vilken version av definitionen den är räknad med. Versionen höjs när en regel ändras "
        "så att siffran betyder något annat, så att siffror med olika version inte jämförs som om de vore lika.",
    ),
)

SILENT_DEVICE: tuple[str, ...] = (
    "En insamlare som inte hörs av skickar inga händelser, och enhetens siffror kan då sakna händelser. "
    "”Tyst” betyder att servern inte hört något från den på en stund; ”frånkopplad” att den själv har "
    "meddelat att den kopplat ned. Händelserna väntar i insamlarens utkorg och räknas när den kommer tillbaka.",
    "Öppna Installationsvy och se när insamlaren senast hördes av och hur många händelser som väntar i utkorgen.",
    "Kontrollera ström och nätverkskabel på enheten, och att den inte har flyttats.",
    "Kör `vardkoll collector doctor` på enheten (installationsguiden visar hur) och åtgärda det som står som FEL.",
    "Kommer den inte tillbaka: kontakta regionens IT-stöd och berätta vad doctor skrev.",
)


def target_text(definition: Definition) -> str:
    target = definition.default_target
    return "inget förvalt mål" if target is None else f"förvalt mål {round(target * 100)} %"


# -- docs/metrics.md, section 8 -----------------------------------------------------------------------------

BEGIN = "<!-- begin: generated from server/metrics/definitions.py, do not edit by hand -->"
END = "<!-- end: generated -->"


def markdown() -> str:
    """Section 8 of docs/metrics.md, between BEGIN and END."""
    lines = [BEGIN, ""]
    for d in DEFINITIONS.values():
        lines += [f"### {d.name} (`{d.metric}`, version {d.version}, {target_text(d)})", "", d.national, ""]
        lines += [f"- {item}" for item in d.counted]
        lines += ["", f"Vad ni kan göra: {d.under_target}", ""]
    lines += ["### Ord på sidorna", ""]
    lines += [f"- **{t.name}.** {t.meaning}" for t in TERMS]
    lines += ["", "### När en insamlare inte hörs av", "", SILENT_DEVICE[0], ""]
    lines += [f"{n}. {step}" for n, step in enumerate(SILENT_DEVICE[1:], 1)]
    lines += ["", END]
    return "\n".join(lines)


def with_generated_section(document: str) -> str:
    """`document` with the text between BEGIN and END replaced by `markdown()`."""
    start, end = document.index(BEGIN), document.index(END) + len(END)
    return document[:start] + markdown() + document[end:]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        path = Path(sys.argv[2])
        path.write_text(with_generated_section(path.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        sys.stdout.write(markdown() + "\n")
