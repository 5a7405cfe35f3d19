"""``keel auth user | token | role``: users, API tokens and role bindings.

They work on the metadata database of the current home (whoever can write it is trusted:
that is how the first admin is made) or, when KEEL_TRACKING_URI is a Keel server, through
its ``/api/v1/auth`` routes with an admin's KEEL_TOKEN.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from keel.cli._output import JsonOption, Table, out_console, plain, print_json, timestamp
from keel.errors import InvalidInput, NotFound

__all__ = ["app"]

app = typer.Typer(help="Users, API tokens and roles (viewer < editor < admin).")
user_app = typer.Typer(help="Add and list users.")
token_app = typer.Typer(help="Create, list and revoke API tokens.")
role_app = typer.Typer(help="Grant and revoke roles, globally or on one experiment or model.")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(role_app, name="role")

RoleArg = Annotated[str, typer.Argument(help="viewer, editor or admin.", show_default=False)]
ExperimentOption = Annotated[
    str | None, typer.Option("--experiment", help="Only on this experiment (by name).")
]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="Only on this registered model (by name).")
]


def _store() -> Any:
    from keel.governance.auth import auth_store

    return auth_store()


def _bindings(user: Any) -> str:
    return ", ".join(f"{b.role.value} on {b.object_type} {b.object_id}" for b in user.bindings)


def _print_users(users: list[Any]) -> None:
    table = Table()
    table.add_column("user", kind="id")
    table.add_column("role", kind="status")
    table.add_column("bindings")
    table.add_column("created", kind="time")
    for user in users:
        table.add_row(
            plain(user.name),
            plain(user.role.value),
            plain(_bindings(user) or "—", "dim"),
            timestamp(user.created_at),
        )
    out_console().print(table)


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user's name.", show_default=False)],
    role: Annotated[str, typer.Option("--role", help="Global role: viewer, editor or admin.")] = (
        "viewer"
    ),
    as_json: JsonOption = False,
) -> None:
    """Add a user with a global role (viewer unless --role says otherwise)."""
    from keel.governance.auth import Role

    user = _store().create_user(name, role=Role.parse(role))
    if as_json:
        print_json(user.to_dict())
        return
    out_console().print(
        plain(
            f"added {user.name} ({user.role.value}); give them a token with "
            f"`keel auth token create --user {user.name}`"
        )
    )


@user_app.command("list")
def user_list(as_json: JsonOption = False) -> None:
    """List users, their global role and their role bindings."""
    users = _store().list_users()
    if as_json:
        print_json({"users": [u.to_dict() for u in users]})
    elif not users:
        out_console().print(
            "no users yet; add the first admin with `keel auth user add NAME --role admin`"
        )
    else:
        _print_users(users)


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="Whose token it is.", show_default=False)],
    expires_days: Annotated[
        int | None,
        typer.Option("--expires-days", help="Expire after this many days (default: never)."),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="A note on what the token is for.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API token and print it — this once; only its hash is kept."""
    new = _store().create_token(user, expires_days=expires_days, label=label)
    info = new.info
    if as_json:
        print_json({"token": new.token, **info.to_dict()})
        return
    expiry = "never expires" if info.expires_at is None else f"expires {timestamp(info.expires_at)}"
    console = out_console()
    console.print(plain(f"token {info.token_id} for {info.user} ({expiry}):"))
    console.print(plain(new.token), soft_wrap=True)
    console.print(
        "Copy it now: it is not shown again. Use it as KEEL_TOKEN, or 'Authorization: "
        "Bearer <token>'.",
        soft_wrap=True,
    )


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List tokens: id, user, state, label, created, expires — never a secret."""
    from keel.store.clock import now_ms

    tokens = _store().list_tokens(user=user)
    now = now_ms()
    if as_json:
        print_json({"tokens": [k.to_dict(now) for k in tokens]})
        return
    if not tokens:
        out_console().print("no tokens")
        return
    table = Table()
    for column, kind in (
        ("id", "id"), ("user", "id"), ("state", "status"), ("label", "text"),
        ("created", "time"), ("expires", "time"),
    ):  # fmt: skip
        table.add_column(column, kind=kind)
    for k in tokens:
        table.add_row(
            plain(k.token_id),
            plain(k.user),
            plain(k.state(now)),
            plain(k.label or "—", "dim"),
            timestamp(k.created_at),
            timestamp(k.expires_at) if k.expires_at is not None else "never",
        )
    out_console().print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[
        str, typer.Argument(help="The token's id, as `keel auth token list` shows.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Revoke a token: every request with it gets 401 from now on."""
    from keel.store.clock import now_ms

    info = _store().revoke_token(token_id)
    if as_json:
        print_json(info.to_dict(now_ms()))
        return
    out_console().print(plain(f"revoked token {info.token_id} of {info.user}"))


def _target(experiment: str | None, model: str | None) -> dict[str, str]:
    if experiment is not None and model is not None:
        raise InvalidInput("give --experiment or --model, not both: a role is on one object")
    if experiment is None:
        return {} if model is None else {"model": model}
    from keel.stores import current_stores
    from keel.tracking.validation import check_name

    name = check_name("experiment", experiment)
    found = current_stores().tracking.get_experiment_by_name(name)
    if found is None:
        raise NotFound(f"no experiment named {name!r}")
    return {"experiment_id": found.experiment_id}


def _where(experiment: str | None, model: str | None) -> str:
    if experiment is not None:
        return f"on experiment {experiment}"
    return "globally" if model is None else f"on model {model}"


@role_app.command("grant")
def role_grant(
    user: Annotated[str, typer.Argument(help="The user.", show_default=False)],
    role: RoleArg,
    experiment: ExperimentOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give USER the ROLE globally, or on one experiment (--experiment) or model (--model)."""
    from keel.governance.auth import Role

    parsed = Role.parse(role)
    changed = _store().grant(user, parsed, **_target(experiment, model))
    if as_json:
        print_json(changed.to_dict())
        return
    out_console().print(plain(f"{changed.name} is now {parsed.value} {_where(experiment, model)}"))


@role_app.command("revoke")
def role_revoke(
    user: Annotated[str, typer.Argument(help="The user.", show_default=False)],
    role: RoleArg,
    experiment: ExperimentOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take ROLE back: a binding on one experiment or model, or a global role (to viewer)."""
    from keel.governance.auth import Role

    parsed = Role.parse(role)
    changed = _store().revoke(user, parsed, **_target(experiment, model))
    if as_json:
        print_json(changed.to_dict())
        return
    out_console().print(
        plain(f"revoked {parsed.value} from {changed.name} {_where(experiment, model)}")
    )
