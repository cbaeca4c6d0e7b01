"""No secret in what the Dagster UI shows: secrets and credential-bearing URLs reach the
resources as ``dg.EnvVar`` (name shown, value resolved in the process), derived defaults
stay literal. The running stack is checked over GraphQL in tests/topology/test_production.py."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap, ResourceConfigEnvVarSnap
from dagster._serdes import serialize_value

from orchestration.definitions import build_definitions
from orchestration.defs.delivery.notifier import NotifierResource
from orchestration.defs.resources import CREDENTIAL_FIELDS, ReportStorageResource, from_env, resources_from_settings
from orchestration.settings import Settings

PASSWORD = "pw-unit-7c1e"


def _secret_env(tiny_warehouse: str, tmp_path: Path) -> dict[str, str]:
    values = {
        "LXP_LINK_SECRET": "link-secret-unit-4b9d0f2a6c8e1357",
        "LXP_NOTIFY_SECRET": "notify-secret-unit-8e2a4c6f0b1d3579",
        "LXP_NOTIFY_URL": f"https://hook:{PASSWORD}-n@platform.example/notify?token=tok-unit-51aa",
        "LXP_SMTP_URL": f"smtp+starttls://reports:{PASSWORD}-s@mail.example:587",
        "LXP_LEDGER_URL": f"sqlite:///{tmp_path / 'outbox.sqlite'}?pw={PASSWORD}-o",
        "LXP_WAREHOUSE_URL": tiny_warehouse,  # a usable warehouse: build_definitions reads it
    }
    assert {f"LXP_{f.upper()}" for f in CREDENTIAL_FIELDS} == set(values)
    return values


def test_secrets_from_the_environment_are_env_vars_in_every_dagster_snapshot(
    tiny_warehouse: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _secret_env(tiny_warehouse, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    repo = build_definitions(settings).get_repository_def()
    # What the webserver serves: resource details, launchpad defaults, job snapshots.
    text = serialize_value(RepositorySnap.from_def(repo))
    for name, value in env.items():
        if name != "LXP_WAREHOUSE_URL":
            assert value not in text, name
    assert PASSWORD not in text and "link-secret-unit" not in text and "notify-secret-unit" not in text
    snaps = {r.name: r for r in RepositorySnap.from_def(repo).resources}
    env_vars = {
        (resource, key): value.name
        for resource, snap in snaps.items()
        for key, value in snap.configured_values.items()
        if isinstance(value, ResourceConfigEnvVarSnap)
    }
    assert env_vars == {
        ("warehouse", "url"): "LXP_WAREHOUSE_URL",
        ("storage", "link_secret"): "LXP_LINK_SECRET",
        ("notifier", "ledger_url"): "LXP_LEDGER_URL",
        ("notifier", "notify_url"): "LXP_NOTIFY_URL",
        ("notifier", "notify_secret"): "LXP_NOTIFY_SECRET",
        ("notifier", "smtp_url"): "LXP_SMTP_URL",
    }

    # ... and each process that initializes a resource resolves the real value.
    @dg.asset
    def probe(notifier: NotifierResource, storage: ReportStorageResource) -> None:
        assert storage.link_secret == env["LXP_LINK_SECRET"]
        assert (notifier.notify_url, notifier.notify_secret) == (env["LXP_NOTIFY_URL"], env["LXP_NOTIFY_SECRET"])
        assert (notifier.smtp_url, notifier.ledger_url) == (env["LXP_SMTP_URL"], env["LXP_LEDGER_URL"])

    resources = {"notifier": NotifierResource.from_settings(settings), **resources_from_settings(settings)}
    assert dg.materialize([probe], resources=resources).success


def test_derived_defaults_and_explicit_values_stay_literal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable, nothing to reference: the SQLite outbox and the DuckDB warehouse under
    LXP_HOME, the published development secrets, empty URLs (channel off)."""
    for field in CREDENTIAL_FIELDS:
        monkeypatch.delenv(f"LXP_{field.upper()}", raising=False)
    settings = Settings(home=tmp_path)
    resources = {**resources_from_settings(settings), "notifier": NotifierResource.from_settings(settings)}
    assert resources["warehouse"].url == settings.warehouse and not isinstance(resources["warehouse"].url, dg.EnvVar)
    assert resources["notifier"].ledger_url == settings.ledger
    assert resources["storage"].link_secret == settings.link_secret == "dev-link-secret-change-me"
    assert resources["notifier"].notify_url == resources["notifier"].smtp_url == ""
    # A value that is not the environment's (a test's Settings(...)) is not replaced by it.
    monkeypatch.setenv("LXP_LINK_SECRET", "from-the-environment")
    assert from_env("LXP_LINK_SECRET", "explicit") == "explicit"
    assert isinstance(from_env("LXP_LINK_SECRET", "from-the-environment"), dg.EnvVar)
    assert from_env("LXP_LINK_SECRET", "from-the-environment", {"lxp_link_secret": "from-the-environment"}) == (
        dg.EnvVar("lxp_link_secret")
    )


def test_the_former_ledger_variable_is_an_alias_and_stays_an_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``LXP_OUTBOX_URL`` (the ledger's former name) still configures the ledger, and reaches Dagster
    as a reference to itself; ``LXP_LEDGER_URL`` wins when both are set."""
    old = f"sqlite:///{tmp_path / 'old.sqlite'}?pw={PASSWORD}-o"
    monkeypatch.delenv("LXP_LEDGER_URL", raising=False)
    monkeypatch.setenv("LXP_OUTBOX_URL", old)
    settings = Settings(home=tmp_path)
    assert settings.ledger_url == old and settings.ledger == old
    notifier = NotifierResource.from_settings(settings)
    assert isinstance(notifier.ledger_url, dg.EnvVar) and notifier.ledger_url == "LXP_OUTBOX_URL"
    new = f"sqlite:///{tmp_path / 'new.sqlite'}"
    monkeypatch.setenv("LXP_LEDGER_URL", new)
    assert Settings(home=tmp_path).ledger == new
