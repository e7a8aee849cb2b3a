"""The embedded server's settings sized from memory and cores (no Postgres needed)."""

from __future__ import annotations

import pytest

from semsearch.embedded_tuning import GiB, MiB, Setting, machine, server_settings
from semsearch.errors import ConfigurationError


@pytest.mark.parametrize(
    ("memory", "cores", "expected"),
    [
        # the shared 24 GB / 2-core box: 2 GiB of buffers (not a quarter: 6 GB), one helper per index build
        (24 * GiB, 2, ("2048MB", "18432MB", "1024MB", "1")),
        # a 4 GB laptop: a quarter and a sixteenth of memory
        (4 * GiB, 4, ("1024MB", "3072MB", "256MB", "2")),
        # a 1 GB box, one core: Postgres' own minimum buffers, no parallel build
        (1 * GiB, 1, ("256MB", "768MB", "64MB", "0")),
        (512 * MiB, 1, ("128MB", "384MB", "64MB", "0")),
        # a large server: the caps
        (256 * GiB, 64, ("2048MB", "196608MB", "1024MB", "4")),
    ],
)
def test_the_default_profile_sizes_a_quarter_of_memory_within_caps(memory, cores, expected):
    names = ("shared_buffers", "effective_cache_size", "maintenance_work_mem", "max_parallel_maintenance_workers")
    assert server_settings(memory, cores) == dict(zip(names, expected, strict=True))


@pytest.mark.parametrize(
    ("memory", "cores", "buffers", "maintenance"),
    [(24 * GiB, 2, "256MB", "256MB"), (8 * GiB, 2, "128MB", "128MB"), (2 * GiB, 1, "128MB", "64MB")],
)
def test_the_small_profile_of_the_test_server_stays_small(memory, cores, buffers, maintenance):
    got = server_settings(memory, cores, profile="small")
    assert (got["shared_buffers"], got["maintenance_work_mem"]) == (buffers, maintenance)
    assert got["effective_cache_size"] == f"{memory * 3 // 4 // MiB}MB"  # an estimate: it allocates nothing


def test_an_unknown_profile_is_refused():
    with pytest.raises(ConfigurationError, match="expected a tuning profile in"):
        server_settings(GiB, 1, profile="huge")


def test_the_machine_is_measured():
    memory, cores = machine()
    assert memory > 256 * MiB and cores >= 1


def test_a_setting_says_who_set_it():
    assert Setting("shared_buffers", "2GB", "semsearch", False).describe() == (
        "shared_buffers: 2GB (sized for this machine)"
    )
    assert Setting("shared_buffers", "128MB", "semsearch", True).describe() == (
        "shared_buffers: 128MB (sized for this machine, takes effect at the next start)"
    )
    assert Setting("maintenance_work_mem", "64MB", "yours", False).describe() == (
        "maintenance_work_mem: 64MB (set by you: left alone)"
    )
