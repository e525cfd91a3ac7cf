from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.shop.service import KEY_PREFIX
from kizuki.cli import app, parse_shop_id


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The CLI is configured by environment, like in production.
    database = tmp_path / "cli.db"
    monkeypatch.setenv("KIZUKI_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    monkeypatch.chdir(tmp_path)
    return database


def test_shop_and_key_creation_from_an_empty_database(cli_env: Path) -> None:
    runner = CliRunner()

    migrated = runner.invoke(app, ["migrate"])
    created = runner.invoke(app, ["shop", "create", "Kizuki Cosmetics"])
    shop_id = created.stdout.strip()
    key = runner.invoke(app, ["apikey", "create", "--shop", shop_id, "--role", "analyst"])

    assert migrated.exit_code == 0, migrated.output
    assert created.exit_code == 0, created.output
    assert parse_shop_id(shop_id).version == 7
    assert key.exit_code == 0, key.output
    assert key.stdout.strip().startswith(f"{KEY_PREFIX}_{parse_shop_id(shop_id).hex}_")


def test_duplicate_shop_name_is_a_clear_error(cli_env: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["migrate"])
    runner.invoke(app, ["shop", "create", "Same"])

    again = runner.invoke(app, ["shop", "create", "Same"])

    assert again.exit_code == 2
    assert "a shop named 'Same' exists" in again.output


@pytest.mark.parametrize("value", ["xyz", "U2hvcA", "Q3VzdG9tZXI6MDE5MmE"])
def test_bad_shop_ids_are_refused(cli_env: Path, value: str) -> None:
    result = CliRunner().invoke(app, ["apikey", "create", "--shop", value, "--role", "admin"])

    assert result.exit_code == 2
    assert "is not a shop ID" in result.output
