"""Every run now belongs to a conversation (0009 filled it in): the column is required, and
the constraints hold a conversation's turns together (numbered once, one newest)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("assistants", "0009_run_conversation_turns"),
    ]

    operations = [
        migrations.AlterField(
            model_name="run",
            name="conversation",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="turns",
                to="assistants.run",
                verbose_name="conversation",
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("is_latest", True)),
                fields=["team", "-created_at"],
                name="assistants_run_team_convos",
            ),
        ),
        migrations.AddConstraint(
            model_name="run",
            constraint=models.UniqueConstraint(
                fields=("conversation", "turn"), name="assistants_run_turn_once"
            ),
        ),
        migrations.AddConstraint(
            model_name="run",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_latest", True)),
                fields=("conversation",),
                name="assistants_run_one_latest_turn",
            ),
        ),
        migrations.AddConstraint(
            model_name="run",
            constraint=models.CheckConstraint(
                condition=models.Q(("turn__gte", 1)), name="assistants_run_turn_positive"
            ),
        ),
    ]
