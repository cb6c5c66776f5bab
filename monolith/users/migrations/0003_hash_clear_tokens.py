"""Move API tokens out of the clear: each DRF authtoken key becomes a hashed knox token.

Before this, `rest_framework.authtoken` kept every token in clear in `authtoken_token`: anyone
who read the database (a backup, a replica, a log of a query) could act as any user. Each key
is now stored as knox's SHA-512 digest, so a client that held a token keeps working without
logging in again, but its token now expires like any other (the configured TTL from now). The
clear table is then dropped. Going back is not possible: the clear keys are gone for good, which
is the point.
"""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

CLEAR_TABLE = "authtoken_token"
SEVEN_DAYS_S = 7 * 24 * 3600


def hash_clear_tokens(apps, schema_editor):
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS

    connection = schema_editor.connection
    if CLEAR_TABLE not in connection.introspection.table_names():
        return  # a database created after authtoken was removed: nothing was ever in clear
    auth_token = apps.get_model("knox", "AuthToken")
    quoted = connection.ops.quote_name(CLEAR_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {quoted}")  # noqa: S608 - a constant name
        rows = cursor.fetchall()
    ttl = getattr(settings, "STRANGLER_TOKEN_TTL_S", SEVEN_DAYS_S)
    expiry = timezone.now() + timedelta(seconds=ttl)
    digests = [(hash_token(key), user_id) for key, user_id in rows]
    auth_token.objects.using(connection.alias).bulk_create(
        [
            auth_token(
                digest=digest,
                # Not the key's first characters, as knox would: nothing of the key stays.
                token_key=digest[: CONSTANTS.TOKEN_KEY_LENGTH],
                user_id=user_id,
                expiry=expiry,
            )
            for digest, user_id in digests
        ],
        ignore_conflicts=True,
    )
    schema_editor.execute(f"DROP TABLE {quoted}")


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0002_cache_table"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(hash_clear_tokens, migrations.RunPython.noop)]
