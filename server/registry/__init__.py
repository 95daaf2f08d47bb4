"""The unit and device registry: units with their settings and targets, the devices that may publish for
them, and the directory the metric rules read settings from. The API and `vardkoll admin` both call here."""

from .devices import BadDeviceId, Registration, UnknownDevice, register_device, registered_device, unit_devices
from .directory import UnitDirectory, UnitEntry
from .regions import UnknownBenchmark, benchmarks_on, region_benchmarks, remove_benchmark, set_benchmark
from .schemas import BenchmarkCreate, BenchmarkPublic, HsaId, TargetCreate, TargetPublic, UnitCreate, UnitPublic, UnitUpdate
from .units import (
    RegistryConflict,
    UnknownTarget,
    UnknownUnit,
    add_unit,
    registered_unit,
    registered_units,
    remove_target,
    remove_unit,
    set_target,
    unit_targets,
    update_unit,
)

__all__ = [
    "BadDeviceId",
    "BenchmarkCreate",
    "BenchmarkPublic",
    "UnknownBenchmark",
    "benchmarks_on",
    "region_benchmarks",
    "remove_benchmark",
    "set_benchmark",
    "HsaId",
    "Registration",
    "RegistryConflict",
    "TargetCreate",
    "TargetPublic",
    "UnitCreate",
    "UnitDirectory",
    "UnitEntry",
    "UnitPublic",
    "UnitUpdate",
    "UnknownDevice",
    "UnknownTarget",
    "UnknownUnit",
    "add_unit",
    "register_device",
    "registered_device",
    "registered_unit",
    "registered_units",
    "remove_target",
    "remove_unit",
    "set_target",
    "unit_devices",
    "unit_targets",
    "update_unit",
]
