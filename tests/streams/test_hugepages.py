"""The worker's transparent huge pages: the tunable it re-executes with, and what it reports."""

from __future__ import annotations

from pathlib import Path

from streams.hugepages import (
    REEXECUTED,
    SETTING,
    forget_reexec,
    huge_pages_bytes,
    with_huge_pages,
    with_tunable,
)


def test_the_tunable_is_added_once_keeping_the_others() -> None:
    assert with_huge_pages({"PATH": "/bin"}) == {"PATH": "/bin", "GLIBC_TUNABLES": SETTING, REEXECUTED: ""}
    kept = with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert kept is not None
    assert kept["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert kept[REEXECUTED] == "glibc.malloc.arena_max=2"  # what it was, for forget_reexec


def test_an_operators_own_value_or_a_second_start_re_executes_nothing() -> None:
    assert with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) is None  # 4 KiB pages, on purpose
    assert with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}) is None
    assert with_huge_pages({REEXECUTED: ""}) is None  # never a loop, whatever glibc made of it


def test_one_value_of_the_tunable_replaces_another_and_keeps_the_rest() -> None:
    assert with_tunable("", "0") == "glibc.malloc.hugetlb=0"
    assert with_tunable("a=1:glibc.malloc.hugetlb=1:b=2", "0") == "a=1:b=2:glibc.malloc.hugetlb=0"


def test_forgetting_the_re_execution_gives_back_the_environment_it_had() -> None:
    unset = {"GLIBC_TUNABLES": SETTING, REEXECUTED: "", "PATH": "/bin"}
    forget_reexec(unset)
    assert unset == {"PATH": "/bin"}
    other = {"GLIBC_TUNABLES": "a=1:" + SETTING, REEXECUTED: "a=1"}
    forget_reexec(other)
    assert other == {"GLIBC_TUNABLES": "a=1"}
    untouched = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}  # not re-executed: the operator's value stays
    forget_reexec(untouched)
    assert untouched == {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}


def test_the_huge_pages_are_read_from_smaps_rollup(tmp_path: Path) -> None:
    rollup = tmp_path / "smaps_rollup"
    rollup.write_text("Rss:  2053820 kB\nAnonHugePages:  899072 kB\nShmemHugePages:  0 kB\n")
    assert huge_pages_bytes(rollup) == 899072 * 1024
    assert huge_pages_bytes(tmp_path / "absent") == 0  # not Linux, or no procfs: unknown, reported 0
