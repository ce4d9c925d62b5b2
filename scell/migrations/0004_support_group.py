"""The "Support" group: view access to what support looks at, the credit adjustment form and the
permissions of the support actions (replay a delivery, re-run a chain check, resend a signer's
invitation). The list lives in ``scell.admin_base``; ``manage.py support_user sync`` applies it again."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def forwards(apps, schema_editor):
    from scell.admin_base import support_group_sync

    alias = schema_editor.connection.alias
    # Model permissions are created by post_migrate, after every migration: on a fresh database they do
    # not exist yet, so create them now for every app (idempotent).
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=alias)
        app_config.models_module = None
    support_group_sync(apps=apps, using=alias)


def backwards(apps, schema_editor):
    from scell.admin_base import ACTION_PERMISSIONS, SUPPORT_GROUP

    alias = schema_editor.connection.alias
    apps.get_model("auth", "Group").objects.using(alias).filter(name=SUPPORT_GROUP).delete()
    Permission = apps.get_model("auth", "Permission")
    for app_label, model, codename, _name in ACTION_PERMISSIONS:
        Permission.objects.using(alias).filter(
            content_type__app_label=app_label, content_type__model=model, codename=codename
        ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("scell", "0003_dashboard_account"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("archive", "0004_support_permissions"),
        ("billing", "0005_creditadjustment"),
        ("invoicing", "0002_immutability_triggers"),
        ("pdp", "0002_support_permissions"),
        ("signatures", "0004_support_permissions"),
        ("webhooks", "0003_support_permissions"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
