"""Spaces and server settings, without a browser: the settings read from the environment and secrets, two spaces
that cannot see each other's runs or data, a publication that others open read-only, ids that never reach outside
their folders, and the disk cleanup that removes the oldest unpublished runs only (vae_tfp.spaces, vae_tfp.settings).
No TensorFlow: runs are written as files."""

import dataclasses
import io
import json
import os
import stat

import numpy as np
import pytest

from vae_tfp import settings as S
from vae_tfp import spaces
from vae_tfp.config import RunConfig
from vae_tfp.datasets import uploads
from vae_tfp.datasets.user import dataset_from_upload
from vae_tfp.jobs.limits import default_running
from vae_tfp.runs import create_run

INFO = {"dataset": "digits", "kind": "image", "event_shape": [8, 8], "levels": None, "representation": "binary",
        "note": "", "n_train": 1500, "n_test": 297, "label_names": None}


def shared(tmp_path, **env) -> S.Settings:
    settings, warnings = S.read_settings({"VAE_TFP_MODE": "shared", "VAE_TFP_HOME": str(tmp_path / "home"), **env})
    assert warnings == []
    return settings


SMALL = RunConfig(epochs=3)


def fake_run(root, name, *, config=SMALL, status="completed", weights=True, size=0, info=INFO):
    run = create_run(config, root, name, exact=True)
    run.write_data_info({**info, "dataset": config.dataset})
    run.append_history({"kind": "test", "step": 3, "epoch": 1, "elbo": -40.0, "reconstruction": -38.0, "kl": 2.0})
    run.update_metrics(status=status, test_elbo=-40.0)
    if weights:
        run.weights_path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * size)
    return run


# --- settings -------------------------------------------------------------------------------------------------------
def test_local_mode_is_the_default_and_has_no_caps():
    settings, warnings = S.read_settings({})
    assert settings.mode == "local" and not settings.shared and warnings == []
    assert settings.caps() == {} and settings.config_problem(RunConfig(epochs=10_000, latent_dim=512)) == ""
    assert settings.job_limits() == S.JobLimits(max_running=default_running(), max_queued=16, max_per_session=None)


def test_shared_mode_has_safe_defaults_and_each_limit_comes_from_the_environment(tmp_path):
    default = shared(tmp_path)
    assert default.caps() == {"epochs": 200, "latent_dim": 32} and default.max_upload_mb == 50
    assert default.job_limits() == S.JobLimits(max_running=default_running(), max_queued=8, max_per_session=1)
    env = {option.env: value for option, value in (
        (S.OPTIONS["max_jobs"], "3"), (S.OPTIONS["max_queue"], "0"), (S.OPTIONS["max_jobs_per_session"], "none"),
        (S.OPTIONS["max_epochs"], "7"), (S.OPTIONS["max_latent_dim"], "4"), (S.OPTIONS["max_upload_mb"], "9"),
        (S.OPTIONS["max_examples"], "1_000"), (S.OPTIONS["max_dataset_mb"], "5"),
        (S.OPTIONS["max_uploads_per_session"], "2"), (S.OPTIONS["max_runs_mb"], "100"))}
    s = shared(tmp_path, **env)
    assert (s.max_jobs, s.max_queue, s.max_jobs_per_session, s.max_epochs, s.max_latent_dim, s.max_upload_mb,
            s.max_examples, s.max_dataset_mb, s.max_uploads_per_session, s.max_runs_mb) == \
        (3, 0, None, 7, 4, 9, 1000, 5, 2, 100)
    assert s.upload_limits().max_file_bytes == 9 * 2**20 and s.upload_limits().max_examples == 1000
    assert s.offered("epochs", (1, 10_000)) == (1, 7) and s.offered("latent_dim", (1, 64)) == (1, 4)
    problem = s.config_problem(RunConfig(epochs=20, latent_dim=8))
    assert "epochs=20 is over this server's limit of 7 (epochs)" in problem
    assert "latent_dim=8 is over this server's limit of 4 (latent dimensions)" in problem
    with pytest.raises(ValueError, match="epochs=20 is over"):
        s.check_config(RunConfig(epochs=20))
    lines = "\n".join(s.describe())
    assert "epochs per training: 7" in lines and "disk for runs: 100 MB (the oldest unpublished runs" in lines
    assert "trainings per session (running or queued): no limit" in lines


def test_a_shared_server_refuses_configs_that_name_a_file(tmp_path):
    s = shared(tmp_path)
    assert "neither built in nor uploaded" in s.config_problem(RunConfig(dataset="/etc/passwd.npz"))
    assert s.config_problem(RunConfig(dataset="upload:faces")) == ""
    assert S.read_settings({})[0].config_problem(RunConfig(dataset="/home/me/data.npz")) == ""  # local: the CLI's way


def test_secrets_are_read_and_the_environment_wins(tmp_path):
    s, _ = S.read_settings({}, {"vae_tfp": {"MODE": "shared", "max_epochs": 5}, "VAE_TFP_MAX_LATENT": 3})
    assert s.shared and s.max_epochs == 5 and s.max_latent_dim == 3
    s, _ = S.read_settings({"VAE_TFP_MAX_EPOCHS": "9"}, {"VAE_TFP_MODE": "shared", "VAE_TFP_MAX_EPOCHS": 5})
    assert s.shared and s.max_epochs == 9


@pytest.mark.parametrize("env, words", [
    ({"VAE_TFP_MODE": "public"}, "VAE_TFP_MODE='public' is not a mode; allowed: local, shared; using local mode"),
    ({"VAE_TFP_MODE": "shared", "VAE_TFP_MAX_EPOCHS": "lots"}, "VAE_TFP_MAX_EPOCHS='lots' is not a whole number"),
    ({"VAE_TFP_MODE": "shared", "VAE_TFP_MAX_JOBS": "none"}, "VAE_TFP_MAX_JOBS='none': this limit must be a number"),
    ({"VAE_TFP_MODE": "shared", "VAE_TFP_MAX_LATENT": "0"}, "VAE_TFP_MAX_LATENT='0' is below 1"),
])
def test_a_bad_setting_is_named_and_the_default_applies(env, words):
    settings, warnings = S.read_settings(env)
    assert len(warnings) == 1 and words in warnings[0]
    default = S.read_settings({"VAE_TFP_MODE": settings.mode})[0]
    assert settings == default


def test_the_readme_documents_every_setting():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert S.table() in readme  # the table as `python -m vae_tfp.settings` prints it: every variable, both defaults
    for option in S.OPTIONS.values():
        assert f"`{option.env}`" in readme, option.env


# --- spaces ---------------------------------------------------------------------------------------------------------
def test_two_spaces_see_neither_each_others_runs_nor_data(tmp_path):
    s = shared(tmp_path)
    a, b = spaces.open_space(s, spaces.new_key()), spaces.open_space(s, spaces.new_key())
    assert a.runs_root != b.runs_root and a.data_root != b.data_root and a.id != b.id
    fake_run(a.runs_root, "mine")
    x = np.random.default_rng(0).integers(0, 256, (30, 8, 8))
    buffer = io.BytesIO()
    np.savez(buffer, x=x)
    name = a.add_dataset(dataset_from_upload(buffer.getvalue(), "faces.npz", s.upload_limits()), "faces")
    assert [r["name"] for r in a.runs()] == ["mine"] and b.runs() == []
    assert [d["name"] for d in a.datasets()] == [name] and b.datasets() == []
    with pytest.raises(spaces.SpaceError, match="no run 'mine' in your space"):
        b.run("mine")
    with pytest.raises(ValueError, match="no uploaded data set"):
        b.load_dataset(name)
    again = spaces.open_space(s, a.key)  # a reload: the same key opens the same space
    assert [r["name"] for r in again.runs()] == ["mine"] and again.datasets() == a.datasets()


def test_keys_and_space_ids(tmp_path):
    s = shared(tmp_path)
    keys = {spaces.new_key() for _ in range(200)}
    assert len(keys) == 200 and all(spaces.valid_key(k) and len(k) == 32 for k in keys)
    key = sorted(keys)[0]
    space = spaces.open_space(s, key)
    assert space.id == spaces.space_id(key) and key not in str(space.runs_root)  # the folder never shows the key
    assert space.runs_root.parent.parent == tmp_path / "home" / "spaces"
    for bad in (None, "", "short", "../../../../etc/passwd-xxxxxxxxxxxxxxxxxxxxxxxx", "a" * 31, "a" * 65, "ä" * 40):
        with pytest.raises(spaces.SpaceError, match="not valid"):
            spaces.open_space(s, bad)


def test_a_published_run_opens_read_only_in_another_space(tmp_path):
    s = shared(tmp_path)
    a, b = spaces.open_space(s, spaces.new_key()), spaces.open_space(s, spaces.new_key())
    run = fake_run(a.runs_root, "mine", status="stopped", size=1000)
    (run.path / "checkpoint").mkdir()
    (run.path / "checkpoint" / "state.json").write_text(json.dumps({"step": 3, "epoch": 1}))
    assert a.access("mine") == spaces.Access(resume=True, delete=True, publish=True, owned=True)
    pid = a.publish("mine")
    ref = spaces.published_ref(pid)
    assert len(pid) == 22 and a.runs()[0]["published"] == pid

    access = b.access(ref)
    assert access.view and access.download and not (access.resume or access.delete or access.publish)
    for action in ("resume", "delete", "publish"):
        with pytest.raises(spaces.SpaceError, match=f"may not {action}"):
            b.require(ref, action)
    copy = b.run(ref)
    assert copy.config() == run.config() and copy.history() == run.history()
    assert copy.weights_path.read_bytes() == run.weights_path.read_bytes()
    assert not (copy.path / "checkpoint").exists()  # nothing to resume from
    for path in [copy.path, *copy.path.rglob("*")]:  # the files cannot be overwritten
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), path
    assert b.published_row(ref)["name"] == "mine" and b.runs() == []  # opened by link, not part of b's space
    zipped = b.export_bundle(ref)  # download works
    assert zipped[:2] == b"PK"

    assert a.publish("mine") == pid  # publishing again keeps the link
    a.unpublish("mine")
    with pytest.raises(spaces.SpaceError, match="no published run"):
        b.run(ref)
    pid2 = a.publish("mine")
    assert pid2 != pid
    a.delete("mine")
    assert a.runs() == [] and not spaces.published_path(s, pid2).exists()


@pytest.mark.parametrize("pid", ["../spaces", "..%2F..%2Fetc", "a" * 21, "a/" * 11, "", "published:x"])
def test_a_publication_id_never_leaves_its_folder(tmp_path, pid):
    s = shared(tmp_path)
    with pytest.raises(spaces.SpaceError, match="not a publication id"):
        spaces.open_space(s, spaces.new_key()).run(spaces.published_ref(pid))


def test_a_run_name_never_leaves_the_space(tmp_path):
    space = spaces.open_space(shared(tmp_path), spaces.new_key())
    for name in ("../x", "/etc", ".."):
        with pytest.raises(spaces.SpaceError):
            space.run(name)


def test_a_published_run_on_uploaded_data_carries_its_test_split(tmp_path):
    s = shared(tmp_path)
    a, b = spaces.open_space(s, spaces.new_key()), spaces.open_space(s, spaces.new_key())
    x = np.random.default_rng(0).integers(0, 256, (40, 8, 8))
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=np.arange(40) % 2)
    data = dataset_from_upload(buffer.getvalue(), "faces.npz", s.upload_limits())
    name = a.add_dataset(data, "faces")
    fake_run(a.runs_root, "on-faces", config=RunConfig(dataset=name, epochs=2),
             info={**INFO, "levels": None, "n_train": 36, "n_test": 4})
    copy = b.run(spaces.published_ref(a.publish("on-faces")))
    assert copy.config().dataset == "bundle:faces" and copy.data_info()["dataset"] == "bundle:faces"
    carried = b.run_dataset(copy)
    np.testing.assert_array_equal(carried.x_test, data.x_test)
    np.testing.assert_array_equal(carried.y_test, data.y_test)
    a.remove_dataset(name)  # the owner's data goes; the publication keeps its own copy
    np.testing.assert_array_equal(b.run_dataset(copy).x_test, data.x_test)
    with pytest.raises(ValueError, match="cannot be read any more"):  # the owner's run cannot be shared any more
        a.publish("on-faces")


def test_local_mode_is_the_runs_folder_as_before(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_TFP_RUNS", str(tmp_path / "runs"))
    local = spaces.open_space(S.read_settings({"VAE_TFP_UPLOADS": str(tmp_path / "up")})[0], "ignored")
    assert local.runs_root == tmp_path / "runs" and local.data_root == tmp_path / "up" and not local.shared
    fake_run(local.runs_root, "cli-run", status="stopped")
    access = local.access("cli-run")
    assert access.owned and access.delete and not access.publish
    with pytest.raises(spaces.SpaceError, match="only on a shared server"):
        local.publish("cli-run")


# --- disk -----------------------------------------------------------------------------------------------------------
def test_the_disk_limit_removes_the_oldest_unpublished_runs_only(tmp_path):
    s = shared(tmp_path, VAE_TFP_MAX_RUNS_MB="1")
    a, b = spaces.open_space(s, spaces.new_key()), spaces.open_space(s, spaces.new_key())
    now = 1_000_000.0
    runs = {}
    for space, name, age_h in ((a, "a-oldest", 50), (b, "b-old", 40), (a, "a-published", 60), (b, "b-newer", 30),
                               (a, "a-recent", 0.01)):
        runs[name] = fake_run(space.runs_root, name, size=240 * 1024)
        if name == "a-published":
            a.publish(name)  # a publication counts on the disk too, and is never removed
        for path in [runs[name].path, *runs[name].path.rglob("*")]:
            os.utime(path, (now - age_h * 3600, now - age_h * 3600))
    report = spaces.enforce_disk_limit(s, now=now)  # 6 x 240 KB held, 1 MB allowed: the two oldest go
    assert [p.rsplit("/", 1)[1] for p in report.removed] == ["a-oldest", "b-old"] and not report.over
    assert {r["name"] for r in a.runs()} == {"a-published", "a-recent"} and {r["name"] for r in b.runs()} == {"b-newer"}
    assert report.used_bytes <= 2**20
    kept = spaces.enforce_disk_limit(s, now=now)  # under the limit: nothing more goes
    assert kept.removed == []

    tight = dataclasses.replace(s, max_runs_mb=0)  # nothing may stay: only what is protected is left
    report = spaces.enforce_disk_limit(tight, keep=[b.run("b-newer").path], now=now)
    assert report.removed == [] and report.over and "disk for runs is full" in report.message()
    assert {r["name"] for r in a.runs()} == {"a-published", "a-recent"}  # published, and written just now


def test_no_limit_removes_nothing(tmp_path):
    s = shared(tmp_path, VAE_TFP_MAX_RUNS_MB="none")
    space = spaces.open_space(s, spaces.new_key())
    fake_run(space.runs_root, "r", size=10_000)
    report = spaces.enforce_disk_limit(s, now=10**12)
    assert report.removed == [] and not report.over and report.used_bytes > 10_000


def test_carried_names_never_hold_a_path():
    assert uploads.carried_name("upload:faces") == "bundle:faces"
    assert uploads.carried_name("/home/me/secret folder/data.npz") == "bundle:data"
    assert uploads.carried_name("C:\\data\\x.npz") == "bundle:x"
    assert uploads.carried_name("upload:faces.v2") == "bundle:faces.v2"
