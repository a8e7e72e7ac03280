"""The command line's pure parts: argument parsing, -j, --halt and exit status, the joblog format."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pardo._cli._args import MAX_JOBS, UsageError, parse_args, resolve_jobs
from pardo._cli._halt import HaltSpec, HaltTracker, exit_code_of, parse_halt
from pardo._cli._inputs import SourceSpec, split_sources
from pardo._cli._joblog import HEADER, JobLog, JoblogRow, completed_seqs, format_row
from pardo._cli._output import result_dir, tagged


class TestParseArgs:
    def test_options_stop_at_the_command(self) -> None:
        """Words after the command's first word belong to the command, dashes included."""
        opts = parse_args(["-k", "-j", "2", "echo", "--tag", "-n", "{}", ":::", "a"])
        assert opts.keep_order and opts.jobs == "2" and not opts.tag
        assert opts.command == ("echo", "--tag", "-n", "{}")

    def test_double_dash_ends_options(self) -> None:
        """``pardo -- -cmd`` runs a command that starts with a dash."""
        assert parse_args(["--", "-cmd", ":::", "a"]).command == ("-cmd",)

    def test_seed_example(self) -> None:
        """The README's example parses into its command and two sources."""
        argv = [
            "python",
            "example.py",
            "--set-gamma",
            "{1}",
            "--set-c",
            "{2}",
            ":::",
            "0.1",
            "1",
            "10",
            ":::",
            "0.2",
            "2",
            "20",
        ]
        opts = parse_args(argv)
        assert opts.command == ("python", "example.py", "--set-gamma", "{1}", "--set-c", "{2}")
        assert opts.sources == (
            SourceSpec(values=("0.1", "1", "10")),
            SourceSpec(values=("0.2", "2", "20")),
        )

    def test_all_options(self) -> None:
        """Every option lands in its field."""
        opts = parse_args(
            [
                "--dry-run",
                "--tag",
                "--bar",
                "--timeout",
                "2.5",
                "--retries",
                "3",
                "--halt",
                "now,fail=1",
                "--joblog",
                "+log",
                "--resume",
                "--results",
                "out",
                "--delay",
                "0.1",
                "--shuf",
                "--dask",
                "tcp://h:8786",
                "--header",
                ":",
                "cmd",
            ]
        )
        assert (opts.dry_run, opts.tag, opts.bar, opts.shuf, opts.header) == (True,) * 5
        assert (opts.timeout, opts.retries, opts.delay) == (2.5, 3, 0.1)
        assert opts.halt == HaltSpec("now", "fail", 1)
        assert (opts.joblog, opts.resume, opts.results, opts.dask) == (
            "+log",
            True,
            "out",
            "tcp://h:8786",
        )

    def test_progress_is_bar(self) -> None:
        """``--progress`` is the same switch as ``--bar``."""
        assert parse_args(["--progress", "x"]).bar

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--timeout", "0", "x"], "seconds > 0"),
            (["--retries", "-1", "x"], "whole number"),
            (["--halt", "later", "x"], "--halt 'later' is not valid"),
            (["-j", "abc", "x"], "-j 'abc' is not valid"),
            (["--resume", "x"], "need --joblog"),
            (["--header", "x.*", "x"], "use --header :"),
            (["--no-such-option", "x"], "--no-such-option"),
            (["x", ":::+", "a"], ":::+ links to a previous input source"),
            (["x", "::::"], "needs at least one file"),
        ],
    )
    def test_usage_errors_name_the_problem(self, argv: list[str], message: str) -> None:
        """A bad command line raises UsageError saying what is wrong."""
        with pytest.raises(UsageError, match=re.escape(message)):
            parse_args(argv)


class TestSources:
    def test_separators(self) -> None:
        """``:::`` values, ``:::+`` linked values, ``::::`` one source per file."""
        specs = split_sources([":::", "a", "b", ":::+", "1", "2", "::::", "f", "-", "::::+", "g"])
        assert specs == [
            SourceSpec(values=("a", "b")),
            SourceSpec(values=("1", "2"), linked=True),
            SourceSpec(path="f"),
            SourceSpec(path="-"),
            SourceSpec(path="g", linked=True),
        ]


class TestResolveJobs:
    @pytest.mark.parametrize(
        ("spec", "expected"),
        [
            (None, 8),
            ("3", 3),
            ("50%", 4),
            ("1%", 1),
            ("200%", 16),
            ("+2", 10),
            ("-3", 5),
            ("-9", 1),
        ],
    )
    def test_forms(self, spec: str | None, expected: int) -> None:
        """N, N% of the CPUs, +N, -N; the default is one job per CPU (8 here)."""
        assert resolve_jobs(spec, 100, cpus=8) == expected

    def test_zero_means_every_job_up_to_the_cap(self) -> None:
        """``-j 0`` runs all jobs at once, within the file-handle cap."""
        assert resolve_jobs("0", 12, cpus=2) == 12
        assert resolve_jobs("0", 10_000, cpus=2) == MAX_JOBS
        assert resolve_jobs("0", 0, cpus=2) == 1


class TestHalt:
    @pytest.mark.parametrize(
        ("text", "spec"),
        [
            ("never", HaltSpec()),
            ("0", HaltSpec()),
            ("now,fail=1", HaltSpec("now", "fail", 1)),
            ("soon,fail=20%", HaltSpec("soon", "fail", 20, True)),
            ("now,success=3", HaltSpec("now", "success", 3)),
            ("soon,done=50%", HaltSpec("soon", "done", 50, True)),
            ("1", HaltSpec("soon", "fail", 1)),
            ("2", HaltSpec("now", "fail", 1)),
            ("-1", HaltSpec("soon", "success", 1)),
            ("-2", HaltSpec("now", "success", 1)),
            ("25%", HaltSpec("soon", "fail", 25, True)),
        ],
    )
    def test_parse(self, text: str, spec: HaltSpec) -> None:
        """GNU Parallel's forms, the old numeric ones included."""
        assert parse_halt(text) == spec

    @pytest.mark.parametrize("text", ["now", "now,fail", "now,fail=0", "soon,fail=101%", "x,y=1"])
    def test_parse_rejects(self, text: str) -> None:
        """Malformed values raise ValueError naming the value."""
        with pytest.raises(ValueError, match="--halt"):
            parse_halt(text)

    @staticmethod
    def _run(spec: str, codes: list[int], total: int | None = None) -> tuple[int, int]:
        """Record jobs one at a time (as -j1 would) until a halt; return (ran, exit status)."""
        tracker = HaltTracker(parse_halt(spec), total if total is not None else len(codes))
        ran = 0
        for code in codes:
            ran += 1
            if tracker.record(code, 0):
                break
        return ran, tracker.exit_status()

    # Each expected (jobs run, exit status) pair was observed with GNU Parallel 20221122, -j1.
    @pytest.mark.parametrize(
        ("spec", "codes", "expected"),
        [
            ("never", [0, 1, 2, 0], (4, 2)),
            ("never", [0, 0], (2, 0)),
            ("now,fail=1", [0, 5, 6], (2, 5)),
            ("soon,fail=1", [0, 5, 6], (2, 5)),
            ("soon,fail=2", [0, 5, 6, 7], (3, 2)),
            ("soon,fail=20%", [0, 5, 6, 7, 0, 0, 0, 0, 0, 0], (3, 20)),
            ("soon,fail=30%", [1, 0, 0], (1, 34)),
            ("now,success=2", [0, 5, 6, 0, 7], (4, 0)),
            ("now,success=50%", [5, 6, 0, 0, 7], (5, 60)),
            ("now,success=1", [1, 2], (2, 2)),
        ],
    )
    def test_exit_status_as_gnu_parallel(
        self, spec: str, codes: list[int], expected: tuple[int, int]
    ) -> None:
        """Where the run stops and the status it exits with."""
        assert self._run(spec, codes) == expected

    def test_many_failures_cap_at_254(self) -> None:
        """253 failures exit 253; more exit 254."""
        assert self._run("never", [1] * 253)[1] == 253
        assert self._run("never", [1] * 300)[1] == 254

    def test_signal_and_timeout_codes(self) -> None:
        """fail=1 exits 128+signal for a killed job and 255 for a timed-out one (Exitval -1)."""
        assert exit_code_of(0, 9) == 137
        assert exit_code_of(-1, 15) == 255
        tracker = HaltTracker(parse_halt("now,fail=1"), 2)
        assert tracker.record(0, 9) == "now"
        assert tracker.exit_status() == 137

    def test_percentage_needs_a_count(self) -> None:
        """A percentage without a known job count is refused."""
        with pytest.raises(ValueError, match="percentage"):
            HaltTracker(parse_halt("soon,fail=10%"), None)


class TestJoblog:
    def test_row_format(self) -> None:
        """Tab-separated; Starttime with ms; JobRuntime right-aligned in 10 with 3 decimals."""
        row = JoblogRow(3, ":", 1795311798.6161, 0.0034, 6, 0, 0, "echo 'b c' x")
        line = format_row(row)
        assert line == "3\t:\t1795311798.616\t     0.003\t0\t6\t0\t0\techo 'b c' x\n"

    def test_header(self) -> None:
        """GNU Parallel's nine column names."""
        assert HEADER.rstrip("\n").split("\t") == [
            "Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive", "Exitval", "Signal",
            "Command",
        ]  # fmt: skip

    def test_completed_seqs(self, tmp_path: Path) -> None:
        """--resume skips every logged seq; --resume-failed those with any successful row."""
        log = tmp_path / "log"
        rows = [
            "1\t:\t1\t1\t0\t0\t1\t0\tx",
            "1\t:\t1\t1\t0\t0\t0\t0\tx",
            "2\t:\t1\t1\t0\t0\t0\t0\tx",
        ]
        rows += [
            "3\t:\t1\t1\t0\t0\t0\t0\tx",
            "3\t:\t1\t1\t0\t0\t1\t0\tx",
            "4\t:\t1\t1\t0\t0\t0\t9\tx",
        ]
        rows += ["5\t:\t1"]  # a line cut short by a crash
        log.write_text(HEADER + "\n".join(rows) + "\n")
        assert completed_seqs(str(log), failed_too=True) == {1, 2, 3, 4}
        assert completed_seqs(str(log), failed_too=False) == {1, 2, 3}
        assert completed_seqs(str(tmp_path / "missing"), failed_too=True) == set()

    @pytest.mark.parametrize(
        ("name", "resume", "existing", "header_written"),
        [
            ("log", False, "", True),
            ("log", False, "old\n", True),
            ("+log", False, "", False),
            ("+log", False, "old\n", False),
            ("log", True, "", True),
            ("log", True, "old\n", False),
        ],
    )
    def test_header_and_append_rules(
        self, tmp_path: Path, name: str, resume: bool, existing: str, header_written: bool
    ) -> None:
        """FILE rewrites with a header; +FILE appends without; --resume appends, header if new."""
        path = tmp_path / "log"
        if existing:
            path.write_text(existing)
        log = JobLog(str(tmp_path / name) if name == "log" else "+" + str(path), resume)
        log.close()
        kept = existing if (name.startswith("+") or resume) else ""
        assert path.read_text() == kept + (HEADER if header_written else "")


class TestOutputHelpers:
    def test_tagged_prefixes_every_line(self) -> None:
        """Each line gets the tag, an unterminated last line too; empty output stays empty."""
        assert tagged(b"l1\nl2", b"a\t") == b"a\tl1\na\tl2"
        assert tagged(b"l1\n", b"a\t") == b"a\tl1\n"
        assert tagged(b"", b"a\t") == b""

    def test_result_dir_escapes_values(self) -> None:
        """Slashes and backslashes are escaped as GNU Parallel does; empty, . and .. get one."""
        assert result_dir("out", ["1", "2"], ["x/y", "a\\b"]) == "out/1/x\\_y/2/a\\\\b"
        assert result_dir("out", ["1", "2", "3"], ["", ".", ".."]) == "out/1/\\/2/\\./3/\\.."
