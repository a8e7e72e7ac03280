"""``pardo`` end to end, in-process: real shell commands, their output, exit status and logs."""

from __future__ import annotations

import re
import time
from pathlib import Path

from pardo._cli._joblog import HEADER


class TestRunning:
    # Job 1 below waits until job 2's row is in the joblog: pardo writes it when job 2 is
    # reported, so job 1 surely finishes last.
    WAIT_FOR_2 = "until grep -q '^2\t' log 2>/dev/null; do :; done"

    def test_keep_order(self, pardo) -> None:
        """``-k`` prints in input order even when later jobs finish first."""
        cmd = f"if [ {{}} = 1 ]; then {self.WAIT_FOR_2}; fi; echo {{}}"
        result = pardo("-k", "-j", "2", "--joblog", "log", cmd, ":::", "1", "2")
        assert (result.status, result.lines) == (0, ["1", "2"])

    def test_without_keep_order_output_is_per_job_in_finishing_order(self, pardo) -> None:
        """Without ``-k`` each job's lines come out together, in the order jobs finish."""
        cmd = f"if [ {{}} = 1 ]; then {self.WAIT_FOR_2}; fi; echo {{}}a; echo {{}}b"
        result = pardo("-j", "2", "--joblog", "log", cmd, ":::", "1", "2")
        assert result.lines == ["2a", "2b", "1a", "1b"]

    def test_grid_order_and_quoting(self, pardo) -> None:
        """Two sources form a product; values with spaces and ; stay single arguments."""
        result = pardo("-k", "printf '%s|%s\\n'", ":::", "a b", "c;d", ":::", "1", "2")
        assert result.lines == ["a b|1", "a b|2", "c;d|1", "c;d|2"]

    def test_shell_code_in_command(self, pardo) -> None:
        """``exit {}``, pipes and ``;`` work because the command runs in a shell."""
        assert pardo("-k", "echo {} | tr a-z A-Z; echo .", ":::", "ab").lines == ["AB", "."]
        assert pardo("exit {}", ":::", "0", "1").status == 1

    def test_linked_source(self, pardo) -> None:
        """``:::+`` pairs values with the previous source."""
        result = pardo(
            "-k", "echo {1}{2}{3}", ":::", "a", "b", ":::", "x", "y", "z", ":::+", "1", "2"
        )
        assert result.lines == ["ax1", "ay2", "bx1", "by2"]

    def test_stdin_and_file_sources(self, pardo, tmp_path: Path) -> None:
        """Lines of stdin (no source given) and of ``:::: FILE`` are values."""
        assert pardo("-k", "echo", stdin="x y\nz\n").lines == ["x y", "z"]
        (tmp_path / "f.txt").write_text("1\n2\n")
        assert pardo("-k", "echo {2}{1}", "::::", "f.txt", ":::", "q").lines == ["q1", "q2"]
        assert pardo("-k", "echo {1}{2}", "::::", "-", ":::", "q", stdin="a\n").lines == ["aq"]

    def test_header_names(self, pardo) -> None:
        """``--header :`` names each source after its first value."""
        result = pardo(
            "-k", "--header", ":", "echo {lr}/{depth}", ":::", "lr", "0.1", ":::", "depth", "3"
        )
        assert result.lines == ["0.1/3"]

    def test_seq_slot_and_environment(self, pardo) -> None:
        """``{#}``, ``{%}`` and $PARDO_SEQ/$PARALLEL_SEQ/$PARDO_SLOT agree."""
        cmd = "echo {#} $PARDO_SEQ $PARALLEL_SEQ {%} $PARDO_SLOT"
        lines = pardo("-k", "-j", "1", cmd, ":::", "a", "b").lines
        assert lines == ["1 1 1 1 1", "2 2 2 1 1"]

    def test_tag(self, pardo) -> None:
        """``--tag`` prefixes stdout and stderr lines with the values and a tab."""
        result = pardo("-k", "--tag", "echo {1}; echo e >&2", ":::", "a b", ":::", "c")
        assert result.out == "a b c\ta b\n"
        assert result.err == "a b c\te\n"

    def test_empty_input_runs_nothing(self, pardo) -> None:
        """An empty source means no jobs and exit status 0."""
        assert pardo("echo", ":::").status == 0

    def test_shuf_runs_each_job_once(self, pardo) -> None:
        """``--shuf`` changes the order, not the set of jobs; {#} numbers the run order."""
        result = pardo("-k", "--shuf", "echo {#} {}", ":::", *"abcdef")
        assert sorted(line.split()[1] for line in result.lines) == list("abcdef")
        assert [line.split()[0] for line in result.lines] == [str(i) for i in range(1, 7)]

    def test_delay_spaces_job_starts(self, pardo) -> None:
        """``--delay`` holds each job start back: 3 jobs take at least 2 delays, logged apart."""
        began = time.monotonic()
        pardo("-j", "3", "--delay", "0.1", "--joblog", "log", "true", ":::", "1", "2", "3")
        assert time.monotonic() - began >= 0.2
        rows = Path("log").read_text().splitlines()[1:]
        starts = sorted(float(row.split("\t")[2]) for row in rows)
        assert starts[-1] - starts[0] >= 0.1

    def test_dry_run(self, pardo) -> None:
        """``--dry-run`` prints the commands and runs nothing."""
        result = pardo("--dry-run", "touch {}; echo", ":::", "made")
        assert result.lines == ["touch made; echo"]
        assert not Path("made").exists()


class TestFailures:
    def test_exit_status_counts_failures(self, pardo) -> None:
        """Exit status = number of failed jobs."""
        assert pardo("exit {}", ":::", "0", "3", "4", "0").status == 2

    def test_timeout_kills_the_whole_group(self, pardo) -> None:
        """``--timeout`` kills the job's shell and its children; the job counts as failed."""
        result = pardo(
            "--timeout", "0.3", "--joblog", "log", "sleep 30 & sleep 30; wait", ":::", "x"
        )
        assert result.status == 1
        assert "timed out" in result.err
        row = Path("log").read_text().splitlines()[1].split("\t")
        assert (row[6], row[7]) == ("-1", "15")
        assert float(row[3]) < 10

    def test_retries(self, pardo) -> None:
        """``--retries 3`` runs a failing job 3 times in all and prints only the last try."""
        result = pardo("--retries", "3", "echo try >> count; echo out; exit 1", ":::", "x")
        assert result.status == 1
        assert Path("count").read_text().count("try") == 3
        assert result.lines == ["out"]

    def test_retry_stops_at_success(self, pardo) -> None:
        """A job that succeeds on its second try is not run again and counts as passed."""
        cmd = "echo {} >> n; [ $(wc -l < n) -ge 2 ]"
        assert pardo("--retries", "5", cmd, ":::", "x").status == 0
        assert Path("n").read_text() == "x\nx\n"

    def test_halt_now_fail(self, pardo) -> None:
        """``--halt now,fail=1`` stops at the first failure and exits with its status."""
        result = pardo("-j", "1", "--halt", "now,fail=1", "echo {}; exit {}", ":::", "0", "5", "6")
        assert (result.status, result.lines) == (5, ["0", "5"])
        assert "halted" in result.err

    def test_halt_now_kills_running_jobs(self, pardo) -> None:
        """A halt "now" stops the other running jobs at once: they print and log nothing."""
        result = pardo(
            "-j", "2", "--joblog", "log", "--halt", "now,fail=1",
            "if [ {} = slow ]; then sleep 30; echo slow; else exit 3; fi", ":::", "slow", "fail",
        )  # fmt: skip
        assert (result.status, result.out) == (3, "")
        rows = Path("log").read_text().splitlines()[1:]
        assert [row.split("\t")[0] for row in rows] == ["2"]

    def test_halt_soon_lets_running_jobs_finish(self, pardo) -> None:
        """``--halt soon`` starts no new job but lets the running one finish."""
        # b fails only once a has started; a ends only once b is logged (the halt decided).
        wait_a = "until [ -e started ]; do :; done"
        wait_b = "until grep -q '^2\t' log 2>/dev/null; do :; done"
        cmd = f"if [ {{}} = a ]; then touch started; {wait_b}; echo a; else {wait_a}; exit 1; fi"
        result = pardo("-j", "2", "--joblog", "log", "--halt", "soon,fail=1", cmd, ":::", *"abcd")
        assert (result.status, result.lines) == (1, ["a"])
        assert [row.split("	")[0] for row in Path("log").read_text().splitlines()] == [
            "Seq",
            "2",
            "1",
        ]

    def test_usage_error_exits_255(self, pardo) -> None:
        """A bad option exits 255 with a message."""
        result = pardo("--halt", "whenever", "x")
        assert result.status == 255
        assert result.err.startswith("pardo: ")

    def test_missing_input_file_exits_255(self, pardo) -> None:
        """An unreadable ``::::`` file is an error, not zero jobs."""
        result = pardo("echo", "::::", "nope.txt")
        assert result.status == 255
        assert "nope.txt" in result.err


class TestJoblogAndResume:
    def test_joblog_columns(self, pardo) -> None:
        """One row per job with GNU Parallel's columns and formats."""
        pardo(
            "-k",
            "--joblog",
            "log",
            "echo {1} {2}; exit {3}",
            ":::",
            "a",
            "b c",
            ":::",
            "x",
            ":::",
            "0",
            "3",
        )
        lines = Path("log").read_text().splitlines(keepends=True)
        assert lines[0] == HEADER
        rows = sorted(
            (line.rstrip("\n").split("\t") for line in lines[1:]), key=lambda r: int(r[0])
        )
        assert [(r[0], r[1], r[4], r[5], r[6], r[7], r[8]) for r in rows] == [
            ("1", ":", "0", "4", "0", "0", "echo a x; exit 0"),
            ("2", ":", "0", "4", "3", "0", "echo a x; exit 3"),
            ("3", ":", "0", "6", "0", "0", "echo 'b c' x; exit 0"),
            ("4", ":", "0", "6", "3", "0", "echo 'b c' x; exit 3"),
        ]
        for row in rows:
            assert re.fullmatch(r"\d{10}\.\d{3}", row[2])
            assert re.fullmatch(r" *\d+\.\d{3}", row[3]) and len(row[3]) == 10

    def test_signal_column(self, pardo) -> None:
        """A job killed by a signal logs Exitval 0 and the signal number."""
        pardo("--joblog", "log", "kill -9 $$", ":::", "x")
        row = Path("log").read_text().splitlines()[1].split("\t")
        assert (row[6], row[7]) == ("0", "9")

    def test_resume_skips_logged_jobs(self, pardo) -> None:
        """``--resume`` runs only the jobs not yet in the log, and appends to it."""
        first = pardo("-k", "--joblog", "log", "echo {}", ":::", "a", "b")
        again = pardo("-k", "--resume", "--joblog", "log", "echo {}", ":::", "a", "b", "c")
        assert (first.lines, again.lines) == (["a", "b"], ["c"])
        header, *rows = Path("log").read_text().splitlines()
        assert header.startswith("Seq\t")
        assert sorted(row.split("\t")[0] for row in rows) == ["1", "2", "3"]

    def test_resume_failed_reruns_failures(self, pardo) -> None:
        """``--resume-failed`` reruns the logged failures (and the unlogged jobs)."""
        pardo("-k", "--joblog", "log", "echo {}; exit {}", ":::", "0", "1")
        result = pardo(
            "-k", "--resume-failed", "--joblog", "log", "echo {}; exit {}", ":::", "0", "1", "2"
        )
        assert (result.status, result.lines) == (2, ["1", "2"])

    def test_plus_appends(self, pardo) -> None:
        """``--joblog +FILE`` appends rows without a header."""
        Path("log").write_text("old\n")
        pardo("--joblog", "+log", "true", ":::", "x")
        lines = Path("log").read_text().splitlines()
        assert lines[0] == "old" and lines[1].startswith("1\t:\t")

    def test_results_dir(self, pardo) -> None:
        """``--results DIR`` saves stdout, stderr and seq under DIR/<source>/<value>/..."""
        pardo("--results", "out", "echo {1}-{2}; echo e >&2", ":::", "a", ":::", "x/y")
        job = Path("out", "1", "a", "2", "x\\_y")
        assert (job / "stdout").read_text() == "a-x/y\n"
        assert (job / "stderr").read_text() == "e\n"
        assert (job / "seq").read_text() == "1"

    def test_results_dir_with_header(self, pardo) -> None:
        """With ``--header :`` the folder is named after the source."""
        pardo("--header", ":", "--results", "out", "echo", ":::", "g", "a")
        assert Path("out", "g", "a", "stdout").read_text() == "a\n"
