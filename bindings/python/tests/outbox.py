"""A file outbox (``mailer=file:///dir``) read the way a person reads a mailbox: the code from the
newest code email, the alert emails. Shared by the login tests and the Flask example's test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Set

import breakglass

CODE_MARK = "one-time code is: "


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: Set[Path] = set()

    @property
    def mailer(self) -> str:
        return self.path.as_uri()

    def mails(self) -> List[str]:
        breakglass.flush(30)
        return [p.read_text(errors="replace") for p in sorted(self.path.iterdir()) if p.is_file()]

    def new_code(self) -> str:
        """The code in the one code email not read before (fails unless exactly one arrived)."""
        breakglass.flush(30)
        codes = []
        for p in sorted(self.path.iterdir()):
            text = p.read_text(errors="replace")
            if p in self.seen or CODE_MARK not in text:
                continue
            self.seen.add(p)
            m = re.search(re.escape(CODE_MARK) + r"([0-9]{6})", text)
            assert m, text
            codes.append(m.group(1))
        assert len(codes) == 1, f"want one new code email, got {len(codes)}"
        return codes[0]

    def alerts(self) -> List[str]:
        """Every alert email: the ones that carry an event id."""
        return [m for m in self.mails() if "X-Breakglass-Event-Id:" in m]
