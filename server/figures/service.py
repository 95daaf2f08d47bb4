"""Answer "the figure for [from, to] as of T" for units, from the stored metric state."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache, partial
from datetime import date, datetime, timezone
from typing import Any, Callable, Hashable, NamedTuple, Sequence

from sqlalchemy import literal_column, null, select, union_all
from sqlalchemy.orm import Session, sessionmaker

from vardkoll.server.metrics import DEFINITION_VERSIONS, METRICS, Period, UnitConfig, end_of_day

from vardkoll.server.metrics.continuity import coc_window

from ..storage.database import read_sessions
from ..storage.one_of import one_of
from ..storage.registry_tables import DeviceRow
from ..storage.tables import UnitActivity
from ..registry.directory import UnitDirectory
from .cache import FigureCache, Watermark, answer_of, figure_key, frozen_figure, set_key, settings_stamp
from vardkoll.server.metrics.day_parts import PART_METRICS

from .computed_writes import Write, write_computed
from .continuity_sums import continuity_figures
from .freshness import FreshnessBlocks
from .day_parts import Request, figures_from_parts, keep_parts
from .kept_ledgers import KeptLedgers
from .part_writes import PartWrites
from .recent_parts import RecentParts
from .loading import load_calls, load_cases, load_latest_snapshots, load_snapshots, load_visits
from .store import dependency_versions_of_sets, last_utc_date, load_stored, load_stored_periods, save_stored, settings_hash, unit_dependency_versions


# Metrics whose sets `figure_sets` answers beside the others, and the threads that do it (shared by
# every FigureService of the process; a request waits for its own sets only, and answers itself those
# that no thread has taken yet, rather than wait behind other requests' sets).
COMPUTED_BESIDE = frozenset({"continuity"})
_BESIDE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="figures-beside")


@dataclass(frozen=True)
class SetPlan:
    """What one set asks: its units' figures of `metric` for `period`, each as of its moment."""

    units: list[str]
    metric: str
    period: Period
    configs: dict[str, UnitConfig]
    moments: dict[str, datetime]  # the moment each figure is "as known at"

    @property
    def through(self) -> date:
        """The last UTC date whose events any of the figures depends on."""
        return max(map(last_utc_date, self.moments.values()), default=self.period.end)


@dataclass
class _PendingSet:
    """A set the whole-set cache could not answer: `changed` (indexes into the set's units) are still
    to be answered, through `plan`; the others are taken from `kept`, the kept set (None: not kept,
    every unit is changed)."""

    slot: int  # its place among the sets asked for
    plan: SetPlan
    kept: Sequence[dict[str, Any]] | None  # the kept figures themselves (`cache.frozen_figure`): never handed out
    changed: list[int]


class KeptSets(NamedTuple):
    """`FigureService.kept_figure_sets`: per set its kept figures (read-only, without `data`), and per unit its `data` block."""

    sets: list[Sequence[dict[str, Any]]]
    blocks: list[dict[str, Any]]


@dataclass
class _Writes:
    """What answering sets leaves to write once their sessions are closed: figures to store, day parts to keep."""

    stored: list[tuple[str, Period, list[tuple[str, str, int, dict[str, Any]]]]] = field(default_factory=list)
    parts: list[tuple[str, list[Any], dict[str, str]]] = field(default_factory=list)

    def extend(self, other: "_Writes") -> None:
        self.stored.extend(other.stored)
        self.parts.extend(other.parts)

    def as_writes(self) -> list[Write]:
        return [partial(save_stored, metric=m, period=p, figures=rows, now=datetime.now(timezone.utc)) for m, p, rows in self.stored] + [
            partial(keep_parts, metric=m, computed=parts, hashes=hashes) for m, parts, hashes in self.parts
        ]


class FigureService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        units: UnitDirectory,
        cache: FigureCache | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        """`cache`: computed figures by data version (see `cache`); the default holds 20 000, `FigureCache(0)` none.
        `clock` tells which periods have ended (only those are kept in the database, see `store`)."""
        self._sessions = sessions  # for the writes of what was computed
        self._reads = read_sessions(sessions)  # for everything else: on PostgreSQL no BEGIN and no ROLLBACK round trip
        self._units = units
        self._clock = clock
        self.cache = cache if cache is not None else FigureCache()
        # Telephone and assessment from per-day parts (`day_parts`), continuity from SQL aggregates
        # (`continuity_sums`); False: every figure from the rows, as before (the benchmarks' baseline).
        self.use_day_parts = True
        # A stale day's rows: only those changed since this process last read the day (`kept_ledgers`);
        # None: read whole (the benchmarks' baseline).
        self.kept_ledgers: KeptLedgers | None = KeptLedgers()
        # Which computed day parts to write: a unit's running day at most once per five minutes (`part_writes`).
        self.part_writes = PartWrites()
        # The day parts this process computed lately, by the day's version (`recent_parts`); None: not kept.
        self.recent_parts: RecentParts | None = RecentParts()
        # Each unit's `data` block, kept while its activity and devices are as they were (`freshness`).
        self.freshness = FreshnessBlocks()

    def figure(self, unit: str, metric: str, period: Period, as_of: datetime | None = None, cached: bool = True) -> dict[str, Any]:
        """The SPEC 2.5 figure, as `vardkoll replay` gives it, plus its definition version and data freshness."""
        return self.figures([unit], metric, period, as_of, cached)[0]

    def figures(
        self,
        units: list[str],
        metric: str,
        period: Period,
        as_of: datetime | None = None,
        cached: bool = True,
        keep_in_memory: bool = True,
    ) -> list[dict[str, Any]]:
        """`cached=False` computes every figure from the stored rows (neither cache nor store is read
        or written); `keep_in_memory=False` leaves this process's cache as it was (for bulk work such
        as the rollup job, which would otherwise push out what the dashboards are using)."""
        return self.figure_sets(units, [(metric, period)], as_of, cached, keep_in_memory)[0]

    def figure_sets(
        self,
        units: list[str],
        wanted: Sequence[tuple[str, Period]],
        as_of: datetime | None = None,
        cached: bool = True,
        keep_in_memory: bool = True,
    ) -> list[list[dict[str, Any]]]:
        """`figures(units, metric, period, ...)` for each (metric, period) of `wanted`, in one session:
        the units' freshness is read once, a set whose units have no new data and no new settings
        since it was last answered comes whole from the cache (`cache`, "Whole sets"), and the
        dependency versions of what the others still need are read in one query: a Regionvy page of
        17 sets, or a repeated region query, is then a few small reads. Continuity's figures that must
        be computed are computed beside the others, in a second session. A (metric, period) asked for
        more than once is answered once: the same list in each of its places. A unit's `data` block is
        one read-only dict shared by its figures in every set and by later answers while its activity
        and devices stand (`freshness`), and a figure's nested values may be shared with the cache
        (`cache.ReadOnlyDict`, which refuses changes): read them, never change them."""
        sets, freshness = self._sets(units, wanted, as_of, cached, keep_in_memory)
        # Each figure a top-level dict of the caller's own (`answer_of`: the kept ones are shared), one
        # list per distinct set, so `data` is set in place, one block per unit shared by its sets: a
        # Regionvy of 230 units has 3 680 figures, and copying each with a block of its own took 2.6 ms
        # of every page (0.2 now).
        own: dict[int, list[dict[str, Any]]] = {}
        answers = []
        for figures in sets:
            if id(figures) not in own:
                own[id(figures)] = list(map(answer_of, figures))
            answers.append(own[id(figures)])
        blocks = [freshness[unit] for unit in units]
        for figures in own.values():
            for figure, block in zip(figures, blocks):
                figure["data"] = block
        return answers

    def kept_figure_sets(self, units: list[str], wanted: Sequence[tuple[str, Period]]) -> KeptSets:
        """`figure_sets(units, wanted)` as the cache keeps them: each figure is the kept one itself,
        read-only and without `data` (the units' blocks come beside), and a figure whose unit has no
        new data since the set was last answered is the same object as then. Regionvy keeps what it
        builds from each unit's figures by their identity (server/web/region_rows.py): a unit none of
        whose 17 figures is a new object is shown as before, without copying or reading them again."""
        sets, freshness = self._sets(units, wanted, None, True, True)
        return KeptSets(sets, [freshness[unit] for unit in units])

    def _sets(
        self, units: list[str], wanted: Sequence[tuple[str, Period]], as_of: datetime | None, cached: bool, keep_in_memory: bool
    ) -> tuple[list[Sequence[dict[str, Any]]], dict[str, dict[str, Any]]]:
        """Each set of `wanted` (without `data`: the kept figures themselves where the cache keeps them)
        and the units' freshness blocks."""
        for metric, _ in wanted:
            if metric not in METRICS:
                raise ValueError(f"unknown metric {metric!r}; expected one of: {', '.join(METRICS)}")
        distinct = list(dict.fromkeys(wanted))
        if len(distinct) < len(wanted):
            # Regionvy asks for its chosen metric's running month twice (the table, the last small
            # multiple): answered once, the same list in both places.
            distinct_answers, freshness = self._sets(units, distinct, as_of, cached, keep_in_memory)
            by_set = dict(zip(distinct, distinct_answers))
            return [by_set[one] for one in wanted], freshness
        beside = [i for i, (metric, _) in enumerate(wanted) if metric in COMPUTED_BESIDE]
        kept = all(self.cache.has_set(set_key(units, *wanted[i], as_of, self.use_day_parts)) for i in beside)
        if cached and self.use_day_parts and 0 < len(beside) < len(wanted) and not kept:
            # Continuity's sets not answered before (a cold page): from the start in a thread of their own,
            # with a session and a watermark of their own, while this thread answers the others.
            rest = [i for i in range(len(wanted)) if i not in beside]
            continuity = [wanted[i] for i in beside]
            elsewhere = _BESIDE.submit(self._answer_sets, units, continuity, as_of, cached, keep_in_memory, False)
            rest_answers, freshness = self._answer_sets(units, [wanted[i] for i in rest], as_of, cached, keep_in_memory, True)
            if elsewhere.cancel():  # no thread has taken it yet (they serve every request of the process): answered here
                beside_answers = self._answer_sets(units, continuity, as_of, cached, keep_in_memory, False)[0]
            else:
                beside_answers = elsewhere.result()[0]
            by_index = dict(zip(rest, rest_answers)) | dict(zip(beside, beside_answers))
            return [by_index[i] for i in range(len(wanted))], freshness
        return self._answer_sets(units, wanted, as_of, cached, keep_in_memory, True)

    def _answer_sets(
        self, units: list[str], wanted: Sequence[tuple[str, Period]], as_of: datetime | None, cached: bool, keep_in_memory: bool, read_freshness: bool
    ) -> tuple[list[Sequence[dict[str, Any]]], dict[str, dict[str, Any]]]:
        """Each set's figures without `data`, and the units' freshness when `read_freshness`."""
        now = self._clock()
        whole_sets = cached and keep_in_memory
        writes = _Writes()
        elsewhere: Future[tuple[list[list[dict[str, Any]]], _Writes]] | None = None
        with self._reads() as session:
            # The watermark first, rows after: a set is never older than the watermark it is filed under.
            generation = self._units.generation
            activity, devices = self._activity(session, units, with_devices=read_freshness)
            watermark = (generation, tuple(activity[unit].version if unit in activity else 0 for unit in units))
            answers, pending = self._kept_sets(units, wanted, as_of, generation, watermark, whole_sets)
            versions = dependency_versions_of_sets(session, [(p.plan.units, p.plan.through, p.plan.metric) for p in pending])
            to_compute = [cached and not self._all_in_memory(p.plan, v, as_of) for p, v in zip(pending, versions)]
            beside = [i for i, p in enumerate(pending) if to_compute[i] and cached and self.use_day_parts and p.plan.metric in COMPUTED_BESIDE]
            here = [i for i in range(len(pending)) if i not in beside]
            if not any(to_compute[i] for i in here):
                here, beside = list(range(len(pending))), []
            if beside:
                # Continuity's time is spent in the database, which lets go of the GIL while it reads: its
                # figures are computed in a thread of their own, with a session of their own (the versions
                # were read above, before its rows), while this thread answers the others (a cold Regionvy
                # of 230 units: the continuity query beside the other 16 sets).
                plans = [(pending[i].plan, versions[i]) for i in beside]
                elsewhere = _BESIDE.submit(self._figures_in_own_session, plans, as_of, cached, keep_in_memory, now)
            freshness = self.freshness.of(units, activity, devices) if read_freshness else {}
            computed = {i: self._figures(session, pending[i].plan, versions[i], as_of, cached, keep_in_memory, now, writes) for i in here}
            if elsewhere is not None and elsewhere.cancel():  # no thread has taken it yet: answered here, not waited for
                computed.update({i: self._figures(session, pending[i].plan, versions[i], as_of, cached, keep_in_memory, now, writes) for i in beside})
                elsewhere = None
        if elsewhere is not None:
            beside_figures, beside_writes = elsewhere.result()
            computed.update(zip(beside, beside_figures))
            writes.extend(beside_writes)
        for i, set_pending in enumerate(pending):
            if not whole_sets:
                answers[set_pending.slot] = computed[i]  # every unit computed, in the set's order
                continue
            if set_pending.kept is None:
                kept_figures = [frozen_figure(figure) for figure in computed[i]]
            else:
                kept_figures = list(set_pending.kept)
                for k, figure in zip(set_pending.changed, computed[i]):
                    kept_figures[k] = frozen_figure(figure)
            self.cache.put_set(set_key(units, set_pending.plan.metric, set_pending.plan.period, as_of, self.use_day_parts), watermark, kept_figures)
            answers[set_pending.slot] = kept_figures
        write_computed(self._sessions, writes.as_writes(), "computed figures and day parts")
        return answers, freshness

    def _kept_sets(
        self, units: list[str], wanted: Sequence[tuple[str, Period]], as_of: datetime | None, generation: int, watermark: Watermark, whole_sets: bool
    ) -> tuple[list[Sequence[dict[str, Any]]], list[_PendingSet]]:
        """The sets the whole-set cache answers (the others empty, to be filled in), and what each other
        set still needs: its units whose data moved since it was kept (all of them when it was not)."""
        answers: list[Sequence[dict[str, Any]]] = []
        pending: list[_PendingSet] = []
        # Sets kept by one request share their watermark: which units changed since is worked out once
        # for all of them (a Regionvy has 17 sets of 230 units).
        changed_since: dict[tuple[int, ...], list[int]] = {}
        for metric, period in wanted:
            kept = self.cache.get_set(set_key(units, metric, period, as_of, self.use_day_parts)) if whole_sets else None
            if kept is not None and kept[0] == watermark:
                self.cache.stats.set_hits += 1
                answers.append(kept[1])
                continue
            # A unit whose data version is the kept set's, under the same registry generation, has
            # had no commit since its figure was computed (the version was read before its rows).
            if kept is not None and kept[0][0] == generation:
                then = kept[0][1]
                changed = changed_since.get(then)
                if changed is None:
                    changed = changed_since[then] = [i for i, (old, new) in enumerate(zip(then, watermark[1])) if old != new]
                figures: Sequence[dict[str, Any]] | None = kept[1]
            else:
                changed, figures = list(range(len(units))), None
            pending.append(_PendingSet(len(answers), self._plan([units[i] for i in changed], metric, period, as_of), figures, changed))
            answers.append([])
        return answers, pending

    def _all_in_memory(self, plan: SetPlan, versions: dict[str, int], as_of: datetime | None) -> bool:
        return all(
            self.cache.holds(figure_key(unit, plan.metric, plan.period, as_of), versions[unit], settings_stamp(plan.configs[unit])) for unit in plan.units
        )

    def _figures_in_own_session(
        self, plans: list[tuple[SetPlan, dict[str, int]]], as_of: datetime | None, cached: bool, keep_in_memory: bool, now: datetime
    ) -> tuple[list[list[dict[str, Any]]], _Writes]:
        writes = _Writes()
        with self._reads() as session:
            return [self._figures(session, plan, versions, as_of, cached, keep_in_memory, now, writes) for plan, versions in plans], writes

    def _plan(self, units: list[str], metric: str, period: Period, as_of: datetime | None) -> SetPlan:
        configs = {unit: self._units.config(unit, period.end) for unit in units}
        return SetPlan(units, metric, period, configs, {unit: as_of or end_of_day(period.end, configs[unit].tz) for unit in units})

    def _figures(
        self,
        session: Session,
        plan: SetPlan,
        versions: dict[str, int],
        as_of: datetime | None,
        cached: bool,
        keep_in_memory: bool,
        now: datetime,
        writes: _Writes,
    ) -> list[dict[str, Any]]:
        """One set's figures (without `data`), unit by unit from the cache, the store or computed;
        `versions`: the units' dependency versions, read before any of their rows. What is to be
        written afterwards is added to `writes`."""
        units, metric, period, configs, moments = plan.units, plan.metric, plan.period, plan.configs, plan.moments

        def today(config: UnitConfig) -> date:
            return now.astimezone(config.tz).date()

        found: dict[str, dict[str, Any]] = {}
        storing: list[tuple[str, str, int, dict[str, Any]]] = []
        computed_parts: list[tuple[list[Any], dict[str, str]]] = []
        stamps = {unit: settings_stamp(configs[unit]) for unit in units}
        if cached:
            for unit in units:
                figure = self.cache.get(figure_key(unit, metric, period, as_of), versions[unit], stamps[unit])
                if figure is not None:
                    found[unit] = figure
        # Only figures of periods that have ended are stored: a running period changes with every
        # event, and storing it would only add a write to each live update.
        storable = [unit for unit in units if cached and as_of is None and unit not in found and period.end < today(configs[unit])]
        hashes = {unit: settings_hash(metric, stamps[unit]) for unit in storable}
        if storable:
            for unit, (stored_hash, version, figure) in load_stored(session, storable, metric, period).items():
                if stored_hash == hashes[unit] and version == versions[unit]:
                    found[unit] = figure
                    if keep_in_memory:
                        self.cache.put(figure_key(unit, metric, period, as_of), version, stamps[unit], figure)
        missing = [unit for unit in units if unit not in found]
        requests = [(unit, period, moments[unit]) for unit in missing]
        # Bulk work (keep_in_memory=False: the rollup job, reports) keeps no sums or open cases either:
        # a year of ended months for every unit would push the running day's parts out of `recent_parts`.
        kept_by = versions if keep_in_memory else None
        computed = self._compute_many(session, metric, requests, configs, stamps, cached, computed_parts, kept_by)
        for unit, figure in zip(missing, computed):
            found[unit] = figure
            if cached:
                if keep_in_memory:
                    self.cache.put(figure_key(unit, metric, period, as_of), versions[unit], stamps[unit], figure)
                if unit in hashes:
                    storing.append((unit, hashes[unit], versions[unit], figure))
        if storing:
            writes.stored.append((metric, period, storing))
        writes.parts.extend((metric, computed, part_hashes) for computed, part_hashes in computed_parts)
        return [found[unit] for unit in units]

    def _compute_many(
        self,
        session: Session,
        metric: str,
        requests: list[Request],
        configs: dict[str, UnitConfig],
        stamps: dict[str, Hashable],
        cached: bool,
        parts_to_keep: list[tuple[list[Any], dict[str, str]]],
        versions: dict[str, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Each (unit, period, moment) computed: telephone and assessment summed from day parts
        (`day_parts`), continuity from SQL sums, fixed doctor from one snapshot query for all units;
        with `cached=False` (the reference) every figure from its rows through the ledgers. `versions`:
        the units' dependency versions, read before their rows (continuity's sums and the open cases
        this process counted are kept under them, `recent_parts`)."""
        if not requests:
            return []
        if cached and self.use_day_parts and metric in PART_METRICS:
            hashes = {unit: settings_hash(metric, stamps[unit]) for unit, _, _ in requests}
            figures, computed = figures_from_parts(session, metric, requests, configs, hashes, self.kept_ledgers, self.recent_parts, versions)
            now = self._clock()
            computed = self.part_writes.worth_writing(metric, computed, lambda unit: now.astimezone(configs[unit].tz).date())
            if computed:
                parts_to_keep.append((computed, hashes))
            return figures
        if cached and self.use_day_parts and metric == "continuity":
            return continuity_figures(session, requests, configs, versions, self.recent_parts)
        if cached and self.use_day_parts and metric == "fixed_doctor":
            return self._fixed_doctor_figures(session, requests, configs)
        return [self._compute(session, unit, metric, period, moment, configs[unit]) for unit, period, moment in requests]

    def series(self, unit: str, metric: str, periods: Sequence[Period]) -> list[dict[str, Any]]:
        """`figure(unit, metric, p)` for each of `periods` (each as of its end, as the API's default),
        equal to asking one by one, but the stored rows are loaded once for all the periods that
        neither the cache nor the store can answer (a trend of 12 weeks and 12 months)."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; expected one of: {', '.join(METRICS)}")
        results: list[dict[str, Any] | None] = [None] * len(periods)
        to_store: dict[Period, tuple[str, str, int, dict[str, Any]]] = {}
        parts_to_keep: list[tuple[list[Any], dict[str, str]]] = []
        with self._reads() as session:
            freshness = self.freshness.of([unit], *self._activity(session, [unit], with_devices=True))[unit]
            now = self._clock()
            configs = [self._units.config(unit, period.end) for period in periods]
            stamps = [settings_stamp(config) for config in configs]
            moments = [end_of_day(period.end, config.tz) for period, config in zip(periods, configs)]
            versions = unit_dependency_versions(session, unit, [last_utc_date(moment) for moment in moments], metric)
            for i, period in enumerate(periods):
                results[i] = self.cache.get(figure_key(unit, metric, period, None), versions[i], stamps[i])
            ended = [i for i, period in enumerate(periods) if results[i] is None and period.end < now.astimezone(configs[i].tz).date()]
            hashes = {i: settings_hash(metric, stamps[i]) for i in ended}
            kept = load_stored_periods(session, unit, metric, [periods[i] for i in ended])
            for i in ended:
                stored = kept.get(periods[i])
                if stored is not None and stored[0] == hashes[i] and stored[1] == versions[i]:
                    results[i] = stored[2]
                    self.cache.put(figure_key(unit, metric, periods[i], None), versions[i], stamps[i], stored[2])
            missing = [i for i, figure in enumerate(results) if figure is None]
            if missing and self.use_day_parts and metric in (*PART_METRICS, "continuity"):
                configs_of = {unit: configs[missing[-1]]}
                requests = [(unit, periods[i], moments[i]) for i in missing]
                # One settings stamp for the unit: the figure of each period uses its own config, so
                # periods whose config differs from the last one's are computed from rows below.
                same = [i for i in missing if stamps[i] == stamps[missing[-1]]]
                figures = self._compute_many(
                    session, metric, [requests[missing.index(i)] for i in same], configs_of, {unit: stamps[missing[-1]]}, True, parts_to_keep
                )
                for i, figure in zip(same, figures):
                    self.cache.put(figure_key(unit, metric, periods[i], None), versions[i], stamps[i], figure)
                    if i in hashes:
                        to_store[periods[i]] = (unit, hashes[i], versions[i], figure)
                    results[i] = figure
                missing = [i for i in missing if results[i] is None]
            if missing:
                ledger = _covering_ledger(session, unit, metric, [periods[i] for i in missing], configs[missing[-1]])
                for i in missing:
                    period, config = periods[i], configs[i]
                    if ledger is None:
                        figure = self._compute(session, unit, metric, period, moments[i], config)
                    else:
                        figure = ledger.figure(unit, period, moments[i], config)
                        figure["definition_version"] = DEFINITION_VERSIONS[metric]
                    self.cache.put(figure_key(unit, metric, period, None), versions[i], stamps[i], figure)
                    if i in hashes:
                        to_store[period] = (unit, hashes[i], versions[i], figure)
                    results[i] = figure
        writes = _Writes([(metric, period, [row]) for period, row in to_store.items()], [(metric, *kept) for kept in parts_to_keep])
        write_computed(self._sessions, writes.as_writes(), "computed figures and day parts")
        return [{**figure, "data": dict(freshness)} for figure in results]  # type: ignore[dict-item]  # every period has a figure once the loop ends

    @staticmethod
    def _fixed_doctor_figures(session: Session, requests: list[Request], configs: dict[str, UnitConfig]) -> list[dict[str, Any]]:
        """The latest snapshot of every unit at a shared cutoff in one go (the same ledger computes each figure)."""
        cutoffs = [min(moment, end_of_day(period.end, configs[unit].tz)) for unit, period, moment in requests]
        ledgers: dict[tuple[str, datetime], Any] = {}
        for cutoff in set(cutoffs):
            units = sorted({unit for (unit, _, _), c in zip(requests, cutoffs) if c == cutoff})
            ledgers.update({(unit, cutoff): ledger for unit, ledger in load_latest_snapshots(session, units, cutoff).items()})
        figures = []
        for (unit, period, moment), cutoff in zip(requests, cutoffs):
            figure = ledgers[(unit, cutoff)].figure(unit, period, moment, configs[unit])
            figure["definition_version"] = DEFINITION_VERSIONS["fixed_doctor"]
            figures.append(figure)
        return figures

    @staticmethod
    def _compute(session: Session, unit: str, metric: str, period: Period, moment: datetime, config: UnitConfig) -> dict[str, Any]:
        if metric == "telephone":
            ledger: Any = load_calls(session, unit, period, config)
        elif metric == "assessment":
            ledger = load_cases(session, unit, period, moment, config)
        elif metric == "fixed_doctor":
            ledger = load_snapshots(session, unit, min(moment, end_of_day(period.end, config.tz)))
        else:
            ledger = load_visits(session, unit, period)
        figure = ledger.figure(unit, period, moment, config)
        figure["definition_version"] = DEFINITION_VERSIONS[metric]
        return figure

    @staticmethod
    def _activity(session: Session, units: list[str], with_devices: bool = False) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """The units' `unit_activity` rows and, `with_devices`, their devices in service (device,
        status), in one statement: on PostgreSQL every round trip of a live update counts."""
        activity: dict[str, Any] = {}
        devices: dict[str, list[Any]] = {}
        for row in session.execute(_activity_statement(with_devices), {"units": units}):
            if row[0] == 0:
                activity[row.unit] = row
            else:
                devices.setdefault(row.unit, []).append(row)
        return activity, devices


@lru_cache(maxsize=None)
def _activity_statement(with_devices: bool) -> Any:
    """Built once (the units are a bound parameter): building it at every call was a third of the
    3.4 ms that reading 230 units' activity and devices took on an idle PostgreSQL (2.3 ms now)."""
    # Plain rows, not ORM objects: building 230 objects per region figure cost more than the query.
    statement: Any = select(
        literal_column("0").label("part"),
        UnitActivity.unit,
        UnitActivity.version,
        UnitActivity.last_event_at_us,
        UnitActivity.last_received_at,
        null().label("device"),
        null().label("status"),
    ).where(one_of(UnitActivity.unit, "units"))
    if with_devices:
        # Three columns of the devices, not their ORM rows: each would carry its last heartbeat's JSON.
        in_service = select(literal_column("1"), DeviceRow.unit, null(), null(), null(), DeviceRow.device, DeviceRow.status)
        statement = union_all(statement, in_service.where(one_of(DeviceRow.unit, "units"), DeviceRow.retired_at.is_(None)))
    return statement


def _covering_ledger(session: Session, unit: str, metric: str, periods: list[Period], config: UnitConfig) -> Any:
    """One ledger holding every stored row that any of `periods` needs (each figure filters by its own
    period and moment, so extra rows change nothing); None for `fixed_doctor`, whose figure reads one
    snapshot row per period anyway."""
    covering = Period(min(p.start for p in periods), max(p.end for p in periods))
    if metric == "telephone":
        return load_calls(session, unit, covering, config)
    if metric == "assessment":
        # The cases open at the latest moment, plus those contacted or assessed in the covering
        # period: that includes every case open at an earlier period's end (assessed later, so inside it).
        return load_cases(session, unit, covering, end_of_day(covering.end, config.tz), config)
    if metric == "continuity":
        return load_visits(session, unit, covering, since=min(coc_window(p.end).start for p in periods))
    return None
