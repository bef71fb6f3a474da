"""The xdrs-demand section of bench/RESULTS-sim.md survives both benchmarks' rewrites."""

from __future__ import annotations

from pathlib import Path

from bench.sim_demand import BEGIN, END, keep_section, replace_section


def test_section_is_replaced_then_kept(tmp_path: Path) -> None:
    f = tmp_path / "RESULTS-sim.md"
    f.write_text("# sim\n\nold tables\n")
    f.write_text(replace_section(f, "## demand v1\n"))
    assert f.read_text() == f"# sim\n\nold tables\n\n{BEGIN}\n## demand v1\n{END}\n"
    f.write_text(replace_section(f, "## demand v2"))
    assert "v1" not in f.read_text() and f.read_text().count(BEGIN) == 1
    # bench.sim rewrites its part and keeps the section
    f.write_text(keep_section(f, "# sim\n\nnew tables\n"))
    assert f.read_text() == f"# sim\n\nnew tables\n\n{BEGIN}\n## demand v2\n{END}\n"


def test_no_section_nothing_kept(tmp_path: Path) -> None:
    f = tmp_path / "RESULTS-sim.md"
    assert keep_section(f, "# sim\n") == "# sim\n"
    f.write_text("# sim\n")
    assert keep_section(f, "# sim 2\n") == "# sim 2\n"
