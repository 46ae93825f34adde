"""Deleting auth users: the one Supabase Auth admin call the service makes.

Production asks Supabase's admin API (supabase-py's `auth.admin.delete_user`, with the
service-role key); the direct configuration (a plain Postgres, the local stack) deletes the row
from auth.users itself. Either way the auth.users delete trigger tombstones our users row.
Both satisfy the `AuthAdmin` port of shared.flows.removal.
"""

from __future__ import annotations

import uuid

import httpx

from shared.core.config import Settings
from shared.core.errors import AppError, AuthUnavailable, DatabaseUnavailable
from shared.core.http import async_client


class SupabaseAuthAdmin:
    """Supabase Auth's admin API (`DELETE /auth/v1/admin/users/{id}`) through supabase-py."""

    def __init__(
        self,
        url: str,
        service_role_key: str,
        *,
        timeout_s: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        from supabase_auth import AsyncGoTrueAdminAPI

        self._http = http or async_client(timeout=httpx.Timeout(timeout_s, connect=5.0))
        self._api = AsyncGoTrueAdminAPI(
            url=url.rstrip("/") + "/auth/v1",
            headers={"apikey": service_role_key, "Authorization": f"Bearer {service_role_key}"},
            http_client=self._http,
        )

    async def delete_user(self, user_id: uuid.UUID) -> None:
        from supabase_auth.errors import AuthApiError, AuthError

        try:
            await self._api.delete_user(str(user_id))
        except AuthApiError as exc:
            if exc.status == 404:
                return
            raise AuthUnavailable(f"Could not delete the sign-in account ({exc.status}).") from exc
        except (AuthError, httpx.HTTPError) as exc:
            raise AuthUnavailable(
                "Could not reach the sign-in service to delete the account."
            ) from exc

    async def aclose(self) -> None:
        await self._http.aclose()


CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 15_000  # as the database transport's


class PostgresAuthAdmin:
    """The direct configuration: delete from auth.users with the database URL's own role."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    async def delete_user(self, user_id: uuid.UUID) -> None:
        import psycopg

        try:
            # Bounded as every other call: the connection, and the delete (a lock held on the
            # user's row must not hold the request forever).
            async with await psycopg.AsyncConnection.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            ) as conn:
                await conn.execute("delete from auth.users where id = %s", (user_id,))
        except psycopg.OperationalError as exc:  # out of reach, or the timeout
            raise DatabaseUnavailable() from exc
        except psycopg.Error as exc:
            raise AppError("Could not delete the sign-in account.") from exc

    async def aclose(self) -> None:
        return None


def open_auth_admin(settings: Settings) -> SupabaseAuthAdmin | PostgresAuthAdmin:
    """Supabase's admin API when the project's URL and key are set, else the database."""
    if settings.supabase_url and settings.supabase_service_role_key:
        return SupabaseAuthAdmin(
            settings.supabase_url, settings.supabase_service_role_key.get_secret_value()
        )
    settings.require("database_url")
    assert settings.database_url is not None
    return PostgresAuthAdmin(settings.database_url.get_secret_value())
