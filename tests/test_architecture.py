"""The shape docs/architecture.md describes, held: modules small enough to read in one sitting, the
conversation's helpers reaching it only through ``ConversationHost``, one owner for the current reply."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "voiceagent_desktop"
HELPERS = ("answer.py", "barge_in.py", "actions.py")


def test_every_module_is_at_most_500_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}  # fmt: skip
    assert not long, long


def test_the_conversations_helpers_use_only_its_host_interface() -> None:
    for name in HELPERS:
        tree = ast.parse((PACKAGE / "engine" / name).read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "conversation" not in imported, name  # (no cycle hidden behind TYPE_CHECKING either)
        private = sorted(
            {a.attr for a in ast.walk(tree) if isinstance(a, ast.Attribute) and a.attr.startswith("_")
             and isinstance(a.value, ast.Name | ast.Attribute)
             and (a.value.id if isinstance(a.value, ast.Name) else a.value.attr) in ("c", "conversation")}
        )  # fmt: skip
        assert not private, (name, private)


def _on_conversation(node: ast.expr) -> bool:
    """``c.X``, ``self.c.X``, ``conversation.X``: an attribute of the conversation, outside it."""
    v = node.value if isinstance(node, ast.Attribute) else None
    return (isinstance(v, ast.Name) and v.id in ("c", "conversation")) or (
        isinstance(v, ast.Attribute) and v.attr == "c"
    )


def test_only_the_owner_assigns_the_current_reply() -> None:
    writes = []
    for path in (PACKAGE / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else []
            targets += [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else []
            for leaf in (x for t in targets for x in ast.walk(t)):
                if isinstance(leaf, ast.Attribute) and _on_conversation(leaf):
                    writes.append(f"{path.name}:{node.lineno} {leaf.attr}")
    assert not writes, writes  # no helper writes the conversation's fields (its methods do)
    conversation = (PACKAGE / "engine" / "conversation.py").read_text(encoding="utf-8")
    assert "self._reply" not in conversation and "self._task " not in conversation  # (CurrentReply's)
