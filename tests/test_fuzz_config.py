"""Fuzz: `--set` text and preset TOML end in a config or in ConfigError, never in another exception.

Keys come from the real ones plus junk; values from floats (inf, nan, subnormals, huge), ints (2^63,
2^64, negatives, thousands of digits), words and expressions; preset files are the shipped 910b2
file with keys dropped, changed or added, values of the wrong type or out of range, and random
bytes. A small sample goes through the command line too: exit 0 or 2, never a traceback.
Deterministic and database-free, a few seconds in all.
"""

import contextlib
import io
from importlib import resources

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isa.errors import IsaError
from npusim import simulate
from npusim.cli import main
from npusim.config import ConfigError, HardwareConfig, keys, load_preset, parse_override
from programs import tile_matmul

CONFIG = load_preset("910b2")
KERNEL = tile_matmul.build()
KEYS = keys()
PRESET = (resources.files("npusim") / "presets" / "910b2.toml").read_text()
LINES = PRESET.splitlines()

FUZZ = settings(database=None, derandomize=True, deadline=None, max_examples=300,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

def _runs_or_refuses(config: HardwareConfig) -> None:
    """An accepted config is one the model computes with: a small kernel runs or is refused clearly
    (a buffer too small for it, a missing path), never overflows."""
    with contextlib.suppress(IsaError):
        result = simulate(KERNEL, config, numerics=False)
        assert 0 < result.cycles < 2**62


# --- --set key=value --------------------------------------------------------------------------------

junk_keys = st.sampled_from(["", " ", ".", "..", "buffers.", ".l1_bytes", "buffers.l1", "BUFFERS.L1_BYTES",
                             "buffers..l1_bytes", "__class__", "buffers.__doc__", "get", "replace",
                             "name.x", "vector.binary", "vector.binary.x", "l2.hints.x", "=", "é", "\x00"])
a_key = st.one_of(st.sampled_from(KEYS), junk_keys, st.text(max_size=20))

floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
                   st.sampled_from([1e-320, 5e-324, 1e-300, 1e308, 1.7976931348623157e308, -0.0, 0.0]))
ints = st.one_of(st.integers(min_value=-(2**70), max_value=2**70),
                 st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63), 0, 1, 3, 7, 16, 48, 1 << 24, 1 << 40]))
words = st.one_of(st.sampled_from(["true", "false", "True", "yes", "", " ", "0x40000", "0b101", "0o17",
                                   "1_000", "10**30", "2**63", "1e6", "1e999", "-1e999", "inf", "-inf", "nan",
                                   "infinity", "0x", "1.5.2", "'1'", '"1"', "[1]", "{}", "9" * 5000,
                                   "0x" + "f" * 5000, "1e-400", "١٢٣", "\x00", "1\n2"]),
                  st.text(max_size=30))
a_value = st.one_of(floats.map(repr), floats.map(str), ints.map(str), ints.map(hex), words)


@FUZZ
@given(key=a_key, value=a_value, sep=st.sampled_from(["=", " = ", "==", ""]))
def test_set_text_gives_a_config_or_a_config_error(key, value, sep):
    text = f"{key}{sep}{value}"
    try:
        parsed = parse_override(text, CONFIG)
    except ConfigError:
        return
    changed = CONFIG.replace(dict([parsed]))  # a value parse_override accepts, replace() accepts too
    assert isinstance(changed, HardwareConfig) and changed.get(parsed[0]) == parsed[1]
    _runs_or_refuses(changed)


@FUZZ
@given(key=st.sampled_from(KEYS) | junk_keys,
       value=st.one_of(floats, ints, st.booleans(), st.text(max_size=9), st.lists(ints, max_size=2)))
def test_replace_with_any_python_value_gives_a_config_or_a_config_error(key, value):
    with contextlib.suppress(ConfigError):
        _runs_or_refuses(CONFIG.replace({key: value}))


# --- preset TOML ------------------------------------------------------------------------------------

toml_values = st.one_of(floats.map(repr), ints.map(str), ints.map(hex),
                        st.sampled_from(["true", '"x"', "[]", "[1, [2]]", "{a = 1}", "1979-05-27", "''", "-0",
                                         "+inf", "9" * 2000, "[" * 50, "nan", "1e400", '"""a""""']))


TOML_KEYS = [k.rsplit(".", 1)[-1] for k in KEYS] + KEYS + ["extra", "a.b", '"q"', "name"]
TABLES = ["buffers", "cube", "vector.exp", "nope", "chip.x", "l2", "[l2]"]


@st.composite
def mutated_presets(draw):
    """The shipped file with a few lines dropped, changed or added, or a few bytes replaced."""
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "value", "key", "add", "table", "line"]))
        key = lines[at].split("=")[0].strip() if "=" in lines[at] else "x"
        if action == "drop":
            del lines[at]
        elif action == "value":
            lines[at] = f"{key} = {draw(toml_values)}"
        elif action == "key":
            lines[at] = f"{draw(st.sampled_from(TOML_KEYS))} = {draw(toml_values)}"
        elif action == "add":
            lines.insert(at, f"{draw(st.sampled_from(TOML_KEYS))} = {draw(toml_values)}")
        elif action == "table":
            lines.insert(at, f"[{draw(st.sampled_from(TABLES))}]")
        else:
            lines[at] = draw(st.text(max_size=40))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=8)) + data[at:]
    return data


@FUZZ
@given(data=st.one_of(mutated_presets(), st.binary(max_size=200)))
def test_preset_files_give_a_config_or_a_config_error(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "g.toml"
    path.write_bytes(data)
    with contextlib.suppress(ConfigError):
        _runs_or_refuses(load_preset(path))


# --- through the command line: a kernel in assembly, run with numerics (some 10 ms) -------------------

def _exit_status(argv: list[str]) -> int:
    """main(argv)'s exit status; its output must be one error line when it refuses (status 2)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    assert status in (0, 2), err.getvalue()
    if status == 2:
        assert err.getvalue().startswith("npusim: error: ") and err.getvalue().count("\n") == 1
    return status


@settings(FUZZ, max_examples=12)
@given(key=st.sampled_from(KEYS) | junk_keys, value=a_value)
def test_the_command_line_exits_0_or_2_on_any_set(key, value):
    _exit_status(["asm", str(tile_matmul.ASM_PATH), "--set", f"{key}={value}"])


@settings(FUZZ, max_examples=6)
@given(data=mutated_presets())
def test_the_command_line_exits_0_or_2_on_any_preset_file(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "g.toml"
    path.write_bytes(data)
    _exit_status(["asm", str(tile_matmul.ASM_PATH), "--preset", str(path)])
