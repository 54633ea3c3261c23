"""The README's run command starts a server that the official SDK can use; the other CLI commands work."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from azure.communication.chat import ChatClient, CommunicationTokenCredential
from azure.communication.identity import CommunicationIdentityClient

from .conftest import ROOT, launch


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```(?:sh|bash|console)?\n(.*?)\n```", text, re.S)[0].strip().splitlines()


def test_readme_opens_with_two_commands() -> None:
    commands = readme_commands()
    assert commands == ["python3 dev.py serve", "python3 dev.py test"]
    assert "python3 dev.py test" in (ROOT / ".ci" / "run").read_text()


def test_readme_run_command_serves_the_official_sdk(tmp_path: Path) -> None:
    # Exactly the README's command, run from a working folder, with free ports so parallel runs never clash.
    command = readme_commands()[0].split()
    command[0] = shutil.which("python3") or sys.executable
    command[1] = str(ROOT / "dev.py")
    work = tmp_path / "work"
    work.mkdir()
    server = launch(work / "threadline-data", command=[*command, "--http-port", "0", "--https-port", "0"])
    try:
        banner = "\n".join(server.output)
        conn = re.search(r"Connection string: (\S+)", banner)
        assert conn is not None and conn.group(1).startswith("endpoint=https://127.0.0.1:")
        assert (work / "threadline-data" / "threadline.db").exists()  # the default data folder, in the cwd
        ca = str(work / "threadline-data" / "tls" / "ca.pem")
        assert f'connection_verify="{ca}"' in banner
        identity = CommunicationIdentityClient.from_connection_string(conn.group(1), connection_verify=ca)
        user, token = identity.create_user_and_token(["chat"])
        chat = ChatClient(server.https_endpoint, CommunicationTokenCredential(token.token), connection_verify=ca)
        thread = chat.create_chat_thread("from the README").chat_thread
        assert thread.created_by.properties["id"] == user.properties["id"]
        # The SDK's session keeps an idle TLS keep-alive open: SIGTERM must still end the server promptly.
        began = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0
        assert time.monotonic() - began < 8
        assert "Threadline stopped." in server.process.stdout.read()  # type: ignore[union-attr]
    finally:
        server.stop(signal.SIGKILL)


def test_user_token_and_migrate_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = [sys.executable, "-m", "threadline"]
    out = subprocess.run([*run, "user", "--data", str(data), "--scopes", "chat"], capture_output=True, text=True,
                         check=True).stdout
    user_id = re.search(r"user:\s+(\S+)", out)
    assert user_id is not None and user_id.group(1).startswith("8:acs:")
    token = subprocess.run([*run, "token", user_id.group(1), "--data", str(data), "--minutes", "60"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert CommunicationTokenCredential(token).get_token().token == token
    bad = subprocess.run([*run, "token", "8:acs:nobody", "--data", str(data)], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr == (
        "threadline token: error: USER_ID 8:acs:nobody: Identity not found; create one with `threadline user`, "
        "on the same --data/--database\n"
    )
    short = subprocess.run([*run, "user", "--data", str(data), "--minutes", "5"], capture_output=True, text=True)
    assert short.returncode == 2 and short.stderr.startswith("threadline user: error: --minutes 5: ")
    odd = subprocess.run([*run, "user", "--data", str(data), "--scopes", "chat,bogus"], capture_output=True, text=True)
    assert odd.returncode == 2
    assert "--scopes chat,bogus: Scope 'bogus' is not valid; use a comma-separated" in odd.stderr
    migrated = subprocess.run([*run, "migrate", "--data", str(data)], capture_output=True, text=True, check=True)
    assert "migrations applied" in migrated.stdout
    conn = subprocess.run([*run, "connection-string", "--data", str(data)], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert conn == f"endpoint=https://127.0.0.1:8443/;accesskey={(data / 'access-key').read_text().strip()}"


def test_restart_keeps_data_and_tokens(start_server) -> None:  # type: ignore[no-untyped-def]
    first = start_server()
    identity = CommunicationIdentityClient.from_connection_string(first.connection_string,
                                                                  connection_verify=first.cert_path)
    _, token = identity.create_user_and_token(["chat"])
    chat = ChatClient(first.https_endpoint, CommunicationTokenCredential(token.token),
                      connection_verify=first.cert_path)
    thread_id = chat.create_chat_thread("kept").chat_thread.id
    sent = chat.get_chat_thread_client(thread_id, connection_verify=first.cert_path).send_message("durable").id
    first.stop(signal.SIGKILL)  # no clean shutdown: acknowledged writes must still be there
    second = start_server(data_dir=first.data_dir)
    again = ChatClient(second.https_endpoint, CommunicationTokenCredential(token.token),
                       connection_verify=second.cert_path)
    message = again.get_chat_thread_client(thread_id, connection_verify=second.cert_path).get_message(sent)
    assert message.content.message == "durable"
