"""The unit directory's units (server/registry/directory.py): plain read-only copies of the registry's
rows, a region's in unit order, and a change in the registry shown after the next load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vardkoll.server.registry import UnitDirectory, UnitEntry
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import UnitRow


def test_an_entry_has_every_column_of_the_row() -> None:
    # A column added to the table and not to the entry would be missing from every page that reads it.
    assert [f.name for f in dataclasses.fields(UnitEntry)] == [c.name for c in UnitRow.__table__.columns]  # type: ignore[attr-defined]  # SQLModel's table


@pytest.fixture
def services(tmp_path: Path) -> Services:
    services = build_services(ServerSettings(database_url=f"sqlite:///{tmp_path / 'units.sqlite'}"), apply_migrations=True)
    with services.sessions.begin() as session:
        session.add_all(
            [
                UnitRow(unit="SE2321000016-B002", name="Vårdcentral Björk", region="Region Norr", ownership="privat", listed_patients=9000),
                UnitRow(unit="SE2321000016-A001", name="Vårdcentral Ask", region="Region Norr", opening_hours='{"mon": [["08:00", "17:00"]]}'),
                UnitRow(unit="SE2321000016-C003", name="Vårdcentral Ceder", region="Region Syd"),
            ]
        )
    services.units.invalidate()
    return services


@pytest.fixture
def directory(services: Services) -> UnitDirectory:
    return services.units


def test_a_region_has_its_units_in_unit_order_with_their_fields(directory: UnitDirectory) -> None:
    north = directory.rows_of_region("Region Norr")
    assert [entry.unit for entry in north] == ["SE2321000016-A001", "SE2321000016-B002"]
    assert north[1] == UnitEntry(
        unit="SE2321000016-B002",
        name="Vårdcentral Björk",
        region="Region Norr",
        time_zone="Europe/Stockholm",
        opening_hours=None,
        unreached_callback_counts=True,
        ownership="privat",
        municipality_code=None,
        listed_patients=9000,
    )
    assert directory.units_of_region("Region Norr") == ["SE2321000016-A001", "SE2321000016-B002"]
    assert directory.rows_of_region("Region Väst") == [] and directory.units_of_region("Region Väst") == []
    assert directory.row("SE2321000016-C003") == directory.rows_of_region("Region Syd")[0]
    assert directory.row("SE2321000016-X999") is None


def test_an_entry_cannot_be_changed_and_a_caller_cannot_change_the_region(directory: UnitDirectory) -> None:
    north = directory.rows_of_region("Region Norr")
    with pytest.raises(dataclasses.FrozenInstanceError):
        north[0].name = "Annat namn"  # type: ignore[misc]  # what the test proves refused
    north.clear()
    assert len(directory.rows_of_region("Region Norr")) == 2


def test_a_unit_moved_to_another_region_shows_after_the_next_load(services: Services, directory: UnitDirectory) -> None:
    directory.rows_of_region("Region Norr")  # loaded
    with services.sessions.begin() as session:
        moved = session.get(UnitRow, "SE2321000016-A001")
        assert moved is not None
        moved.region = "Region Syd"
    assert [entry.unit for entry in directory.rows_of_region("Region Norr")] == ["SE2321000016-A001", "SE2321000016-B002"]  # within the TTL
    directory.invalidate()
    assert [entry.unit for entry in directory.rows_of_region("Region Norr")] == ["SE2321000016-B002"]
    assert [entry.unit for entry in directory.rows_of_region("Region Syd")] == ["SE2321000016-A001", "SE2321000016-C003"]
