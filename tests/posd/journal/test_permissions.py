"""A state dir file this user may not read (someone ran `sudo posd run` once by hand: the files
it made are root's, 0600) is fixed by the chown the refusal prints, never by accepting loss.

The test makes the file unreadable with `chmod 000`, which fails the same way as another
user's file. Run as root, the commands run without the capabilities that let root read any
file (`CAP_DAC_OVERRIDE`, `CAP_DAC_READ_SEARCH`), as the service's own user would.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from demo.devconfig import DevConfig
from posd.daemon.exits import NEEDS_TECHNICIAN
from posd.daemon.lock import StateDirLock
from posd.journal import Journal
from posd.journal.files import SYNC_LOCK_FILE
from posd.journal.identity import IDENTITY_FILE
from posd.keys.local import LocalKeySource
from posd.keys.provider import RotatingKeyProvider
from tests.cards import STORE_ID, TERMINAL_ID
from tests.posd.daemon.test_host_security import traversable
from tests.posd.journal.test_identity import capture

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
OPEN_AND_APPEND_NOTHING = (
    "import sys; from pathlib import Path; from posd.journal import Journal\n"
    "with Journal.open(Path(sys.argv[1])) as journal: print(journal.journal_id)"
)


def _without_root_file_access() -> None:
    """In the child, before exec: root reads and writes only what the file modes allow."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def as_service(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_without_root_file_access if os.geteuid() == 0 else None,
    )


def posd(*args: str) -> subprocess.CompletedProcess[str]:
    return as_service(sys.executable, "-m", "posd", *args)


def follow(advice: str) -> None:
    """Run the command between backquotes in `advice` (without `sudo`: the test owns the
    files already, or is root)."""
    match = re.search(r"`(sudo chown [^`]+)`", advice)
    assert match, advice
    for part in match.group(1).split("&&"):
        words = [word for word in shlex.split(part) if word != "sudo"]
        subprocess.run(words, check=True, timeout=30)


def test_an_unreadable_identity_file_leads_to_chown_not_to_accepting_loss(
    state_dir: Path, local_key_provider: RotatingKeyProvider
) -> None:
    with Journal.open(state_dir) as journal:
        journal_id = journal.journal_id
        issued = capture(journal, local_key_provider, 3)[-1]
    identity = state_dir / IDENTITY_FILE
    identity.chmod(0)

    opened = as_service(sys.executable, "-c", OPEN_AND_APPEND_NOTHING, str(state_dir))
    assert opened.returncode != 0 and "JournalPermissionError" in opened.stderr, opened.stderr
    reset = posd("journal", "reset", "--accept-loss", "--state-dir", str(state_dir))
    assert reset.returncode == 2, reset.stderr
    advice = reset.stderr
    assert str(identity) in advice and "mode 0000" in advice, advice
    assert "chown" in advice and "accept-loss" not in advice, advice
    assert "Traceback" not in advice

    follow(advice)
    opened = as_service(sys.executable, "-c", OPEN_AND_APPEND_NOTHING, str(state_dir))
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.strip() == journal_id  # the same journal: nothing was given up
    reset = posd("journal", "reset", "--accept-loss", "--state-dir", str(state_dir), "--json")
    assert reset.returncode == 0 and json.loads(reset.stdout)["action"] == "none", reset.stderr
    with Journal.open(state_dir) as journal:
        assert capture(journal, local_key_provider, 1) == [issued + 1]


def test_another_users_lock_file_leads_to_chown(state_dir: Path) -> None:
    Journal.open(state_dir).close()
    lock = state_dir / "posd.lock"
    lock.touch(mode=0)
    lock.chmod(0)
    reset = posd("journal", "reset", "--accept-loss", "--state-dir", str(state_dir))
    assert reset.returncode == 2 and str(lock) in reset.stderr, reset.stderr
    assert "chown" in reset.stderr and "Traceback" not in reset.stderr
    follow(reset.stderr)
    assert posd("journal", "reset", "--accept-loss", "--state-dir", str(state_dir)).returncode == 0


def test_posd_run_refuses_with_the_chown_and_exits_2(
    state_dir: Path, tmp_path: Path, local_key_provider: RotatingKeyProvider
) -> None:
    """The daemon's own refusal (systemd shows it; exit 2: no restart loop) gives the same
    advice, never `reset --accept-loss`."""
    with Journal.open(state_dir) as journal:
        capture(journal, local_key_provider, 1)
    (state_dir / IDENTITY_FILE).chmod(0)
    config = DevConfig(
        store_id=STORE_ID,
        terminal_id=TERMINAL_ID,
        api={"socket": "api.sock", "socket_group": ""},
        aws={"region": "us-east-1"},
        devices={},
    )
    run = posd("run", "--config", str(config.write(tmp_path / "posd.toml")))
    assert run.returncode == NEEDS_TECHNICIAN, run.stderr
    assert str(state_dir / IDENTITY_FILE) in run.stderr and "chown" in run.stderr, run.stderr
    assert "accept-loss" not in run.stderr


def test_a_read_only_file_that_is_not_posds_is_left_alone(state_dir: Path) -> None:
    """Only posd's own files are judged: a key an operator made read-only on purpose is not
    a reason to refuse."""
    Journal.open(state_dir).close()
    key = state_dir / "terminal.key"
    key.write_text("not a real key\n")
    key.chmod(0o400)
    opened = as_service(sys.executable, "-c", OPEN_AND_APPEND_NOTHING, str(state_dir))
    assert opened.returncode == 0, opened.stderr


# Two users sharing one group, as the units run them: capture (`posd`) and delivery
# (`posd-sync`), group `posd`, each with the units' UMask=0007. Each runs in a forked child of
# this process (the interpreter's own files may be root's alone), with its real uid and gid.
CAPTURE_UID, DELIVERY_UID, SHARED_GID = 61001, 61002, 61000
UNIT_UMASK = 0o007
RESULT_BYTES = 4096


def capture_and_keep_a_key(state: Path) -> list[str]:
    source = LocalKeySource(state / "dev-kek.b64", create=True)
    with (
        StateDirLock.acquire(state),
        Journal.open(state) as journal,
        RotatingKeyProvider(source, source) as keys,
    ):
        return [str(capture(journal, keys, 2)[-1])]


def deliver_and_try_the_key(state: Path) -> list[str]:
    with StateDirLock.acquire(state, SYNC_LOCK_FILE), Journal.open(state) as journal:
        leased = journal.lease(10, time.time(), 30.0)
    try:
        (state / "dev-kek.b64").read_bytes()
        return [str(len(leased.records)), "key read"]
    except PermissionError:
        return [str(len(leased.records)), "key refused"]


def as_user(uid: int, work: Callable[[Path], list[str]], state: Path) -> list[str]:
    """`work(state)` in a forked child running as `uid` in the shared group: its answer."""
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never returns to pytest
        answer: object = "?"
        try:
            os.setgroups([])
            os.setgid(SHARED_GID)
            os.setuid(uid)
            os.umask(UNIT_UMASK)
            answer = work(state)
        except BaseException as error:
            answer = f"{type(error).__name__}: {error}"
        finally:
            os.write(writing, json.dumps(answer).encode())
            os._exit(0)
    os.close(writing)
    try:
        os.waitpid(child, 0)
        answer = json.loads(os.read(reading, RESULT_BYTES))
    finally:
        os.close(reading)
    assert isinstance(answer, list), answer
    return [str(word) for word in answer]


@pytest.mark.skipif(os.geteuid() != 0, reason="running as two other users needs root")
def test_two_users_in_one_group_share_the_journal_not_the_keys(tmp_path: Path) -> None:
    """Capture and delivery as two users of the group `posd` both write the journal (capture
    appends, delivery leases, each takes its lock; then capture appends again); the key file
    capture keeps in the state dir is not delivery's to read; nothing is others'."""
    state = tmp_path / "lane" / "state"
    state.mkdir(parents=True)
    os.chown(state, CAPTURE_UID, SHARED_GID)  # what `StateDirectory=` does for the capture unit
    state.chmod(0o770)
    with traversable(state):
        assert as_user(CAPTURE_UID, capture_and_keep_a_key, state) == ["2"]
        assert as_user(DELIVERY_UID, deliver_and_try_the_key, state) == ["2", "key refused"]
        assert as_user(CAPTURE_UID, capture_and_keep_a_key, state) == ["4"]
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in state.iterdir()}
    assert modes["dev-kek.b64"] == 0o600
    assert all(mode & 0o007 == 0 for mode in modes.values()), modes
    for name in ("journal.db", "journal.identity", "posd.lock", "sync.lock", "capture.priority"):
        assert modes[name] == 0o660, (name, modes)
    assert (state / "sync.lock").stat().st_uid == DELIVERY_UID
