"""Configuration files: defaults, file, $DASTRAX_CONFIG and override precedence; errors
that name the file and key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dastrax
from dastrax.config.files import DEFAULT_CONFIG_PATH, ENV_VAR, config_path, load_config
from dastrax.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_env_config(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_conf_file_and_packaged_defaults_are_identical():
    assert (REPO / "conf" / "dastrax.toml").read_bytes() == DEFAULT_CONFIG_PATH.read_bytes()


def test_defaults():
    s = load_config()
    assert s.storage == ["./dastrax_data"]
    assert s.scheduler == "auto"
    assert s.chunk_target_size_mb == 200
    assert s.compressor == "blosc-lz4"
    assert s.progress is True and s.write_superruns is False
    assert s.plugins == [
        "dastrax.testutils:Records",
        "dastrax.testutils:Peaks",
        "dastrax.testutils:PeakClassification",
    ]
    assert s.config == {}
    assert config_path() == DEFAULT_CONFIG_PATH


def test_file_changes_only_its_keys(tmp_path):
    f = write(
        tmp_path / "my.toml",
        'storage = "/data/a"\nchunk_target_size_mb = 5\n[config]\nbonus_area = 3\n',
    )
    s = load_config(f)
    assert s.storage == ["/data/a"]
    assert s.chunk_target_size_mb == 5
    assert s.config == {"bonus_area": 3}
    assert s.scheduler == "auto"  # from the defaults
    assert len(s.plugins) == 3
    assert s.sources == (str(DEFAULT_CONFIG_PATH), str(f))


def test_env_var_names_the_file(tmp_path, monkeypatch):
    f = write(tmp_path / "env.toml", 'scheduler = "processes"\n')
    monkeypatch.setenv(ENV_VAR, str(f))
    assert config_path() == f
    assert load_config().scheduler == "processes"


def test_explicit_path_beats_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(write(tmp_path / "env.toml", 'scheduler = "processes"\n')))
    f = write(tmp_path / "explicit.toml", 'scheduler = "tcp://somewhere:8786"\n')
    assert load_config(f).scheduler == "tcp://somewhere:8786"


def test_overrides_beat_the_file(tmp_path, monkeypatch):
    f = write(
        tmp_path / "f.toml",
        'storage = "/from/file"\nscheduler = "processes"\n[config]\nbonus_area = 3\nn_chunks = 4\n',
    )
    monkeypatch.setenv(ENV_VAR, str(f))
    s = load_config(storage="/from/flag", scheduler=None, config={"bonus_area": 9})
    assert s.storage == ["/from/flag"]
    assert s.scheduler == "processes"  # None means "not given"
    assert s.config == {"bonus_area": 9, "n_chunks": 4}  # merged into the file's options


def test_storage_list_and_home(tmp_path):
    f = write(tmp_path / "f.toml", 'storage = ["~/dastrax", "s3://bucket/x"]\n')
    s = load_config(f)
    assert s.storage == [str(Path("~/dastrax").expanduser()), "s3://bucket/x"]


def test_context_from_config_end_to_end(tmp_path, monkeypatch):
    data = tmp_path / "data"
    f = write(
        tmp_path / "f.toml",
        f'storage = "{data}"\nchunk_target_size_mb = 0.01\ncompressor = "zstd"\n'
        "progress = false\n[config]\nbonus_area = 7\nn_chunks = 3\n",
    )
    st = dastrax.Context.from_config(f)
    assert st.context_config["chunk_target_size_mb"] == 0.01
    peaks = st.get_array("0", "peaks")
    assert len(peaks) == 30 and np.all(peaks["area"] == 8)
    meta = st.get_metadata("0", "peaks")
    assert meta["compressor"]["name"] == "zstd"
    assert st.is_stored("0", "peaks")
    assert any(p.name.startswith("0-peaks-") for p in data.iterdir())

    # $DASTRAX_CONFIG is used when no path is given; keyword arguments win over it
    monkeypatch.setenv(ENV_VAR, str(f))
    other = tmp_path / "other"
    st2 = dastrax.Context.from_config(storage=str(other), config={"bonus_area": 1})
    assert st2.storage[0].url == str(other)
    assert st2.config["n_chunks"] == 3 and st2.config["bonus_area"] == 1
    assert not st2.is_stored("0", "peaks")


def test_plugins_key_registers_exactly_those(tmp_path):
    f = write(tmp_path / "f.toml", 'plugins = ["dastrax.testutils:Records"]\n')
    st = dastrax.Context.from_config(f, storage=str(tmp_path / "d"), progress=False)
    assert sorted(st._registry.plugins) == ["records"]
    with pytest.raises(dastrax.DataNotAvailable, match="peaks"):
        st.key_for("0", "peaks")


@pytest.mark.parametrize(
    ("text", "key", "detail"),
    [
        ("storge = 'x'\n", "storge", "did you mean 'storage'"),
        ("storage = 1\n", "storage", "directory or URL"),
        ("storage = []\n", "storage", "directory or URL"),
        ("scheduler = 'bogus'\n", "scheduler", "local-cluster"),
        ("chunk_target_size_mb = -1\n", "chunk_target_size_mb", "positive"),
        ("chunk_target_size_mb = 'big'\n", "chunk_target_size_mb", "positive"),
        ("compressor = 'lzma'\n", "compressor", "unknown compressor"),
        ("progress = 'yes'\n", "progress", "true or false"),
        ("plugins = 'dastrax.testutils:Records'\n", "plugins", "list"),
        ("plugins = ['no_such_module_xyz:P']\n", "plugins", "cannot import"),
        ("plugins = ['dastrax.testutils:Nope']\n", "plugins", "has no 'Nope'"),
        ("plugins = ['dastrax.testutils']\n", "plugins", "module:Class"),
        ("plugins = ['dastrax.config:Settings']\n", "plugins", "not a dastrax.Plugin"),
        ("config = 3\n", "config", "table"),
    ],
)
def test_invalid_values_name_file_and_key(tmp_path, text, key, detail):
    f = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(f)
    msg = str(info.value)
    assert str(f) in msg
    assert repr(key) in msg
    assert detail in msg


def test_invalid_toml_names_the_file(tmp_path):
    f = write(tmp_path / "broken.toml", "storage = \n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(f)
    assert str(f) in str(info.value)


def test_missing_files(tmp_path, monkeypatch):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config(missing)
    assert str(missing) in str(info.value)
    monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(ConfigError, match=ENV_VAR):
        load_config()


def test_invalid_overrides_are_named():
    with pytest.raises(ConfigError, match="chunk_target_size_mb=.*positive"):
        load_config(chunk_target_size_mb=0)
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        load_config(colour="red")
    with pytest.raises(ConfigError, match="--scheduler"):
        load_config(_origin="command line", scheduler="nonsense")


def test_config_error_is_a_dastrax_error(tmp_path):
    with pytest.raises(dastrax.DastraxError):
        dastrax.Context.from_config(tmp_path / "missing.toml")
