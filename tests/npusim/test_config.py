"""Presets load with every field typed; overrides by dotted name are validated."""

import re
from importlib import resources

import pytest

from isa.types import Space
from npusim.config import ConfigError, available_presets, keys, load_preset, parse_override


def test_default_preset_gives_the_core_limits():
    limits = load_preset("910b2").core_limits()
    assert limits.capacity[Space.L0A] == 64 * 1024 and limits.capacity[Space.UB] == 192 * 1024
    assert limits.alignment[Space.L0B] == 512 and limits.alignment[Space.L0C] == 64
    assert limits.num_events == 8
    assert "910b2" in available_presets()


CITED = re.compile(r"\[[A-Za-z-]+\]|assumption|third-party|fitted to")


def test_every_preset_number_cites_a_source_or_says_assumption():
    for name in available_presets():
        lines = (resources.files("npusim") / "presets" / f"{name}.toml").read_text().splitlines()
        for at, line in enumerate(lines):
            body, _, comment = line.partition("#")
            if "=" in body and any(ch.isdigit() for ch in body.split("=", 1)[1]):
                # The line's own comment cites, or the comment block opening its group does.
                assert CITED.search(comment) or _group_comment_cites(lines, at), f"{name}: uncited: {line}"


def _group_comment_cites(lines: list[str], at: int) -> bool:
    for prev in reversed(lines[:at]):
        if prev.startswith("#"):
            return bool(CITED.search(prev))
        if prev.startswith("[") or not prev.strip():
            return False
    return False


def test_replace_by_dotted_name_and_errors():
    config = load_preset("910b2")
    bigger = config.replace({"buffers.ub_bytes": 262144})
    assert bigger.buffers.ub_bytes == 262144 and config.buffers.ub_bytes == 196608
    with pytest.raises(ConfigError, match="unknown config key 'buffers.ub'; did you mean: buffers.ub_bytes"):
        config.replace({"buffers.ub": 1})
    with pytest.raises(ConfigError, match="clock_ghz must be a number, got 'fast'"):
        config.replace({"clock_ghz": "fast"})
    with pytest.raises(ConfigError, match="must be an integer, got 1.5"):
        config.replace({"buffers.l1_bytes": 1.5})
    with pytest.raises(ConfigError, match=r"l1_bytes must be an integer from 1 to 16777216 \(16 MiB\)"):
        config.replace({"buffers.l1_bytes": -1})
    for bad in ("nan", "inf"):
        with pytest.raises(ConfigError, match=f"gbps must be a number from 0.001 to 1000000 GB/s, got {bad}"):
            config.replace({"hbm.bandwidth_gbps": float(bad)})
    with pytest.raises(ConfigError, match=r"frontend.queue_depth must be an integer from 1 to 65536, got 0"):
        config.replace({"frontend.queue_depth": 0})
    assert config.replace({"sync.flag_cycles": 0}).sync.flag_cycles == 0  # zero is a valid latency
    with pytest.raises(ConfigError, match=r"valid keys: mte2.latency_cycles, .*mte2.row_cycles \("):
        config.replace({"mte2.nope": 1})  # nothing close: the section's keys


def test_parse_override_types_values_from_text():
    config = load_preset()
    assert parse_override("buffers.ub_bytes=0x40000", config) == ("buffers.ub_bytes", 262144)
    assert parse_override("clock_ghz=1.5", config) == ("clock_ghz", 1.5)
    with pytest.raises(ConfigError, match="takes int values, got 'big'"):
        parse_override("buffers.ub_bytes=big", config)
    with pytest.raises(ConfigError, match="must look like key=value"):
        parse_override("buffers.ub_bytes", config)
    with pytest.raises(ConfigError, match="is a section"):
        parse_override("buffers=1", config)


def test_unknown_preset_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'nope'; available: .*910b2"):
        load_preset("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_preset(bad)
    partial = tmp_path / "partial.toml"
    partial.write_text('name = "x"\ndescription = "y"\nclock_ghz = 1.0\n[sync]\nevent_ids = 8\n')
    with pytest.raises(ConfigError, match=r"partial.toml: missing key\(s\) chip, frontend, buffers"):
        load_preset(partial)

    extra = tmp_path / "extra.toml"  # the shipped preset ends in [l2]: the key lands there
    extra.write_text((resources.files("npusim") / "presets" / "910b2.toml").read_text() + "extra = 1\n")
    with pytest.raises(ConfigError, match=r"\[l2\]: unknown key\(s\) extra; valid: capacity_bytes"):
        load_preset(extra)
    assert "buffers.ub_bytes" in keys()
