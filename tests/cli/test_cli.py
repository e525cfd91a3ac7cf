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


def test_generated_files_import_idempotently_and_score(cli_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["migrate"])
    shop_id = runner.invoke(app, ["shop", "create", "CSV shop"]).stdout.strip()
    files = tmp_path / "files"

    written = runner.invoke(app, ["demo-data", str(files), "--customers", "60", "--seed", "7"])
    first = runner.invoke(app, ["import", "--shop", shop_id, str(files)])
    second = runner.invoke(app, ["import", "--shop", shop_id, str(files)])
    scored = runner.invoke(app, ["score", "--shop", shop_id, "--out", str(tmp_path / "risk.csv")])

    assert written.exit_code == 0, written.output
    assert first.exit_code == 0, first.output
    assert "customers                   60 new" in first.stdout
    assert second.exit_code == 0, second.output
    assert "customers                    0 new         0 updated        60 unchanged" in (
        second.stdout
    )
    assert scored.exit_code == 0, scored.output
    assert scored.stdout.strip() == f"wrote 60 customers to {tmp_path / 'risk.csv'}"
    header = (tmp_path / "risk.csv").read_text().splitlines()[0]
    assert header.startswith("external_id,mall,probability")


def test_invalid_rows_reject_the_whole_import(cli_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["migrate"])
    shop_id = runner.invoke(app, ["shop", "create", "Bad CSV"]).stdout.strip()
    files = tmp_path / "bad"
    files.mkdir()
    (files / "orders.csv").write_text(
        "mall,order_id,customer_id,ordered_at,total_amount,quantity\n"
        "shopify,o1,c1,2024-03-01T10:00:00+09:00,3280,1\n"
        "shopify,o2,c1,2024-04-01T10:00:00+09:00,3280.5,1\n"
    )

    result = runner.invoke(app, ["import", "--shop", shop_id, str(files)])

    assert result.exit_code == 1
    assert "orders.csv:3: total_amount:" in result.output
