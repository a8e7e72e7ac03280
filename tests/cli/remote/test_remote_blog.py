"""The issue's blog-post command line, with pardo in place of GNU Parallel, on two loopback nodes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from .conftest import Nodes

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "example.py"
GAMMAS, CS = ("0.1", "1", "10"), ("0.2", "2", "20")


def test_blog_command_line_returns_the_nine_models(pardo, nodes: Nodes, tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "example.py")
    (tmp_path / "nodefile").write_text(
        "# the two loopback nodes\n" + "\n".join(nodes.logins()) + "\n"
    )
    result = pardo(
        "--ssh", nodes.ssh, "--joblog", "log.tsv",
        "--sshloginfile", "nodefile", "--workdir", os.path.expanduser("~/parallel-example"),
        "--basefile", "example.py", "--return", "iris_svm_g{1}_c{2}.mdl",
        "./example.py", "--set-gamma", "{1}", "--set-c", "{2}",
        ":::", *GAMMAS, ":::", *CS,
    )  # fmt: skip
    assert result.status == 0, result.err
    assert len(result.lines) == 9 and all("R2=" in line for line in result.lines)
    for gamma in GAMMAS:
        for c in CS:
            model = np.load(tmp_path / f"iris_svm_g{gamma}_c{c}.mdl")
            assert model.shape == (400,)
    hosts = {line.split("\t")[1] for line in (tmp_path / "log.tsv").read_text().splitlines()[1:]}
    assert hosts == set(nodes.logins())  # both nodes worked, the Host column is the sshlogin
    for node in nodes.nodes:  # the basefile went to each node's own workdir
        assert os.path.exists(node.path("parallel-example", "example.py"))
