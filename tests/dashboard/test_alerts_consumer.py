"""A real task consumer (`manage.py run_huey`, a process of its own) mails the alert of a run
that failed at the provider while nobody had its page open: the run is started from another
process, the consumer follows it to `failed`, queues the alert and sends it, here to a folder
(EMAIL_URL=filemail://…). See tests/test_consumer_process.py for how the processes are set up."""

import email
import email.policy
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from tests.test_consumer_process import START_A_RUN, WAIT_SECONDS, _manage, _run_row

START_A_FAILING_RUN = START_A_RUN.replace('message="Hi"', 'message="Hi [fail]"').replace(
    "Membership.objects.create(team=team, user=user, role=Role.OWNER)",
    "Membership.objects.create(team=team, user=user, role=Role.OWNER)\n"
    'User.objects.filter(pk=user.pk).update(language="es")',
)


def _mails(folder) -> str:
    return "".join(path.read_text() for path in folder.glob("*")) if folder.exists() else ""


def test_a_consumer_process_mails_the_failure_of_a_run_nobody_watches(
    tmp_path, consumer_env, fake_upstream
):
    assert 'message="Hi [fail]"' in START_A_FAILING_RUN and 'language="es"' in START_A_FAILING_RUN
    fake_upstream.run_step_seconds = 1
    mails = tmp_path / "mails"
    env = {**consumer_env, "EMAIL_URL": f"filemail:///{mails}"}
    database = tmp_path / "db.sqlite3"
    _manage("migrate", "--noinput", env=env)
    started = _manage("shell", "-c", START_A_FAILING_RUN, env=env)
    run_hex = started.split("RUN ", 1)[1].split()[0]

    log_path = tmp_path / "consumer.log"
    log = log_path.open("w")
    try:
        consumer = subprocess.Popen(
            [sys.executable, "manage.py", "run_huey", "--workers", "2"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    except OSError as error:
        pytest.skip(f"cannot start the consumer in a process of its own: {error}")
    try:
        waited_until = time.monotonic() + WAIT_SECONDS
        while "owner@example.com" not in _mails(mails) and time.monotonic() < waited_until:
            assert consumer.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.5)
        sent = _mails(mails)
        assert _run_row(database, run_hex)[0] == "failed", log_path.read_text()[-3000:]
        assert "To: owner@example.com" in sent, log_path.read_text()[-3000:]
        (message,) = [
            email.message_from_bytes(chunk.strip(), policy=email.policy.default)
            for chunk in b"".join(path.read_bytes() for path in mails.glob("*")).split(b"-" * 79)
            if b"To: owner@example.com" in chunk
        ]
        body = message.get_content()
        assert "Falló una ejecución del asistente «Tutor»" in body  # in the owner's language
        assert "server_error" in body
    finally:
        consumer.send_signal(signal.SIGINT)
        try:
            consumer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            consumer.kill()
            consumer.wait()
        log.close()
    # Once: the consumer's later sweeps do not send it again.
    assert _mails(mails).count("To: owner@example.com") == 1
