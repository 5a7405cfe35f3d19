"""Cache keys: the code digest ignores formatting, everything else that matters counts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from keel.errors import InvalidInput
from keel.pipelines.cache import cache_key, code_digest, dataset_digest


def compile_function(source: str, tmp_path: Path, name: str = "f") -> object:
    """Define ``name`` from ``source`` in a real file, as inspect.getsource needs."""
    path = tmp_path / f"mod_{abs(hash(source))}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace[name]


BASE = """
def f(x: int) -> int:
    return x + 1
"""


@pytest.mark.parametrize(
    "variant",
    [
        '''
        def f(x: int) -> int:
            """A docstring."""
            return x + 1
        ''',
        """
        # a comment
        def f(x: int) -> int:

            return (x +   1)  # another
        """,
        """
        import functools

        @functools.lru_cache
        def f(x: int) -> int:
            return x + 1
        """,
    ],
)
def test_formatting_docstrings_and_decorators_do_not_change_the_code_digest(
    variant: str, tmp_path: Path
) -> None:
    base = compile_function(BASE, tmp_path)
    fn = compile_function(variant, tmp_path)
    fn = getattr(fn, "__wrapped__", fn)  # lru_cache's wrapper: the step sees the function
    assert code_digest(fn) == code_digest(base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "variant",
    [
        "def f(x: int) -> int:\n    return x + 2\n",
        "def f(y: int) -> int:\n    return y + 1\n",
        "def f(x: int = 3) -> int:\n    return x + 1\n",
        "def g(x: int) -> int:\n    return x + 1\n",
    ],
)
def test_any_code_change_changes_the_code_digest(variant: str, tmp_path: Path) -> None:
    base = compile_function(BASE, tmp_path)
    name = "g" if "def g" in variant else "f"
    assert code_digest(compile_function(variant, tmp_path, name)) != code_digest(base)  # type: ignore[arg-type]


def test_functions_without_source_fall_back_to_their_bytecode() -> None:
    namespace: dict = {}
    exec("def f(x):\n    return x * 2\n", namespace)
    exec("def h(x):\n    return x * 3\n", namespace)
    assert len(code_digest(namespace["f"])) == 64
    assert code_digest(namespace["f"]) != code_digest(namespace["h"])


def test_dataset_digests_follow_file_and_folder_content(tmp_path: Path) -> None:
    file = tmp_path / "data.csv"
    file.write_text("a,b\n1,2\n")
    first = dataset_digest(str(file))
    assert dataset_digest(str(file)) == first
    file.write_text("a,b\n1,3\n")  # same size, same inode, maybe the same mtime tick
    assert dataset_digest(str(file)) != first

    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.txt").write_text("x")
    before = dataset_digest(str(folder))
    (folder / "sub" / "x.txt").rename(folder / "sub" / "y.txt")
    renamed = dataset_digest(str(folder))
    assert renamed != before
    (folder / "z.txt").write_text("")
    assert dataset_digest(str(folder)) != renamed
    for bad in (tmp_path / "nope", tmp_path / "missing" / "x"):
        with pytest.raises(InvalidInput, match="does not exist"):
            dataset_digest(str(bad))


def test_each_part_of_the_key_counts() -> None:
    base = cache_key("c" * 64, {"n": 1}, {"data": "d" * 64}, {"f.csv": "e" * 64})
    assert base == cache_key("c" * 64, {"n": 1}, {"data": "d" * 64}, {"f.csv": "e" * 64})
    assert len(base) == 64
    assert base != cache_key("0" * 64, {"n": 1}, {"data": "d" * 64}, {"f.csv": "e" * 64})
    assert base != cache_key("c" * 64, {"n": 2}, {"data": "d" * 64}, {"f.csv": "e" * 64})
    assert base != cache_key("c" * 64, {"n": 1}, {"data": "0" * 64}, {"f.csv": "e" * 64})
    assert base != cache_key("c" * 64, {"n": 1}, {"data": "d" * 64}, {"f.csv": "0" * 64})
    assert base != cache_key("c" * 64, {"n": 1}, {"other": "d" * 64}, {"f.csv": "e" * 64})
    # key order does not matter: parameters are hashed as canonical JSON
    assert cache_key("c", {"a": 1, "b": 2}, {}, {}) == cache_key("c", {"b": 2, "a": 1}, {}, {})
