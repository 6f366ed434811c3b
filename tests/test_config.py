from __future__ import annotations

from pathlib import Path

import pytest

from ebook2audio.config import load_settings, parse_chapter_selection
from ebook2audio.errors import ConfigError


def test_layers_defaults_file_env_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('format = "mp3"\nspeed = 1.2\nworkers = 3\nvoice = "a"\n')
    env = {"EBOOK2AUDIO_WORKERS": "4", "EBOOK2AUDIO_VOICE": "b", "XDG_CACHE_HOME": str(tmp_path)}
    s = load_settings({"voice": "c", "format": None}, env=env, config_file=cfg)
    assert s.format == "mp3"  # file
    assert s.speed == 1.2  # file
    assert s.workers == 4  # env beats file
    assert s.voice == "c"  # flag beats env
    assert s.work_dir == tmp_path / "ebook2audio" / "jobs"
    assert s.sentence_pause_ms == 300  # default


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"format": "xyz"}, "unknown output format"),
        ({"speed": 9.0}, "speed"),
        ({"device": "tpu"}, "device"),
        ({"granularity": "word"}, "granularity"),
        ({"workers": "many"}, "invalid value"),
    ],
)
def test_bad_settings_are_user_errors(flags: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(flags, env={})


def test_bad_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("nonsense = = =")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, env={}, config_file=cfg)
    cfg.write_text('colour = "blue"')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({}, env={}, config_file=cfg)


def test_env_booleans() -> None:
    assert load_settings({}, env={"EBOOK2AUDIO_KEEP_WORK": "yes"}).keep_work is True
    assert load_settings({}, env={"EBOOK2AUDIO_SUBTITLES": "0"}).subtitles is False


def test_chapter_selection() -> None:
    assert parse_chapter_selection("", 3) == [0, 1, 2]
    assert parse_chapter_selection("1-3,7", 10) == [0, 1, 2, 6]
    assert parse_chapter_selection("2,2,3-", 4) == [1, 2, 3]
    for bad in ("0", "5", "3-2", "x"):
        with pytest.raises(ConfigError):
            parse_chapter_selection(bad, 4)
