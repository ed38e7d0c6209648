"""Every config number has a declared range, checked the same way for --set, replace() and preset files.

The expected messages and bounds below are written out by hand from the issue's cases and the
ranges chosen for them (docs/model.md, "Overriding"); none is read back from the code under test.
"""

import tomllib
from importlib import resources

import pytest

from npusim.cli import main
from npusim.config import ConfigError, available_presets, keys, load_preset, parse_override, valid_values

CONFIG = load_preset("910b2")
PRESET_TEXT = (resources.files("npusim") / "presets" / "910b2.toml").read_text()


# --- the cases: each one line naming the key, the value and the range -------------------

REFUSED = [
    ("clock_ghz=1e308", "clock_ghz must be a number from 0.01 to 100 GHz, got 1e+308"),
    ("hbm.bandwidth_gbps=1e-320",
     "hbm.bandwidth_gbps must be a number from 0.001 to 1000000 GB/s, got 1e-320"),
    ("mte2.gm_to_l1_bytes_per_cycle=1e-300",
     "mte2.gm_to_l1_bytes_per_cycle must be a number from 0.001 to 1000000 bytes per cycle, got 1e-300"),
    ("mte1.l1_to_l0b_bytes_per_cycle=1e-300",
     "mte1.l1_to_l0b_bytes_per_cycle must be a number from 0.001 to 1000000 bytes per cycle, got 1e-300"),
    ("fixpipe.l0c_to_gm_bytes_per_cycle=0",
     "fixpipe.l0c_to_gm_bytes_per_cycle must be a number from 0.001 to 1000000 bytes per cycle, got 0.0"),
    ("fixpipe.l0c_to_ub_bytes_per_cycle=1e-300", "fixpipe.l0c_to_ub_bytes_per_cycle must be 0 (no such path) "
     "or a number from 0.001 to 1000000 bytes per cycle, got 1e-300"),
    ("chip.dispatch_cycles=9223372036854775807",
     "chip.dispatch_cycles must be an integer from 0 to 1000000000, got 9223372036854775807"),
    ("mte3.latency_cycles=9223372036854775808",
     "mte3.latency_cycles must be an integer from 0 to 1000000000, got 9223372036854775808"),
    ("buffers.l0b_bytes=1000000000000",
     "buffers.l0b_bytes must be an integer from 1 to 16777216 (16 MiB), got 1000000000000"),
    ("buffers.l1_bytes=" + "1" + "0" * 30,
     "buffers.l1_bytes must be an integer from 1 to 16777216 (16 MiB), got 1" + "0" * 30),
    ("buffers.l1_bytes=" + "9" * 5000,
     "buffers.l1_bytes must be an integer from 1 to 16777216 (16 MiB), got an integer of 5000 digits"),
    ("l2.line_bytes=3", "l2.line_bytes must be a power of two from 32 to 4096 (4 KiB), got 3"),
    ("l2.line_bytes=16", "l2.line_bytes must be a power of two from 32 to 4096 (4 KiB), got 16"),
    ("cube.m0=7", "cube.m0 must be a power of two from 1 to 256, got 7"),
    ("cube.n0=48", "cube.n0 must be a power of two from 1 to 256, got 48"),
    ("buffers.l0a_align=48", "buffers.l0a_align must be a power of two from 1 to 65536 (64 KiB), got 48"),
    ("chip.cube_cores=0", "chip.cube_cores must be an integer from 1 to 16777216, got 0"),
    ("vector.exp.repeat_cycles=-0.5",
     "vector.exp.repeat_cycles must be a number from 0 to 1000000000, got -0.5"),
    ("clock_ghz=nan", "clock_ghz must be a number from 0.01 to 100 GHz, got nan"),
    ("buffers.ub_bytes=1e6", "buffers.ub_bytes takes int values, got '1e6'; valid: an integer from 1 to "
     "16777216 (16 MiB)"),
    ("l2.hints=yes", "l2.hints takes bool values, got 'yes'; valid: true or false"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=[t[:40] for t, _ in REFUSED])
def test_an_override_out_of_range_names_key_value_and_range(text, message):
    with pytest.raises(ConfigError) as err:
        parse_override(text, CONFIG)
    assert str(err.value) == message


@pytest.mark.parametrize("text", ["clock_ghz=1e308", "cube.m0=7", "chip.dispatch_cycles=9223372036854775807",
                                  "buffers.l1_bytes=" + "1" + "0" * 30])
def test_the_command_line_says_it_in_one_line_and_exits_2(text, capsys):
    assert main(["check", "programs/tile_matmul.s", "--set", text]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"npusim: error: {text.split('=')[0]} must be ") and err.count("\n") == 1


def test_replace_applies_the_same_ranges():
    with pytest.raises(ConfigError, match=r"^l2.line_bytes must be a power of two from 32 to 4096 \(4 KiB\)"):
        CONFIG.replace({"l2.line_bytes": 3})
    with pytest.raises(ConfigError, match=r"^clock_ghz must be a number from 0.01 to 100 GHz, got 1e\+308$"):
        CONFIG.replace({"clock_ghz": 1e308})
    with pytest.raises(ConfigError, match="^chip.launch_cycles must be an integer from 0 to 1000000000, "
                                          "got an integer of 302 digits$"):
        CONFIG.replace({"chip.launch_cycles": 10**301})  # shown short, and float(10**400) is never tried
    with pytest.raises(ConfigError, match="^clock_ghz must be a number from 0.01 to 100 GHz, got an integer"):
        CONFIG.replace({"clock_ghz": 10**400})


def test_the_bounds_themselves_are_valid():
    # Both ends of a few ranges, by hand: the closed interval [lo, hi], and zero where it means "none".
    for key, good, bad in [("clock_ghz", (0.01, 100), (0.0099, 100.01)),
                           ("buffers.ub_bytes", (1, 16 * 1024 * 1024), (0, 16 * 1024 * 1024 + 1)),
                           ("l2.line_bytes", (32, 4096), (16, 8192)),
                           ("cube.m0", (1, 256), (0, 512)),
                           ("chip.vector_cores", (0, 1 << 24), (-1, (1 << 24) + 1)),
                           ("fixpipe.l0c_to_ub_bytes_per_cycle", (0, 0.001, 1e6), (0.0009, 1e6 + 1)),
                           ("hbm.bandwidth_gbps", (0.001, 1e6), (0.00099, 1.0000001e6))]:
        for value in good:
            assert CONFIG.replace({key: value}).get(key) == value
        for value in bad:
            with pytest.raises(ConfigError, match=f"^{key} must be "):
                CONFIG.replace({key: value})


def test_every_number_has_a_range_in_words():
    words = {key: valid_values(key) for key in keys()}
    assert words["name"] == "text" and words["l2.hints"] == "true or false"
    assert words["sync.event_ids"] == "an integer from 1 to 1024"
    numeric = [k for k, w in words.items() if w not in ("text", "true or false")]
    assert len(numeric) == len(keys()) - 4  # name, description, chip.coupled, l2.hints are not numbers...
    assert all(" from " in words[k] for k in numeric)  # ...and each number's words give its range


# --- the preset's identity is not an override ------------------------------------------------------

@pytest.mark.parametrize("key", ["name", "description"])
def test_name_and_description_cannot_be_overridden(key, capsys):
    with pytest.raises(ConfigError, match=f"^{key} is the preset's own {key}, not a hardware value"):
        parse_override(f"{key}=foo", CONFIG)
    with pytest.raises(ConfigError, match=f"^{key} is the preset's own {key}"):
        CONFIG.replace({key: "foo"})
    assert main(["check", "programs/tile_matmul.s", "--set", f"{key}=foo"]) == 2
    assert "preset foo" not in capsys.readouterr().out


# --- preset files get the same checks ------------------------------------------------------------

def test_every_shipped_preset_loads_exactly_as_its_file_says():
    for name in available_presets():
        table = tomllib.loads((resources.files("npusim") / "presets" / f"{name}.toml").read_text())
        config = load_preset(name)
        for key in keys():
            want = table
            for part in key.split("."):
                want = want[part]
            assert config.get(key) == want and type(config.get(key)) is type(config.get(key)), key


@pytest.mark.parametrize(("line", "new", "message"), [
    ("l1_bytes = 524288", "l1_bytes = 1000000000000000000000000000000",
     "buffers.l1_bytes must be an integer from 1 to 16777216 (16 MiB), got 1" + "0" * 30),
    ("m0 = 16 ", "m0 = 7 ", "cube.m0 must be a power of two from 1 to 256, got 7"),
    ("bandwidth_gbps = 1600.0", "bandwidth_gbps = 1e-320", "hbm.bandwidth_gbps must be a number from 0.001 "
                                                           "to 1000000 GB/s, got 1e-320"),
    ("startup_cycles = 63.0", "startup_cycles = inf",
     "vector.rowmax.startup_cycles must be a number from 0 to 1000000000, got inf"),
    ("hints = true", "hints = 1", "l2.hints must be true or false, got 1"),
])
def test_a_preset_file_out_of_range_names_the_file_and_the_key(tmp_path, line, new, message):
    assert PRESET_TEXT.count(line) >= 1
    path = tmp_path / "g.toml"
    path.write_text(PRESET_TEXT.replace(line, new, 1))
    with pytest.raises(ConfigError) as err:
        load_preset(path)
    assert str(err.value) == f"{path}: {message}"


def test_a_preset_that_is_not_utf8_toml_text_says_so(tmp_path):
    path = tmp_path / "g.toml"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=f"^preset file {path} is not UTF-8 TOML text: byte 0xff at line 1"):
        load_preset(path)
    path.write_bytes(PRESET_TEXT.encode().replace(b"[l2]", b"[l2]\n# caf\xe9"))  # latin-1 in a comment
    with pytest.raises(ConfigError, match=r"not UTF-8 TOML text: byte 0xe9 at line 1\d\d cannot be decoded"):
        load_preset(path)
    path.write_bytes(b"\xef\xbb\xbf" + PRESET_TEXT.encode())  # a byte-order mark is still UTF-8
    assert load_preset(path) == load_preset("910b2")


def test_a_preset_path_that_is_not_a_file_says_what_it_is(tmp_path):
    with pytest.raises(ConfigError, match=f"^preset file {tmp_path} is a directory$"):
        load_preset(tmp_path)
    (tmp_path / "d.toml").mkdir()
    with pytest.raises(ConfigError, match="d.toml is a directory$"):
        load_preset(tmp_path / "d.toml")
    with pytest.raises(ConfigError, match="^preset file /dev/null is not a regular file$"):
        load_preset("/dev/null")
    (tmp_path / "e.toml").write_text("")
    with pytest.raises(ConfigError, match="e.toml is empty$"):
        load_preset(tmp_path / "e.toml")
    with pytest.raises(ConfigError, match="^preset file missing.toml does not exist$"):
        load_preset("missing.toml")


def test_toml_errors_name_the_file_and_the_line(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(PRESET_TEXT.replace("l0a_bytes = 65536", "l0a_bytes = 65 536"))
    lines = PRESET_TEXT.splitlines()
    at = 1 + lines.index(next(s for s in lines if s.startswith("l0a_bytes")))
    with pytest.raises(ConfigError, match=f"^{path}: not valid TOML: .*at line {at}, column"):
        load_preset(path)
    path.write_text("name = 1\n" + "a = " + "[" * 40 + "]" * 40 + "\n")  # tomllib would recurse
    with pytest.raises(ConfigError, match=f"^{path}: not a preset: line 2: arrays or tables nested more "):
        load_preset(path)
    path.write_text(f'name = "{"[" * 40}"\na = [[1]]  # {"[" * 40}\n')
    # brackets in strings and comments do not nest
    with pytest.raises(ConfigError, match=r"unknown key\(s\) a;"):
        load_preset(path)
    path.write_text("a = " + "7" * 5000 + "\n")  # tomllib's int() would refuse it with a ValueError
    with pytest.raises(ConfigError, match=f"^{path}: not a preset: line 1: a number longer than 1000 digits"):
        load_preset(path)
