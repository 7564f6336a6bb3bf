"""Jupyter names for kernel type ids: URL-safe, folder-safe, reversible, collision-free."""

from __future__ import annotations

import random
import re

import pytest

from kernel_mgmt_jupyter.names import (
    conda_aliases,
    conda_display_name,
    decode_part,
    encode_part,
    fallback_name,
    jupyter_name,
    type_id_for,
)
from kernel_mgmt_jupyter.table import build_table

#: jupyter_server's URL pattern for kernel names, and kernelspec folder names.
URL_NAME = re.compile(r"^[\w.\-%]+$")
FOLDER_NAME = re.compile(r"^[a-z0-9._-]+$")


@pytest.mark.parametrize(
    ("type_id", "name"),
    [
        ("spec/python3", "python3"),
        ("spec/ir", "ir"),
        ("spec/my.kernel-2", "my.kernel-2"),
        ("conda/ml-python3", "conda__ml-python3"),
        ("conda/base-python3", "conda__base-python3"),
        ("pyimport/kernel", "pyimport__kernel"),
        ("gateway/spark_python", "gateway__spark_5fpython"),
        ("my_provider/k", "my_5fprovider__k"),
        ("x/Python3", "x___50ython3"),
        ("x/naïve", "x__na_c3_afve"),
    ],
)
def test_documented_examples(type_id: str, name: str) -> None:
    assert jupyter_name(type_id) == name
    assert type_id_for(name) == type_id


def test_spec_names_are_lower_cased_like_jupyter_client() -> None:
    assert jupyter_name("spec/Python3") == "python3"
    assert type_id_for("Python3") == "spec/python3"


def test_names_are_case_insensitive_on_the_way_back() -> None:
    assert type_id_for("CONDA__ML-PYTHON3") == "conda/ml-python3"


_ALPHABET = "abcxyz019._-ABZ_%+ é€/"


def _random_part(rng: random.Random, allow_slash: bool) -> str:
    chars = _ALPHABET if allow_slash else _ALPHABET.replace("/", "")
    return "".join(rng.choice(chars) for _ in range(rng.randint(1, 12)))


def test_round_trip_and_no_collisions_over_many_random_ids() -> None:
    rng = random.Random(20261204)
    seen: dict[str, str] = {}
    for _ in range(5000):
        provider = rng.choice(["conda", "pyimport", "a_b", "a", "a-b", "a.b", "gw"])
        kernel = _random_part(rng, allow_slash=False).strip() or "k"
        type_id = f"{provider}/{kernel}"
        name = jupyter_name(type_id)
        assert URL_NAME.match(name), name
        assert FOLDER_NAME.match(name), name
        assert "/" not in name
        assert type_id_for(name) == type_id
        assert seen.setdefault(name, type_id) == type_id, f"{type_id} and {seen[name]}: {name}"


def test_separator_is_unambiguous_between_providers() -> None:
    # With a plain '-' these would all be "a-b-c".
    names = {jupyter_name(t) for t in ("a-b/c", "a/b-c", "a_b/c", "a/b_c", "a__b/c", "a/_b_c")}
    assert len(names) == 6


@pytest.mark.parametrize("part", ["", "a", "_", "__", "a_b", "Zz", "日本", "x.y-z", "%41"])
def test_encode_decode_parts(part: str) -> None:
    encoded = encode_part(part)
    assert "__" not in encoded
    assert decode_part(encoded) == part


@pytest.mark.parametrize("bad", ["a_g1", "a_", "a_5", "A B"])
def test_decode_rejects_what_encode_never_writes(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_part(bad)


@pytest.mark.parametrize("bad", ["", "a/b", "__k", "conda__"])
def test_type_id_for_rejects_impossible_names(bad: str) -> None:
    with pytest.raises(ValueError):
        type_id_for(bad)


def test_jupyter_name_rejects_non_type_ids() -> None:
    with pytest.raises(ValueError, match="not '<provider>/<name>'"):
        jupyter_name("python3")


def _spec(display: str = "Python 3", **metadata: object) -> dict[str, object]:
    return {"display_name": display, "language": "python", "argv": ["x"], "metadata": metadata}


def test_a_kernelspec_folder_keeps_its_name_and_the_other_type_gets_a_stable_one() -> None:
    records = [
        ("conda/ml-python3", _spec()),
        ("spec/conda__ml-python3", _spec("a folder with a double underscore")),
    ]
    table = build_table(records)
    assert table.by_type["spec/conda__ml-python3"] == "conda__ml-python3"
    moved = table.by_type["conda/ml-python3"]
    assert moved == fallback_name("conda/ml-python3")
    assert re.fullmatch(r"conda__ml-python3-[0-9a-f]{6}", moved)
    assert build_table(list(reversed(records))).by_type["conda/ml-python3"] == moved
    assert any("conda/ml-python3" in note for note in table.notes)


def _conda(env: str, prefix: str, kernelspec: str | None = "python3", **kw: object) -> dict:
    conda = {
        "env_name": env,
        "env_prefix": prefix,
        "is_base": kw.get("is_base", False),
        "kernelspec": kernelspec,
        "root_prefix": kw.get("root_prefix", "/opt/conda"),
    }
    return _spec(f"Python 3 (conda: {env})", conda=conda)


@pytest.mark.parametrize(
    ("attrs", "aliases"),
    [
        (_conda("ml", "/opt/conda/envs/ml"), ["conda-env-ml-py"]),
        (_conda("ml", "/opt/conda/envs/ml", kernelspec=None), ["conda-env-ml-py"]),
        (_conda("ml", "/opt/conda/envs/ml", kernelspec="ir"), ["conda-env-ml-r"]),
        (_conda("ml", "/opt/conda/envs/ml", kernelspec="julia-1.9"), ["conda-env-ml-julia-1.9"]),
        (
            _conda("base", "/opt/conda", is_base=True, root_prefix="/opt/conda"),
            ["conda-base-py", "conda-root-py"],
        ),
        # An env in another project's envs folder: nb_conda_kernels calls it <project>-<env>.
        (
            _conda("web", "/home/u/proj/envs/web"),
            ["conda-env-proj-web-py", "conda-env-web-py"],
        ),
        (_conda("My Env", "/data/My Env"), ["conda-env-My_Env-py"]),
        (_spec(), []),
    ],
)
def test_nb_conda_kernels_names(attrs: dict, aliases: list[str]) -> None:
    assert conda_aliases(attrs) == aliases


def test_conda_kernels_answer_to_nb_conda_names_in_the_table() -> None:
    table = build_table(
        [
            ("conda/ml-python3", _conda("ml", "/opt/conda/envs/ml")),
            ("conda/base-python3", _conda("base", "/opt/conda", is_base=True)),
        ]
    )
    assert table.lookup("conda-env-ml-py").type_id == "conda/ml-python3"
    assert table.lookup("CONDA-ROOT-PY").type_id == "conda/base-python3"
    assert table.lookup("conda-base-py").type_id == "conda/base-python3"
    assert table.lookup("conda/ml-python3").name == "conda-env-ml-py"
    assert table.lookup("conda-env-nope-py") is None


def test_a_real_folder_wins_over_an_alias() -> None:
    table = build_table(
        [("spec/conda-env-ml-py", _spec("mine")), ("conda/ml-python3", _conda("ml", "/e/ml"))]
    )
    assert table.lookup("conda-env-ml-py").type_id == "spec/conda-env-ml-py"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("Python 3 (conda: ml)", "Python 3 [conda env:ml]"),
        ("R (conda: ~/proj/venv)", "R [conda env:~/proj/venv]"),
        ("Python 3", "Python 3"),
    ],
)
def test_display_names_say_the_env_as_nb_conda_kernels_does(given: str, shown: str) -> None:
    assert conda_display_name(given) == shown


def test_table_shows_conda_display_names_and_keeps_others() -> None:
    table = build_table(
        [("conda/ml-python3", _conda("ml", "/e/ml")), ("pyimport/kernel", _spec("Py (here)"))]
    )
    assert table.entries["conda-env-ml-py"].spec["display_name"] == "Python 3 [conda env:ml]"
    assert table.entries["pyimport__kernel"].spec["display_name"] == "Py (here)"
    own = build_table([("conda/ml-python3", _conda("ml", "/e/ml"))], conda_format=None)
    assert own.entries["conda-env-ml-py"].spec["display_name"] == "Python 3 (conda: ml)"


# -- conda kernels are listed under nb_conda_kernels' names -----------------------------------


def test_conda_kernels_are_listed_under_nb_conda_kernels_names_with_canonical_aliases() -> None:
    table = build_table(
        [
            ("conda/ml-python3", _conda("ml", "/opt/conda/envs/ml")),
            ("conda/ml-ir", _conda("ml", "/opt/conda/envs/ml", kernelspec="ir")),
            ("conda/base-python3", _conda("base", "/opt/conda", is_base=True)),
            ("pyimport/kernel", _spec()),
        ]
    )
    assert table.by_type == {
        "conda/base-python3": "conda-base-py",
        "conda/ml-python3": "conda-env-ml-py",
        "conda/ml-ir": "conda-env-ml-r",
        "pyimport/kernel": "pyimport__kernel",
    }
    assert table.own_aliases["conda-env-ml-py"] == ["conda__ml-python3"]
    assert table.own_aliases["conda-base-py"] == ["conda__base-python3", "conda-root-py"]
    assert table.lookup("conda__ml-python3").type_id == "conda/ml-python3"
    assert table.lookup("CONDA-ENV-ML-R").type_id == "conda/ml-ir"
    assert table.notes == []


def test_an_env_known_only_by_path_is_named_and_shown_by_its_folder_as_nb_conda_kernels() -> None:
    # nb_conda_kernels: split(env_path) -> the folder name, whatever folder it is in.
    attrs = _conda("/tmp/x/elsewhere/listedenv", "/tmp/x/elsewhere/listedenv")
    table = build_table([("conda/listedenv-python3", attrs)])
    entry = table.lookup("conda/listedenv-python3")
    assert entry.name == "conda-env-listedenv-py"
    assert entry.spec["display_name"] == "Python 3 [conda env:listedenv]"


def test_equal_env_names_are_numbered_by_path_whatever_the_listing_order() -> None:
    records = [
        ("conda/ml-python3", _conda("ml", "/opt/conda/envs/ml")),
        ("conda/ml-1a2b3c-python3", _conda("ml", "/srv/other/ml")),
        ("conda/ml-4d5e6f-python3", _conda("ml", "/data/ml")),
        ("conda/web-python3", _conda("web", "/home/u/proj/envs/web")),
    ]
    for order in (records, list(reversed(records))):
        table = build_table(order)
        assert table.by_type["conda/ml-4d5e6f-python3"] == "conda-env-ml-py"  # /data first
        # In the root's envs folder with its name taken: <root folder>-<env>, as in
        # nb_conda_kernels; elsewhere: numbered.
        assert table.by_type["conda/ml-python3"] == "conda-env-conda-ml-py"
        assert table.by_type["conda/ml-1a2b3c-python3"] == "conda-env-ml-2-py"
        assert table.by_type["conda/web-python3"] == "conda-env-proj-web-py"
        assert table.lookup("conda-env-web-py").type_id == "conda/web-python3"
        displays = {e.spec["display_name"] for e in table.entries.values()}
        assert displays == {
            "Python 3 [conda env:ml]",
            "Python 3 [conda env:conda-ml]",
            "Python 3 [conda env:ml-2]",
            "Python 3 [conda env:proj-web]",
        }


def test_a_taken_nb_conda_name_falls_back_to_the_canonical_name_deterministically() -> None:
    records = [
        ("spec/conda-env-ml-py", _spec("a folder that has the name")),
        ("conda/ml-python3", _conda("ml", "/opt/conda/envs/ml")),
        # env "a-b" + kernel "c" and env "a" + kernel "b-c": both conda-env-a-b-c.
        ("conda/a-b-c", _conda("a-b", "/opt/conda/envs/a-b", kernelspec="c")),
        ("conda/a-b-c-2", _conda("a", "/opt/conda/envs/a", kernelspec="b-c")),
        # Names that differ only in case collide (kernelspec folders are case-insensitive).
        ("conda/big-python3", _conda("Big", "/opt/conda/envs/Big")),
        ("conda/big-9f-python3", _conda("big", "/opt/conda/envs/big")),
        # A name with "__" would look like a canonical one.
        ("conda/x__y-python3", _conda("x__y", "/opt/conda/envs/x__y")),
    ]
    for order in (records, list(reversed(records))):
        table = build_table(order)
        assert table.by_type["spec/conda-env-ml-py"] == "conda-env-ml-py"  # the folder wins
        assert table.by_type["conda/ml-python3"] == "conda__ml-python3"
        assert table.by_type["conda/a-b-c-2"] == "conda-env-a-b-c"  # /opt/conda/envs/a first
        assert table.by_type["conda/a-b-c"] == "conda__a-b-c"
        assert table.by_type["conda/big-python3"] == "conda-env-Big-py"  # "B" < "b"
        assert table.by_type["conda/big-9f-python3"] == "conda__big-9f-python3"
        assert table.by_type["conda/x__y-python3"] == "conda__x_5f_5fy-python3"
        assert len(table.notes) == 4, table.notes
        assert any("'conda-env-ml-py'" in n and "spec/conda-env-ml-py" in n for n in table.notes)
        for name in table.entries:
            assert URL_NAME.match(name), name
        for type_id, name in table.by_type.items():
            assert table.lookup(name).type_id == type_id


def test_display_names_follow_the_env_names() -> None:
    table = build_table([("conda/ml-python3", _conda("ml", "/opt/conda/envs/ml"))])
    assert table.entries["conda-env-ml-py"].spec["display_name"] == "Python 3 [conda env:ml]"
    assert conda_display_name("Python 3 (conda: /p/ml)", env="ml") == "Python 3 [conda env:ml]"
