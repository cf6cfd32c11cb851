"""Runs become turns of conversations: every existing run is a one-turn conversation (its own
first and newest turn). The column is made required, with the constraints, in 0010 (on
PostgreSQL, altering a table in the transaction that just updated its rows under a deferred
foreign key fails)."""

import django.db.models.deletion
from django.db import migrations, models


def one_turn_conversations(apps, schema_editor):
    Run = apps.get_model("assistants", "Run")
    Run.objects.filter(conversation__isnull=True).update(conversation=models.F("pk"))


class Migration(migrations.Migration):
    dependencies = [
        ("assistants", "0008_list_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="conversation",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="turns",
                to="assistants.run",
                verbose_name="conversation",
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="is_latest",
            field=models.BooleanField(default=True, editable=False, verbose_name="newest turn"),
        ),
        migrations.AddField(
            model_name="run",
            name="is_retry",
            field=models.BooleanField(default=False, editable=False, verbose_name="retry"),
        ),
        migrations.AddField(
            model_name="run",
            name="turn",
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name="turn"),
        ),
        migrations.RunPython(one_turn_conversations, migrations.RunPython.noop, elidable=True),
    ]
