"""Starting the gateway as a user does, when something is in the way: a busy port, an address that is
not this machine's, a bad flag. Each must end in one line on stderr saying what and what to do, and an
exit code (1: the environment is in the way, 2: the command line is wrong), never a traceback.

Real processes and real sockets throughout."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.harness import (
    GATEWAY_BIN,
    SECRET,
    example_config,
    example_files,
    free_port,
    free_port_pair,
    port_is_listening,
    spawn,
    start_gateway,
    wait_for,
    write_config,
)

ENV = {**os.environ, "JWT_SECRET": SECRET}


def run(argv: list[str], timeout: float = 30, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs a command that should stop by itself; one that keeps serving fails the test, and it and
    its children (Granian workers, demo origins: one process group) are killed."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or ENV, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail(f"{argv[1:3]} kept running for {timeout}s instead of stopping:\n{err[-3000:]}")
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # whatever it left behind
        except OSError:
            pass
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def gateway(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return run([GATEWAY_BIN, *args], timeout)


@contextmanager
def listener(port: int = 0, host: str = "127.0.0.1") -> Iterator[int]:
    """A plain listening socket: some other program holding the port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, port))
    s.listen()
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, example_config(9000, 9001), example_files())


def assert_one_clear_line(r: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    err = r.stderr.strip()
    assert r.returncode == code, f"exit {r.returncode}, expected {code}\n{r.stderr}"
    assert "Traceback" not in r.stderr + r.stdout and "Stack backtrace" not in r.stderr + r.stdout, r.stderr
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err[:3000]}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


# ---------------------------------------------------------------- a busy port


def test_serve_on_a_port_another_program_holds_is_one_line_and_exit_1(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    with listener() as port:
        r = gateway("serve", "--config", str(cfg), "--listen", f"127.0.0.1:{port}")
    line = assert_one_clear_line(r, 1, f"cannot listen on 127.0.0.1:{port}", "address already in use", "--listen")
    assert line.startswith("gateway: ")


def test_serve_on_the_port_of_a_running_gateway_refuses_instead_of_sharing_it(tmp_path: Path) -> None:
    # Granian binds with SO_REUSEPORT, so a second gateway on the same port used to start and silently
    # take half of the connections.
    first = start_gateway(config(tmp_path))
    try:
        r = gateway("serve", "--config", str(first.config), "--listen", f"127.0.0.1:{first.port}", timeout=20)
        assert_one_clear_line(r, 1, f"127.0.0.1:{first.port}", "address already in use", "another gateway")
        assert first.get("/__gateway/health").status_code == 200
    finally:
        first.stop()


def test_serve_on_a_wildcard_port_held_on_loopback(tmp_path: Path) -> None:
    with listener() as port:
        r = gateway("serve", "--config", str(config(tmp_path)), "--listen", f"0.0.0.0:{port}")
    assert_one_clear_line(r, 1, f"cannot listen on 0.0.0.0:{port}", "address already in use")


def test_serve_on_an_address_of_another_machine(tmp_path: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of this machine.
    r = gateway("serve", "--config", str(config(tmp_path)), "--listen", f"192.0.2.1:{free_port()}")
    assert_one_clear_line(r, 1, "cannot listen on 192.0.2.1:", "assign requested address")


def test_serve_when_granian_still_loses_the_race_for_the_port(tmp_path: Path) -> None:
    # The port is taken between the gateway's own check and Granian's bind: the check is disabled
    # here so that Granian meets the busy port itself.
    code = "import sys, gateway.cli as c; c._check_listen = lambda host, port, flag='--listen': host; c.main(sys.argv[1:])"
    with listener() as port:
        r = run([sys.executable, "-c", code, "serve", "--config", str(config(tmp_path)), "--listen", f"127.0.0.1:{port}"])
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "Stack backtrace" not in r.stderr, r.stderr[:3000]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in lines[0]


def test_serve_listens_on_a_host_name(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    port = free_port()
    proc = spawn("gateway", [GATEWAY_BIN, "serve", "--config", str(cfg), "--listen", f"localhost:{port}"], tmp_path / "logs", env=ENV)
    try:
        ok = wait_for(lambda: port_is_listening(port) or not proc.alive(), 20)
        assert ok and proc.alive(), proc.stderr_text()[-3000:]
        assert httpx.get(f"http://127.0.0.1:{port}/__gateway/health").status_code == 200
    finally:
        proc.stop()


def test_serve_on_an_unknown_host_name(tmp_path: Path) -> None:
    r = gateway("serve", "--config", str(config(tmp_path)), "--listen", "no-such-host.invalid:8080")
    assert_one_clear_line(r, 1, "cannot listen on no-such-host.invalid:8080")


# ---------------------------------------------------------------- bad flags


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_serve_refuses_fewer_than_one_worker(tmp_path: Path, workers: str) -> None:
    r = gateway("serve", "--config", str(config(tmp_path)), "--listen", f"127.0.0.1:{free_port()}", "--workers", workers, timeout=20)
    assert_one_clear_line(r, 2, "--workers")


@pytest.mark.parametrize("listen", ["nowhere", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:http"])
def test_serve_refuses_a_bad_listen_flag(tmp_path: Path, listen: str) -> None:
    r = gateway("serve", "--config", str(config(tmp_path)), "--listen", listen)
    assert_one_clear_line(r, 2, "--listen", repr(listen))


# ---------------------------------------------------------------- the demo


def demo(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return gateway("demo", *args, timeout=timeout)


def test_demo_on_a_busy_port_says_so_before_any_try_lines(tmp_path: Path) -> None:
    origin = free_port_pair()
    with listener() as port:
        r = demo("--listen", f"127.0.0.1:{port}", "--origin-port", str(origin))
    assert_one_clear_line(r, 1, f"cannot listen on 127.0.0.1:{port}", "address already in use", "--listen")
    assert "Try:" not in r.stdout and "curl" not in r.stdout, r.stdout
    assert not port_is_listening(origin), "the demo origin was started (and left running) anyway"


def test_demo_with_a_busy_origin_port_says_which_flag_to_change(tmp_path: Path) -> None:
    port = free_port()
    origin = free_port_pair(avoid=port)
    with listener(origin + 1) as busy:
        started = time.monotonic()
        r = demo("--listen", f"127.0.0.1:{port}", "--origin-port", str(origin))
        took = time.monotonic() - started
    assert_one_clear_line(r, 1, f"127.0.0.1:{busy}", "address already in use", "--origin-port")
    assert "Try:" not in r.stdout and "curl" not in r.stdout, r.stdout
    assert took < 8, f"took {took:.1f}s to notice a busy origin port"
    assert not port_is_listening(origin), "the other demo origin was left running"


def test_demo_whose_listen_port_is_an_origin_port(tmp_path: Path) -> None:
    origin = free_port_pair()
    r = demo("--listen", f"127.0.0.1:{origin + 1}", "--origin-port", str(origin))
    assert_one_clear_line(r, 2, "--origin-port", str(origin + 1))
    assert "Try:" not in r.stdout


@pytest.mark.parametrize("origin_port", ["0", "65535", "70000"])
def test_demo_refuses_an_origin_port_out_of_range(origin_port: str) -> None:
    r = demo("--listen", f"127.0.0.1:{free_port()}", "--origin-port", origin_port)
    assert_one_clear_line(r, 2, "--origin-port")


# ---------------------------------------------------------------- logging


def test_a_successful_reload_is_logged_at_info(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    gw = start_gateway(cfg)
    try:
        cfg.write_text(cfg.read_text().replace('default_country = "US"', 'default_country = "KR"'))
        os.kill(gw.proc.pid, signal.SIGHUP)
        # The reload happens in each worker at its next request.
        assert wait_for(lambda: (gw.get("/__gateway/health"), "config reloaded" in gw.stderr.read_text())[1], 10, 0.2), gw.stderr.read_text()
        lines = [line for line in gw.stderr.read_text().splitlines() if "config reloaded" in line]
        assert len(lines) == 1, lines
        assert " INFO gateway: config reloaded from " in lines[0], lines[0]
        assert "WARNING" not in lines[0]
        # A refused reload still says so at ERROR.
        cfg.write_text(cfg.read_text() + "\n[bogus]\n")
        os.kill(gw.proc.pid, signal.SIGHUP)
        assert wait_for(lambda: (gw.get("/__gateway/health"), "config reload refused" in gw.stderr.read_text())[1], 10, 0.2)
        assert any(" ERROR gateway: config reload refused" in line for line in gw.stderr.read_text().splitlines())
    finally:
        gw.stop()


# ---------------------------------------------------------------- other things in the way at start


def test_demo_with_a_weak_jwt_secret_says_so_before_starting_anything() -> None:
    port = free_port()
    origin = free_port_pair(avoid=port)
    r = run([GATEWAY_BIN, "demo", "--listen", f"127.0.0.1:{port}", "--origin-port", str(origin)], env={**os.environ, "JWT_SECRET": "too-short"})
    assert_one_clear_line(r, 1, "JWT_SECRET", "9 bytes", "32")
    assert "Try:" not in r.stdout
    assert not port_is_listening(origin) and not port_is_listening(port)


def test_serve_with_a_bad_runtime_mode_in_the_config(tmp_path: Path) -> None:
    # [server] runtime_mode replaced the environment-only GATEWAY_RUNTIME_MODE: a config problem.
    cfg = config(tmp_path)
    cfg.write_text(cfg.read_text().replace("[server]\n", '[server]\nruntime_mode = "bogus"\n', 1))
    r = run([GATEWAY_BIN, "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{free_port()}"], env=ENV)
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout, r.stderr
    assert f"{cfg}: server.runtime_mode: is 'bogus' (expected \"auto\", \"st\" or \"mt\")" in r.stderr.splitlines(), r.stderr


def test_serve_with_a_config_that_is_not_utf8(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_bytes(b"\xff\xfe[server]\n")
    r = gateway("serve", "--config", str(cfg), "--listen", f"127.0.0.1:{free_port()}")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert f"{cfg}: " in r.stderr and "UTF-8" in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1] == f"gateway: 1 problem(s) in {cfg}; not serving"


def test_ctrl_c_while_the_demo_starts_is_quiet_and_stops_the_origins(tmp_path: Path) -> None:
    port = free_port()
    origin = free_port_pair(avoid=port)
    p = subprocess.Popen(
        [GATEWAY_BIN, "demo", "--listen", f"127.0.0.1:{port}", "--origin-port", str(origin)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    )
    try:
        # The first origin is up: the demo is waiting for the second one, or just past it.
        assert wait_for(lambda: port_is_listening(origin) or p.poll() is not None, 20, 0.01)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        assert "Traceback" not in err, err[-3000:]
        assert p.returncode in (0, 130), (p.returncode, err)
        assert wait_for(lambda: not port_is_listening(origin) and not port_is_listening(origin + 1), 10), "a demo origin outlived the demo"
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
