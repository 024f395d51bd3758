"""The disclosure control's settings in hub.toml: read, checked, never switched off."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import ConfigError
from hub.stats.view import policy
from tests.stats.hubside import init_hub_dir


def test_perturbation_parameters_are_read_from_hub_toml(tmp_path: Path) -> None:
    """max_noise, variance and js reach the disclosure policy and its table."""
    settings = init_hub_dir(tmp_path, "max_noise = 4\nvariance = 1.5\njs = 3\nmin_offices = 2\n")
    p = policy(settings)
    assert (p.params.max_noise, p.params.variance, p.params.js, p.min_offices) == (4, 1.5, 3, 2)
    assert all(not 1 <= v <= 3 for v in p.table.distribution(1))


@pytest.mark.parametrize(
    ("stats", "message"),
    [
        ("js = 0\n", "stats.js must be at least 1"),
        ("js = 4\n", "js"),  # not below max_noise (4): a row would publish unperturbed
        ("max_noise = 0\n", "max_noise"),
        ("variance = nan\n", "variance"),
        ("variance = inf\n", "variance"),
        ("variance = 0.0\n", "variance"),
        ("variance = 17.0\n", "variance"),  # above max_noise squared
        ("k = 3\n", "replaced by the cell key method"),
        ('js = "2"\n', "must be of type int"),
        ("min_offices = 0\n", "min_offices"),
    ],
)
def test_settings_that_weaken_protection_are_refused(
    tmp_path: Path, stats: str, message: str
) -> None:
    """Values that would switch the protection off (or the old k) are refused clearly."""
    with pytest.raises(ConfigError, match=message):
        init_hub_dir(tmp_path, stats)
