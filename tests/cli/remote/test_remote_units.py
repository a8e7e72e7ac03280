"""The remote parts without a network: the wrapper's markers, staging checks, the host pool."""

from __future__ import annotations

import io
import os
import subprocess

import pytest

from pardo._cli._hosts import GIVE_UP_CONNECTS, Host, HostPool, HostState
from pardo._cli._remote import make_token, read_report, wrapper
from pardo._cli._ssh import quote_remote
from pardo._cli._transfer import Staging
from pardo._sshlogin import parse_sshlogin


def _run_wrapper(command: str, tmp_path) -> tuple[int, bytes, bytes, str]:
    token = make_token()
    script = quote_remote(wrapper(command, token, str(tmp_path / "wd"), {"V": "a 'b'; c"}))
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(["/bin/sh", "-c", script], stdin=read_end,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    os.close(read_end)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(write_end)
    return proc.returncode, out, err, token


def test_markers_carry_the_exit_status_and_are_cut_from_stderr(tmp_path) -> None:
    code, out, err, token = _run_wrapper('echo "$V"; echo oops >&2; exit 255', tmp_path)
    report = read_report(err, token)
    assert (code, report.started, report.status) == (255, True, 255)
    assert report.stderr == b"oops\n" and out == b"a 'b'; c\n"


def test_no_start_marker_means_the_connection_failed() -> None:
    report = read_report(b"ssh: connect to host x port 22: Connection refused\n", make_token())
    assert not report.started and report.status is None


def test_start_without_end_means_the_connection_was_lost() -> None:
    token = make_token()
    report = read_report(f"{token} S\npartial".encode(), token)
    assert report.started and report.status is None and report.stderr == b"partial"


@pytest.mark.parametrize(
    ("staging", "message"),
    [
        (Staging(workdir="...", basefiles=("rel.py",)), "relative path"),
        (Staging(workdir="wd/{}", basefiles=("b.py",)), "fixed --workdir"),
    ],
)
def test_staging_rejects_impossible_combinations(staging: Staging, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        staging.check()


def test_a_host_that_never_answers_is_given_up() -> None:
    host = Host(parse_sshlogin("nowhere"), ssh=None)
    host.ssh = object()  # type: ignore[assignment]  # a remote host, never contacted here
    pool = HostPool([host], lambda h: "refused", lambda cpus: 1, io.BytesIO())
    pool.start()
    try:
        assert pool.acquire() is None  # returns once the prober has failed enough times
        assert pool.exhausted and host.failures >= GIVE_UP_CONNECTS
        assert host.state is HostState.DOWN
    finally:
        pool.close()
