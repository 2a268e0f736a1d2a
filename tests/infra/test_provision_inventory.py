"""Inventories load, and mistakes in them are refused on load with a message naming them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.inventory import INVENTORIES, InventoryError, load


@pytest.mark.parametrize("name", ["production", "staging", "lab"])
def test_every_host_has_a_role_and_is_debian13(name: str) -> None:
    inv = load(name)
    assert inv.hosts
    for host in inv.hosts:
        assert host.roles
        assert host.name.startswith(f"{inv.prefix}-")
    assert inv.data.location == "hel1"


@pytest.fixture
def inventories(tmp_path: Path) -> Path:
    shutil.copytree(INVENTORIES / "group_data", tmp_path / "group_data",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return tmp_path


def write(directory: Path, body: str) -> None:
    (directory / "lab.py").write_text(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('edge = ["cloop-lab-web-1"]\ndebian13 = []\n',
         "host cloop-lab-web-1 is not in group debian13"),
        ('web = ["cloop-lab-web-1"]\ndebian13 = ["cloop-lab-web-1"]\n', "unknown group(s) ['web']"),
        ('debian13 = ["cloop-lab-web-1"]\n', "host cloop-lab-web-1 has no role"),
        ('db = ["prod-db-1"]\ndebian13 = ["prod-db-1"]\n', "must start with cloop-lab-"),
        ('db = ["Bad_Name"]\n', "invalid host name 'Bad_Name'"),
    ],
)  # fmt: skip
def test_wrong_inventories_are_refused(inventories: Path, body: str, message: str) -> None:
    write(inventories, body)
    with pytest.raises(InventoryError) as refused:
        load("lab", inventories)
    assert message in str(refused.value)


def test_wrong_group_data_names_the_field(inventories: Path) -> None:
    write(inventories, 'db = ["cloop-lab-db-1"]\ndebian13 = ["cloop-lab-db-1"]\n')
    all_py = inventories / "group_data" / "all.py"
    all_py.write_text(all_py.read_text().replace('"country": "NL"', '"country": "nl"'))
    with pytest.raises(InventoryError, match=r"all\.py: subprocessors\.1\.country: String should"):
        load("lab", inventories)


def test_unknown_inventory_lists_the_known_ones() -> None:
    with pytest.raises(InventoryError, match="known: lab, production, staging"):
        load("prod")
