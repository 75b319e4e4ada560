"""Configuration errors name the variable, are ordinary exceptions in library code, and a clean exit in the CLI."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError, load_settings
from services.recall.main import RecallSettings
from wren.cli.main import main


def test_a_missing_variable_is_a_config_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WREN_ARTIFACTS", raising=False)
    with pytest.raises(ConfigError, match="missing required environment variable WREN_ARTIFACTS") as error:
        load_settings(RecallSettings)
    assert isinstance(error.value, ValueError) and not isinstance(error.value, SystemExit)
    with pytest.raises(ConfigError, match=r"WREN_MAX_K='many'"):
        load_settings(RecallSettings, artifacts="/nowhere", max_k="many")


def test_the_cli_prints_a_config_error_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WREN_MAX_K", "many")
    assert main(["serve", "recall", "--artifacts", "/nowhere"]) == 2
    err = capsys.readouterr().err
    assert "wren serve: error: configuration error: WREN_MAX_K='many'" in err and "Traceback" not in err
