"""pam_breakglass.so through libpam itself (pam_start_confdir: a service file in the test's
temp dir, no /etc/pam.d): every outcome of the login, and the configurations it refuses."""

from __future__ import annotations

import os

import pytest
from conftest import (CODE_PROMPT, CODE_SENT, DENIED, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL,
                      PAM_SUCCESS, PASSWORD_PROMPT, STORE, USER, texts, wait_until)


def wrong(code: str) -> str:
    """A code that is certainly not ``code``."""
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def kinds(env) -> list:
    return [e["event"] for e in env.events()]


def test_right_password_and_code_log_in(env):
    r = env.login(session=True)
    assert r["rc"] == PAM_SUCCESS, r
    assert [(m["style"], m["text"]) for m in r["messages"]] == [
        (1, PASSWORD_PROMPT), (4, CODE_SENT), (1, CODE_PROMPT)]
    # setcred grants nothing and succeeds; the PAM session's close ends the break-glass one.
    assert (r["setcred"], r["open"], r["close"]) == (PAM_SUCCESS, PAM_SUCCESS, PAM_SUCCESS)
    assert "login_succeeded" in kinds(env)
    assert kinds(env)[-1] == "session_ended"
    # The alarm was delivered before the module returned (the driver has exited since).
    assert len(env.outbox.alerts()) == 1
    assert r["stderr"] == ""  # nothing written to the host's stderr


def test_wrong_password_is_denied_without_a_code(env):
    r = env.login(password="not the password")
    assert r["rc"] == PAM_AUTH_ERR
    assert texts(r) == [PASSWORD_PROMPT, DENIED]
    assert "code_sent" not in kinds(env) and "login_succeeded" not in kinds(env)
    assert not env.outbox.alerts()


def test_wrong_code_is_denied(env):
    r = env.login(code=lambda: wrong(env.outbox.new_code()))
    assert r["rc"] == PAM_AUTH_ERR
    assert texts(r) == [PASSWORD_PROMPT, CODE_SENT, CODE_PROMPT, DENIED]
    assert "login_failed" in kinds(env) and "login_succeeded" not in kinds(env)
    # No login alarm; a wrong code after the right password raises the guessing alarm.
    alerts = env.outbox.alerts()
    assert not [a for a in alerts if "Emergency login from" in a]
    assert [a for a in alerts if "guessing the emergency code" in a]


def test_no_code_answer_is_a_denial(env):
    r = env.login(code=None)
    assert r["rc"] == PAM_AUTH_ERR
    assert "login_succeeded" not in kinds(env)


def test_another_user_is_ignored_and_left_to_the_stack(env):
    # bg-stack: [success=done ignore=ignore default=die] then pam_permit.
    r = env.login(user="alice", service="bg-stack")
    assert r["rc"] == PAM_SUCCESS and r["messages"] == []  # pam_permit's success, no prompt
    assert env.events() == []
    # The same stack with the break-glass user: a denial ends it.
    r = env.login(service="bg-stack", password="not the password")
    assert r["rc"] == PAM_AUTH_ERR
    r = env.login(service="bg-stack")
    assert r["rc"] == PAM_SUCCESS and texts(r, 1) == [PASSWORD_PROMPT, CODE_PROMPT]


def test_a_missing_config_is_unavailable(env):
    env.config.unlink()
    r = env.login()
    assert r["rc"] == PAM_AUTHINFO_UNAVAIL
    assert texts(r) == [DENIED]  # no prompt: nothing is asked before the config is read


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_a_config_others_could_write_is_unavailable(env, mode):
    env.write_config(mode=mode)
    r = env.login(service="bg-stack")  # under default=die: never the success of what follows
    assert r["rc"] == PAM_AUTHINFO_UNAVAIL
    assert texts(r) == [DENIED]


def test_a_config_not_owned_by_root_is_unavailable(env):
    os.chown(env.config, 1234, 1234)
    assert env.login()["rc"] == PAM_AUTHINFO_UNAVAIL


def test_a_symlinked_config_is_unavailable(env):
    real = env.config.with_name("real.conf")
    env.config.rename(real)
    env.config.symlink_to(real)
    assert env.login()["rc"] == PAM_AUTHINFO_UNAVAIL


def test_no_host_wide_state_is_unavailable(env):
    env.write_config(BREAKGLASS_SLOT_URL=None, BREAKGLASS_STATE_DIR=None)
    r = env.login()
    assert r["rc"] == PAM_AUTHINFO_UNAVAIL
    assert texts(r) == [DENIED]


@pytest.mark.parametrize("line", [
    "BREAKGLASS_NO_SUCH_KEY=1",          # not a key
    "BREAKGLASS_MAX_ATTEMPTS=many",      # a bad value
    "export BREAKGLASS_MAX_ATTEMPTS=3",  # shell syntax is not read
    "BREAKGLASS_MAX_ATTEMPTS",           # no value
])
def test_a_bad_config_line_is_unavailable(env, line):
    body = env.config.read_text() + line + "\n"
    env.write_config(text=body)
    assert env.login()["rc"] == PAM_AUTHINFO_UNAVAIL


def test_values_are_taken_literally(env):
    # A hash full of $ and , that a shell would expand: read as written (the login works).
    assert "$argon2id$" in env.settings["BREAKGLASS_PASSWORD_HASH"]
    assert env.login()["rc"] == PAM_SUCCESS


def test_bad_module_arguments_are_unavailable(env):
    from conftest import MODULE
    env.service("typo", f"auth required {MODULE} config={env.config} usr={USER}\n")
    assert env.login(service="typo")["rc"] == PAM_AUTHINFO_UNAVAIL
    env.service("noconfig", f"auth required {MODULE} user={USER}\n")
    assert env.login(service="noconfig")["rc"] == PAM_AUTHINFO_UNAVAIL


def test_a_host_name_is_refused_and_never_resolved(env):
    r = env.login(rhost="localhost")
    assert r["rc"] == PAM_AUTH_ERR
    assert texts(r) == [DENIED]  # refused before the password is asked for
    r = env.login(rhost="10.9.8.7")  # an IP literal outside allowed_ips
    assert r["rc"] == PAM_AUTH_ERR


def test_no_rhost_is_a_local_login_on_loopback(env):
    assert env.login(rhost=None)["rc"] == PAM_SUCCESS


@pytest.mark.skipif(STORE != "slot_url", reason="a store that cannot answer: the Redis case")
def test_a_store_that_cannot_answer_is_unavailable(env):
    import slotkit
    env.write_config(BREAKGLASS_SLOT_URL=f"redis://127.0.0.1:{slotkit.free_port()}",
                     BREAKGLASS_SLOT_TIMEOUT_MS="500")
    r = env.login()
    assert r["rc"] == PAM_AUTHINFO_UNAVAIL
    assert "login_succeeded" not in kinds(env)


def test_an_audit_failure_is_unavailable_never_success(env):
    # audit_required (the default): a success that cannot be recorded starts no session.
    env.write_config(BREAKGLASS_AUDIT_LOG=str(env.tmp / "no-such-dir" / "audit.jsonl"))
    r = env.login()
    assert r["rc"] == PAM_AUTHINFO_UNAVAIL


def test_limits_hold_across_processes(env):
    env.write_config(BREAKGLASS_MAX_ATTEMPTS="2")
    for _ in range(2):
        assert env.login(password="nope")["rc"] == PAM_AUTH_ERR
    # Each login is a process of its own, as in sshd: the third is locked out, right password
    # or not, and no code is sent.
    r = env.login()
    assert r["rc"] == PAM_AUTH_ERR and texts(r) == [PASSWORD_PROMPT, DENIED]
    assert "code_sent" not in kinds(env)


def test_a_fork_after_the_module_ran_keeps_working(env):
    r = env.login(fork_password="not the password")
    assert r["rc"] == PAM_SUCCESS
    assert r["child_rc"] == PAM_AUTH_ERR  # the child ran a whole (refused) login, no hang
    assert wait_until(lambda: kinds(env).count("login_refused") == 1)


def authpriv(lines: list) -> list:
    """The messages among syslog datagrams whose facility is authpriv (10)."""
    out = []
    for line in lines:
        pri = int(line[1:line.index(">")])
        assert pri // 8 == 10, line  # every line the module sends is authpriv
        out.append(line)
    return out


def test_the_reason_goes_to_syslog_authpriv_never_a_secret(env):
    r = env.login(password="hunter2-not-it", syslog=True)
    assert r["rc"] == PAM_AUTH_ERR
    lines = authpriv(r["syslog"])
    assert any(f'pam_breakglass: break-glass login of "{USER}" denied: password step: wrong '
               "password" in x for x in lines), lines
    assert not any("hunter2" in x for x in lines)

    env.write_config(mode=0o666)
    r = env.login(syslog=True)
    assert r["rc"] == PAM_AUTHINFO_UNAVAIL
    assert any("unavailable: config" in x and "writable by group or others" in x
               for x in authpriv(r["syslog"])), r["syslog"]

    env.write_config()
    seen = []
    r = env.login(code=lambda: seen.append(env.outbox.new_code()) or seen[-1], syslog=True)
    assert r["rc"] == PAM_SUCCESS
    lines = authpriv(r["syslog"])
    assert any(f'break-glass login of "{USER}" granted' in x for x in lines), lines
    assert not any(seen[0] in x or "correct horse" in x for x in lines)
    assert r["stderr"] == ""


def test_pam_silent_leaves_only_the_prompts(env):
    r = env.login(silent=True)
    assert r["rc"] == PAM_SUCCESS and texts(r) == [PASSWORD_PROMPT, CODE_PROMPT]
    r = env.login(silent=True, password="not it")
    assert r["rc"] == PAM_AUTH_ERR and texts(r) == [PASSWORD_PROMPT]
