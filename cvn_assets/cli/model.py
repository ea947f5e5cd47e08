"""`cvn model …`: the registered models of the cryptos (manual §4, §10).

MINIMAL GROUP (branch h15): the lifecycle commands (ls, approve, promote, …) live in the lifecycle
branch's version of this module; the model operations are added by
``cvn_assets.cli.model_ops.add_model_ops_commands``. The merge keeps that branch's group and the
one ``add_model_ops_commands(model_group)`` call below.
"""

from __future__ import annotations

import click

from cvn_assets.cli.model_ops import add_model_ops_commands


@click.group("model")
def model_group() -> None:
    """Registered models: lifecycle (§4) and model operations (§10)."""


add_model_ops_commands(model_group)
